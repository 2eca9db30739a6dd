/**
 * A real node:http server on 127.0.0.1 for the client tests: each request is answered by the next
 * scripted handler (or the default), and every request and socket close is recorded.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export type Handler = (req: IncomingMessage, res: ServerResponse, body: string) => unknown;

export interface SeenRequest {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
  /** Index of the socket (connection) it came on. */
  socket: number;
}

export interface ScriptedServer {
  url: string;
  origin: string;
  seen: SeenRequest[];
  /** Resolves when the server has seen `n` sockets close. */
  closedSockets(): number;
  waitForSocketClose(count?: number): Promise<void>;
  /** Queues one-shot handlers, used in order before the default. */
  script(...handlers: Handler[]): void;
  setDefault(handler: Handler): void;
  /** Requests currently being handled. */
  active(): number;
  maxActive(): number;
  close(): Promise<void>;
}

export function json(status: number, body: unknown, headers: Record<string, string | string[]> = {}): Handler {
  return (_req, res) => {
    res.writeHead(status, { 'content-type': 'application/json', ...headers });
    res.end(JSON.stringify(body));
  };
}

export function text(status: number, body: string, headers: Record<string, string | string[]> = {}): Handler {
  return (_req, res) => {
    res.writeHead(status, { 'content-type': 'text/plain', ...headers });
    res.end(body);
  };
}

/** Never answers. */
export const hang: Handler = () => {};

export async function startServer(defaultHandler: Handler = json(200, { ok: true })): Promise<ScriptedServer> {
  const queue: Handler[] = [];
  let fallback = defaultHandler;
  const seen: SeenRequest[] = [];
  const sockets = new Set<Socket>();
  const socketIds = new WeakMap<Socket, number>();
  let closed = 0;
  let active = 0;
  let maxActive = 0;
  const closeWaiters: Array<{ count: number; resolve: () => void }> = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      seen.push({
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body,
        socket: socketIds.get(req.socket) ?? -1,
      });
      active++;
      maxActive = Math.max(maxActive, active);
      res.on('close', () => active--);
      const handler = queue.shift() ?? fallback;
      void handler(req, res, body);
    });
  });
  let nextSocket = 0;
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socketIds.set(socket, nextSocket++);
    socket.on('close', () => {
      sockets.delete(socket);
      closed++;
      for (const waiter of closeWaiters.splice(0)) {
        if (closed >= waiter.count) waiter.resolve();
        else closeWaiters.push(waiter);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const origin = `http://127.0.0.1:${port}`;
  return {
    url: origin,
    origin,
    seen,
    closedSockets: () => closed,
    waitForSocketClose(count = 1) {
      if (closed >= count) return Promise.resolve();
      return new Promise<void>((resolve) => closeWaiters.push({ count, resolve }));
    },
    script: (...handlers) => queue.push(...handlers),
    setDefault: (handler) => {
      fallback = handler;
    },
    active: () => active,
    maxActive: () => maxActive,
    close() {
      for (const socket of sockets) socket.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/**
 * A small TCP proxy for fault tests (node:net), between hotpath and PostgreSQL or Redis on loopback. It can
 * pass traffic, add latency, swallow it (blackhole: sockets stay open, nothing arrives) or cut every
 * connection. `connections` counts the client sockets open through it.
 */
import net from 'node:net';

export type ProxyMode = 'pass' | 'blackhole';

export interface TcpProxy {
  readonly port: number;
  /** Client sockets currently open through the proxy. */
  readonly connections: number;
  /** 'pass' forwards (after `latencyMs`); 'blackhole' swallows every byte both ways, new and open sockets alike. */
  setMode(mode: ProxyMode): void;
  /** Delay added to every chunk, each way, in ms. */
  setLatency(latencyMs: number): void;
  /** Destroys every open connection (both sides), as a network cut would. */
  cut(): void;
  close(): Promise<void>;
}

export async function startTcpProxy(targetPort: number, targetHost = '127.0.0.1'): Promise<TcpProxy> {
  let mode: ProxyMode = 'pass';
  let latencyMs = 0;
  const pairs = new Set<{ client: net.Socket; upstream: net.Socket }>();

  const forward = (from: net.Socket, to: net.Socket) => {
    from.on('data', (chunk: Buffer) => {
      if (mode === 'blackhole') return;
      if (latencyMs > 0) setTimeout(() => to.destroyed || to.write(chunk), latencyMs);
      else to.write(chunk);
    });
  };

  const server = net.createServer((client) => {
    const upstream = net.connect({ host: targetHost, port: targetPort });
    const pair = { client, upstream };
    pairs.add(pair);
    const drop = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', drop);
    upstream.on('error', drop);
    client.on('close', drop);
    upstream.on('close', drop);
    forward(client, upstream);
    forward(upstream, client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  const cut = () => {
    for (const { client, upstream } of [...pairs]) {
      client.destroy();
      upstream.destroy();
    }
    pairs.clear();
  };
  return {
    port,
    get connections() {
      return pairs.size;
    },
    setMode(next) {
      mode = next;
    },
    setLatency(next) {
      latencyMs = next;
    },
    cut,
    close() {
      cut();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

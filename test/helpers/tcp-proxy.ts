/**
 * A TCP proxy for fault tests (node:net) between hotpath and PostgreSQL or Redis on loopback. It passes
 * traffic, adds latency, swallows it (blackhole: sockets stay open, nothing arrives), cuts every connection,
 * or dooms the open ones to die on their next write — what a pooled connection to a restarted server looks
 * like: idle and apparently healthy until it is used.
 */
import net from 'node:net';

export type ProxyMode = 'pass' | 'blackhole';

interface Pair {
  client: net.Socket;
  upstream: net.Socket;
  /** Dies on the next bytes the client sends. */
  isDoomed: boolean;
}

export class TcpProxy {
  readonly #server: net.Server;
  readonly #pairs = new Set<Pair>();
  #mode: ProxyMode = 'pass';
  #latencyMs = 0;
  /** Connections cut by {@link breakOnNextWrite} when they were next used. */
  doomedCuts = 0;

  private constructor(server: net.Server) {
    this.#server = server;
  }

  /** Starts a proxy to `host:port` on a free local port. */
  static async start(host: string, port: number): Promise<TcpProxy> {
    const holder: { proxy?: TcpProxy } = {};
    const server = net.createServer((client) => holder.proxy?.carry(client, host, port));
    const proxy = new TcpProxy(server);
    holder.proxy = proxy;
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return proxy;
  }

  /** The local port clients connect to. */
  get port(): number {
    return (this.#server.address() as net.AddressInfo).port;
  }

  /** Client connections open through the proxy. */
  get connections(): number {
    return this.#pairs.size;
  }

  /** 'pass' forwards (after the latency); 'blackhole' swallows every byte both ways, on new and open sockets. */
  setMode(mode: ProxyMode): void {
    this.#mode = mode;
  }

  /** Delay added to every chunk, each way, in ms. */
  setLatency(latencyMs: number): void {
    this.#latencyMs = latencyMs;
  }

  /** Destroys every open connection (both sides), as a network cut would. */
  cut(): void {
    for (const { client, upstream } of this.#pairs) {
      client.destroy();
      upstream.destroy();
    }
    this.#pairs.clear();
  }

  /** Every connection open now dies when its client next sends anything. */
  breakOnNextWrite(): void {
    for (const pair of this.#pairs) pair.isDoomed = true;
  }

  /** Stops accepting and cuts every open connection. */
  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  /** @internal Wires one accepted connection to a new upstream connection. */
  carry(client: net.Socket, host: string, port: number): void {
    const upstream = net.connect({ host, port });
    const pair: Pair = { client, upstream, isDoomed: false };
    this.#pairs.add(pair);
    const drop = (): void => {
      this.#pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('data', (chunk: Buffer) => {
      if (pair.isDoomed) {
        this.doomedCuts++;
        drop();
        return;
      }
      this.#forward(upstream, chunk);
    });
    upstream.on('data', (chunk: Buffer) => this.#forward(client, chunk));
    for (const socket of [client, upstream]) {
      socket.on('close', drop);
      socket.on('error', drop);
    }
  }

  #forward(to: net.Socket, chunk: Buffer): void {
    if (this.#mode === 'blackhole') return;
    if (this.#latencyMs > 0) setTimeout(() => to.destroyed || to.write(chunk), this.#latencyMs);
    else to.write(chunk);
  }
}

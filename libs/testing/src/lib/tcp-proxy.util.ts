import { createServer, Server, Socket } from 'node:net';

/**
 * A loopback TCP proxy in front of a shared server that a test cannot stop (PostgreSQL, Redis):
 * point the app at `port`, then `cut()` to take the server away (every open connection destroyed,
 * new ones refused at once) and `restore()` to bring it back on the same port.
 */
export class TcpProxy {
  private readonly connections = new Set<Socket>();
  private server?: Server;
  /** Connections accepted (and forwarded) since the start. */
  accepted = 0;

  private constructor(
    readonly targetPort: number,
    private readonly targetHost: string,
    public port: number,
  ) {}

  static async start(targetPort: number, targetHost = '127.0.0.1'): Promise<TcpProxy> {
    const proxy = new TcpProxy(targetPort, targetHost, 0);
    await proxy.listen();
    return proxy;
  }

  get cutOff(): boolean {
    return this.server === undefined;
  }

  /** Destroys every connection and stops listening: connecting is refused until {@link restore}. */
  async cut(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const socket of this.connections) socket.destroy();
    this.connections.clear();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** Listens again on the same port. */
  async restore(): Promise<void> {
    if (!this.server) await this.listen();
  }

  async close(): Promise<void> {
    await this.cut();
  }

  private async listen(): Promise<void> {
    const server = createServer((client) => this.forward(client));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.port = (server.address() as { port: number }).port;
    this.server = server;
  }

  private forward(client: Socket): void {
    this.accepted++;
    const upstream = new Socket();
    this.connections.add(client);
    this.connections.add(upstream);
    const drop = () => {
      client.destroy();
      upstream.destroy();
      this.connections.delete(client);
      this.connections.delete(upstream);
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
    upstream.connect(this.targetPort, this.targetHost, () => {
      client.pipe(upstream);
      upstream.pipe(client);
    });
  }
}

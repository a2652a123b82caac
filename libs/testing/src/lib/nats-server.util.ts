import { mkdtempSync, rmSync } from 'node:fs';
import { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, PrivateServer, waitUntilReady } from './private-server.util';

export const NATS_SERVER_BIN = process.env['NATS_SERVER_BIN'] ?? 'nats-server';

/** Whether something accepts TCP connections on this loopback port. */
export function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = new Socket();
    socket.once('connect', () => (socket.destroy(), resolve(true)));
    socket.once('error', () => (socket.destroy(), resolve(false)));
    socket.connect(port, '127.0.0.1');
  });
}

export interface PrivateNatsServerOptions {
  /**
   * A nats-server config file (`-c`) with users and permissions. The listen address, port and
   * JetStream store are still given on the command line, which wins over the file; so a file with a
   * `store_dir` of its own (the shipped deploy/nats config) runs in `SecuredNatsServer` instead.
   */
  configFile?: string;
}

/** A private nats-server with JetStream; `start()` after `stop()` keeps its store (streams survive). */
export class PrivateNatsServer extends PrivateServer {
  private readonly storeDir = mkdtempSync(join(tmpdir(), 'sb-nats-'));

  private constructor(
    port: number,
    private readonly options: PrivateNatsServerOptions,
  ) {
    super(port);
  }

  static async start(options: PrivateNatsServerOptions = {}): Promise<PrivateNatsServer> {
    const server = new PrivateNatsServer(await freePort(), options);
    await server.start();
    return server;
  }

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  protected command(): [string, string[]] {
    const config = this.options.configFile ? ['-c', this.options.configFile] : [];
    return [NATS_SERVER_BIN, [...config, '-a', '127.0.0.1', '-p', String(this.port), '-js', '-sd', this.storeDir]];
  }

  protected ready(): Promise<void> {
    return waitUntilReady(`nats-server on port ${this.port}`, () => portOpen(this.port));
  }

  override async dispose(): Promise<void> {
    await this.stop();
    rmSync(this.storeDir, { recursive: true, force: true });
  }
}

import { Socket } from 'node:net';
import { freePort, PrivateServer, waitUntilReady } from './private-server.util';

export const REDIS_SERVER_BIN = process.env['REDIS_SERVER_BIN'] ?? 'redis-server';

function pongs(port: number): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const socket = new Socket();
    socket.setTimeout(500, () => (socket.destroy(), resolve(false)));
    socket.once('data', (data) => (socket.destroy(), resolve(data.toString().startsWith('+PONG'))));
    socket.once('error', () => (socket.destroy(), resolve(false)));
    socket.connect(port, '127.0.0.1', () => socket.write('PING\r\n'));
  });
}

/** A private redis-server without persistence: after `stop()` its data is gone, as after a real crash of a cache. */
export class PrivateRedisServer extends PrivateServer {
  static async start(): Promise<PrivateRedisServer> {
    const server = new PrivateRedisServer(await freePort());
    await server.start();
    return server;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  protected command(): [string, string[]] {
    return [REDIS_SERVER_BIN, ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no']];
  }

  protected ready(): Promise<void> {
    return waitUntilReady(`redis-server on port ${this.port}`, () => pongs(this.port));
  }
}

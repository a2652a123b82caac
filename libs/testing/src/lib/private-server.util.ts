import { ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:net';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** Polls `probe` every 50 ms until it says the server answers, or fails after `timeoutMs`. */
export async function waitUntilReady(what: string, probe: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await probe()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${what} did not answer within ${timeoutMs} ms`);
}

/**
 * A server binary run by a test on its own free port, to take a dependency away and bring it back:
 * `stop()` kills it like a crash (SIGKILL), `start()` runs it again on the same port.
 */
export abstract class PrivateServer {
  private process?: ChildProcess;

  protected constructor(readonly port: number) {}

  /** The binary and its arguments. */
  protected abstract command(): [string, string[]];

  /** Resolves once the server answers on its port. */
  protected abstract ready(): Promise<void>;

  async start(): Promise<void> {
    const [bin, args] = this.command();
    this.process = spawn(bin, args, { stdio: 'ignore' });
    await this.ready();
  }

  async stop(): Promise<void> {
    const child = this.process;
    this.process = undefined;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.kill('SIGKILL');
    });
  }

  async dispose(): Promise<void> {
    await this.stop();
  }
}

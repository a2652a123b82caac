import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { NATS_SERVER_BIN, portOpen } from './nats-server.util';
import { freePort, PrivateServer, waitUntilReady } from './private-server.util';

/** The identities of deploy/nats/nats-server.conf; `operator` connects as `admin-cli`. */
export type NatsRole = 'registry-api' | 'health-prober' | 'llm-router' | 'cache-invalidator' | 'operator';

const DEPLOY_DIR = resolve(__dirname, '../../../../deploy/nats');

/**
 * A private nats-server running the shipped deploy/nats/nats-server.conf, with throwaway identities
 * made by deploy/nats/identities.mjs (every role, plus the service instances named). As in production,
 * the roles' public keys (and the JetStream directory) reach the server through its environment: handed to it explicitly, since a
 * jest worker's `process.env` is a sandboxed copy that child processes do not inherit.
 */
export class SecuredNatsServer extends PrivateServer {
  /** What identities.mjs wrote: the config, seeds/<role>.nk, services/<env>.<service>.<id>.nk, server.env. */
  readonly dir = mkdtempSync(join(tmpdir(), 'sb-nats-ids-'));
  private readonly storeDir = mkdtempSync(join(tmpdir(), 'sb-nats-'));
  private serverEnv: string[] = [];

  private constructor(port: number) {
    super(port);
  }

  /** `services` as `env/service/id`: each gets an identity allowed to publish only its own heartbeat. */
  static async start(options: { services?: string[] } = {}): Promise<SecuredNatsServer> {
    const server = new SecuredNatsServer(await freePort());
    server.generate(options.services ?? []);
    await server.start();
    return server;
  }

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  roleSeedFile(role: NatsRole): string {
    return join(this.dir, 'seeds', `${role}.nk`);
  }

  serviceSeedFile(environment: string, service: string, id: string): string {
    return join(this.dir, 'services', `${environment}.${service}.${id}.nk`);
  }

  /** A seed as nats.js' `nkeyAuthenticator` takes it. */
  static seed(file: string): Uint8Array {
    return new TextEncoder().encode(readFileSync(file, 'utf8').trim());
  }

  private generate(services: string[]): void {
    execFileSync(process.execPath, [join(DEPLOY_DIR, 'identities.mjs'), '--out', this.dir, ...services.flatMap((s) => ['--service', s])]);
    this.serverEnv = readFileSync(join(this.dir, 'server.env'), 'utf8').trim().split('\n');
  }

  protected command(): [string, string[]] {
    // JetStream and its directory come from the config (SWITCHBOARD_NATS_STORE_DIR), not from -js/-sd.
    const server = [NATS_SERVER_BIN, '-c', join(this.dir, 'nats-server.conf'), '-a', '127.0.0.1', '-p', String(this.port)];
    return ['env', [...this.serverEnv, `SWITCHBOARD_NATS_STORE_DIR=${this.storeDir}`, ...server]];
  }

  protected ready(): Promise<void> {
    return waitUntilReady(`nats-server (deploy/nats config) on port ${this.port}`, () => portOpen(this.port));
  }

  override async dispose(): Promise<void> {
    await this.stop();
    rmSync(this.storeDir, { recursive: true, force: true });
    rmSync(this.dir, { recursive: true, force: true });
  }
}

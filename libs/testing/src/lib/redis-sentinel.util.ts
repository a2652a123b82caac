import { ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { freePort, waitUntilReady } from './private-server.util';
import { REDIS_SERVER_BIN } from './redis-server.util';

export const SENTINEL_MASTER_NAME = 'switchboard';

/**
 * A private Redis Sentinel group on loopback: a primary, one replica and one sentinel (quorum 1,
 * down after 1 s, failover timeout 2 s), all redis-server processes on free ports. `failover()` asks the sentinel to promote
 * the replica; `killPrimary()` SIGKILLs whichever server is primary now.
 */
export class RedisSentinelGroup {
  private readonly servers = new Map<number, ChildProcess>();

  private constructor(
    readonly serverPorts: [number, number],
    readonly sentinelPort: number,
    private readonly dir: string,
  ) {}

  static async start(): Promise<RedisSentinelGroup> {
    const dir = mkdtempSync(join(tmpdir(), 'sb-redis-sentinel-'));
    const group = new RedisSentinelGroup([await freePort(), await freePort()], await freePort(), dir);
    const [primary, replica] = group.serverPorts;
    // No diskless-sync delay: a demoted primary resyncs at once (the default waits 5 s for more replicas).
    const plain = ['--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--repl-diskless-sync-delay', '0'];
    group.spawn(primary, [REDIS_SERVER_BIN, ['--port', String(primary), ...plain]]);
    group.spawn(replica, [REDIS_SERVER_BIN, ['--port', String(replica), ...plain, '--replicaof', '127.0.0.1', String(primary)]]);
    // The sentinel rewrites its config file (what it learns), so it gets its own, writable.
    const conf = join(dir, 'sentinel.conf');
    writeFileSync(
      conf,
      [
        `port ${group.sentinelPort}`,
        'bind 127.0.0.1',
        `sentinel monitor ${SENTINEL_MASTER_NAME} 127.0.0.1 ${primary} 1`,
        `sentinel down-after-milliseconds ${SENTINEL_MASTER_NAME} 1000`,
        `sentinel failover-timeout ${SENTINEL_MASTER_NAME} 2000`,
        '',
      ].join('\n'),
    );
    group.spawn(group.sentinelPort, [REDIS_SERVER_BIN, [conf, '--sentinel']]);
    await group.waitForSyncedReplica();
    return group;
  }

  /**
   * Until the server that is not primary replicates the primary, in sync, and the sentinel lists it as a
   * replica: a failover can then promote it. (The sentinel's own view of the link refreshes only every
   * 10 s, but it polls replicas every second once the primary is down, before it picks one.)
   */
  waitForSyncedReplica(): Promise<void> {
    return waitUntilReady('an in-sync replica the sentinel knows', async () => {
      const primary = await this.primaryPort().catch(() => 0);
      const replica = this.serverPorts.find((port) => port !== primary && this.servers.has(port));
      if (!primary || !replica) return false;
      const info = await this.client(replica, (c) => c.info('replication')).catch(() => '');
      return /role:slave/.test(info) && /master_link_status:up/.test(info) && new RegExp(`master_port:${primary}\\b`).test(info) && (await this.knownReplicas()).includes(replica);
    }, 30_000);
  }

  /** `host:port` of the sentinel, as REDIS_SENTINELS takes it. */
  get sentinels(): string {
    return `127.0.0.1:${this.sentinelPort}`;
  }

  get sentinelList(): { host: string; port: number }[] {
    return [{ host: '127.0.0.1', port: this.sentinelPort }];
  }

  /** The primary's port as the sentinel names it now. */
  async primaryPort(): Promise<number> {
    const [, port] = (await this.sentinel((s) => s.call('SENTINEL', 'get-master-addr-by-name', SENTINEL_MASTER_NAME))) as [string, string];
    return Number(port);
  }

  /** A manual failover (`SENTINEL FAILOVER`): resolves once the sentinel names the other server as primary. */
  async failover(): Promise<number> {
    const before = await this.primaryPort();
    await this.sentinel((s) => s.call('SENTINEL', 'failover', SENTINEL_MASTER_NAME));
    let after = before;
    await waitUntilReady('the sentinel to name a new primary', async () => (after = await this.primaryPort()) !== before, 20_000);
    return after;
  }

  /** SIGKILLs the current primary; the sentinel promotes the replica after `down-after-milliseconds`. */
  async killPrimary(): Promise<number> {
    const port = await this.primaryPort();
    await this.kill(port);
    return port;
  }

  async dispose(): Promise<void> {
    await Promise.all([...this.servers.keys()].map((port) => this.kill(port)));
    rmSync(this.dir, { recursive: true, force: true });
  }

  private spawn(port: number, [bin, args]: [string, string[]]): void {
    this.servers.set(port, spawn(bin, args, { stdio: 'ignore', cwd: this.dir }));
  }

  private async kill(port: number): Promise<void> {
    const child = this.servers.get(port);
    this.servers.delete(port);
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    await new Promise<void>((done) => {
      child.once('exit', () => done());
      child.kill('SIGKILL');
    });
  }

  private async knownReplicas(): Promise<number[]> {
    const replicas = (await this.sentinel((s) => s.call('SENTINEL', 'replicas', SENTINEL_MASTER_NAME)).catch(() => [])) as string[][];
    return replicas.flatMap((fields) => {
      const info = new Map<string, string>();
      for (let i = 0; i + 1 < fields.length; i += 2) info.set(fields[i], fields[i + 1]);
      return info.get('flags') === 'slave' ? [Number(info.get('port'))] : [];
    });
  }

  private sentinel<T>(run: (client: Redis) => Promise<T>): Promise<T> {
    return this.client(this.sentinelPort, run);
  }

  /** One command's connection, gone afterwards (no reconnects to keep the test process alive). */
  private async client<T>(port: number, run: (client: Redis) => Promise<T>): Promise<T> {
    const client = new Redis({ host: '127.0.0.1', port, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    client.on('error', () => undefined);
    try {
      await client.connect();
      return await run(client);
    } finally {
      client.disconnect();
    }
  }
}

import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { NATS_SERVER_BIN, portOpen } from './nats-server.util';
import { waitUntilReady } from './private-server.util';

/** deploy/cluster's script writes the node configs, so the tests run the cluster a user would. */
const CLUSTER_SCRIPT = resolve(__dirname, '../../../../deploy/cluster/nats-cluster.mjs');

export interface NatsClusterNode {
  name: string;
  port: number;
  routePort: number;
  monitorPort: number;
  storeDir: string;
  configFile: string;
}

/** What `/jsz?streams=true` says about one stream (the fields the tests read). */
export interface StreamClusterView {
  leader?: string;
  replicas: { name: string; current: boolean; offline?: boolean }[];
  messages: number;
}

/** The parts of nats-server's `/jsz` the tests read. */
interface Jsz {
  meta_cluster?: { leader?: string };
  account_details?: {
    stream_detail?: {
      name: string;
      cluster?: { leader?: string; replicas?: { name: string; current: boolean; offline?: boolean }[] };
      state?: { messages: number };
    }[];
  }[];
}

function portFree(port: number): Promise<boolean> {
  return new Promise((done) => {
    const server = createServer();
    server.once('error', () => done(false));
    server.listen(port, '127.0.0.1', () => server.close(() => done(true)));
  });
}

/**
 * A JetStream cluster of nats-server processes on loopback (three by default), configured by
 * `deploy/cluster/nats-cluster.mjs --config-only`; each node can be SIGKILLed and restarted on its
 * own ports with its store, as a machine that dies and comes back.
 */
export class NatsCluster {
  private readonly processes = new Map<string, ChildProcess>();

  private constructor(
    readonly nodes: NatsClusterNode[],
    private readonly dir: string,
  ) {}

  static async start(count = 3): Promise<NatsCluster> {
    const dir = mkdtempSync(join(tmpdir(), 'sb-nats-cluster-'));
    // Client ports P…, routes P+1000…, monitoring P+2000…: a base whose nine ports are all free, below
    // Linux's ephemeral range (32768+), where other suites' free ports and outgoing connections come from.
    for (let attempt = 0; attempt < 50; attempt++) {
      const base = 20_000 + Math.floor(Math.random() * 10_000);
      const ports = [0, 1000, 2000].flatMap((offset) => Array.from({ length: count }, (_, i) => base + offset + i));
      if (!(await Promise.all(ports.map(portFree))).every(Boolean)) continue;
      const out = execFileSync(process.execPath, [CLUSTER_SCRIPT, '--config-only', '--dir', dir, '--port', String(base), '--nodes', String(count)], { encoding: 'utf8' });
      const cluster = new NatsCluster((JSON.parse(out) as { nodes: NatsClusterNode[] }).nodes, dir);
      await Promise.all(cluster.nodes.map((node) => cluster.startNode(node.name, false)));
      await cluster.waitForMetaLeader();
      return cluster;
    }
    throw new Error('no free ports for a NATS cluster');
  }

  /** Every node, comma-separated, as the apps' NATS_URL takes it. */
  get url(): string {
    return this.nodes.map((node) => `nats://127.0.0.1:${node.port}`).join(',');
  }

  node(name: string): NatsClusterNode {
    const node = this.nodes.find((n) => n.name === name);
    if (!node) throw new Error(`no node ${name} in the cluster`);
    return node;
  }

  isRunning(name: string): boolean {
    const child = this.processes.get(name);
    return !!child && child.exitCode === null && child.signalCode === null;
  }

  /** Starts (or restarts, with its store) one node; waits until it takes clients and, unless told not to, until JetStream has a meta leader. */
  async startNode(name: string, waitForCluster = true): Promise<void> {
    const node = this.node(name);
    if (this.isRunning(name)) return;
    this.processes.set(name, spawn(NATS_SERVER_BIN, ['-c', node.configFile], { stdio: 'ignore' }));
    await waitUntilReady(`${name} on port ${node.port}`, () => portOpen(node.port), 15_000);
    if (waitForCluster) await this.waitForMetaLeader();
  }

  /** SIGKILLs one node, as a machine that dies. */
  async killNode(name: string): Promise<void> {
    const child = this.processes.get(name);
    this.processes.delete(name);
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    await new Promise<void>((done) => {
      child.once('exit', () => done());
      child.kill('SIGKILL');
    });
  }

  /** `/jsz` of a running node (its monitoring port). */
  async jsz(name: string, query = ''): Promise<Jsz> {
    const response = await fetch(`http://127.0.0.1:${this.node(name).monitorPort}/jsz${query}`);
    return (await response.json()) as Jsz;
  }

  /** Until the running nodes agree on a JetStream meta leader (the cluster takes stream operations). */
  async waitForMetaLeader(timeoutMs = 30_000): Promise<string> {
    let leader = '';
    await waitUntilReady('a JetStream meta leader', async () => {
      const running = this.nodes.filter((n) => this.isRunning(n.name));
      const views = await Promise.all(running.map((n) => this.jsz(n.name).catch(() => undefined)));
      const leaders = new Set(views.map((v) => v?.meta_cluster?.leader));
      leader = [...leaders][0] ?? '';
      return leaders.size === 1 && !!leader && running.some((n) => n.name === leader);
    }, timeoutMs);
    return leader;
  }

  /**
   * A stream's cluster view as its leader reports it (leader, the other peers and whether each is
   * current, messages); undefined while no running node names a leader, or the leader does not answer.
   */
  async stream(streamName: string): Promise<StreamClusterView | undefined> {
    const detail = async (name: string) => {
      const jsz = await this.jsz(name, '?streams=true').catch(() => undefined);
      return jsz?.account_details?.flatMap((account) => account.stream_detail ?? []).find((stream) => stream.name === streamName);
    };
    for (const node of this.nodes.filter((n) => this.isRunning(n.name))) {
      const leader = (await detail(node.name))?.cluster?.leader;
      if (!leader || !this.isRunning(leader)) continue;
      // Only the leader knows whether each peer is current.
      const own = await detail(leader);
      if (own?.cluster?.leader !== leader) return undefined;
      const replicas = (own.cluster.replicas ?? []).map((r) => ({ name: r.name, current: r.current, offline: r.offline }));
      return { leader, replicas, messages: own.state?.messages ?? 0 };
    }
    return undefined;
  }

  async dispose(): Promise<void> {
    await Promise.all(this.nodes.map((node) => this.killNode(node.name)));
    rmSync(this.dir, { recursive: true, force: true });
  }
}

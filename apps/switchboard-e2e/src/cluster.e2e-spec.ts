import { Redis } from 'ioredis';
import { SubjectSpace } from '@switchboard/contracts';
import { NatsClient } from '@switchboard/messaging';
import { MockBackend, startMockBackend } from '@switchboard/mock-llm-backend';
import { createTestEnvironment, NatsCluster, TestEnvironment, waitFor } from '@switchboard/testing';
import { registryStream, startRegistry } from './support/registry-stream.util';
import { API_KEY, PROBER_MAIN, REGISTRY_TOKEN, registerInstance, RunningApp, startApp, startRouter, stopApp } from './support/system.util';

const INVALIDATOR_MAIN = 'dist/apps/cache-invalidator/apps/cache-invalidator/src/main.js';
const REGISTRY = '/api/v2/services/registry';
const MODELS = 12;
const WRITERS = 4;
/** Acknowledged writes between two steps of the chaos (kill, restart): progress, not a fixed sleep. */
const WRITES_PER_STEP = 25;

interface Ack {
  serviceId: string;
  revision: number;
  changed: boolean;
}

/**
 * Issue 15, out of one machine: a 3-node JetStream cluster (deploy/cluster), REGISTRY with 3
 * replicas, and two replicas of every app (registry-api, llm-router, health-prober, cache-invalidator)
 * with NATS_URL naming all three nodes. Status flips go through both registry-api replicas while one
 * NATS node is SIGKILLed and restarted twice and then the stream leader's node is killed; afterwards
 * every acknowledged change is on the stream exactly once, both routers route by the registry, the
 * cache equals the database and the invalidators' durable consumer has nothing left. Then one replica
 * of each app is SIGKILLed under router load, with clients that move to the other router only on a
 * connection error (what a load balancer does): no request may fail.
 */
describe('a 3-node NATS cluster and two replicas of every app (built processes)', () => {
  let cluster: NatsCluster;
  let env: TestEnvironment;
  let subjects: SubjectSpace;
  let nats: NatsClient;
  let redis: Redis;
  const backends: MockBackend[] = [];
  let registries: RunningApp[] = [];
  let routers: RunningApp[] = [];
  let probers: RunningApp[] = [];
  let invalidators: RunningApp[] = [];

  const call = async (app: RunningApp, method: string, path: string, body?: unknown) => {
    const response = await fetch(`${app.url}${path}`, {
      method,
      headers: { 'content-type': 'application/json', 'x-registry-token': REGISTRY_TOKEN, 'x-admin-token': 'dev-admin-token' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: response.status, body: (await response.json().catch(() => undefined)) as any };
  };

  /** The registry's instances in development, from its snapshot (PostgreSQL). */
  async function snapshot(from: RunningApp): Promise<{ serviceId: string; models: string[]; routable: boolean; revision: number; adminState: string; status: string }[]> {
    const { body } = await call(from, 'GET', `${REGISTRY}/snapshot`);
    return (body.instances as { environment: string }[]).filter((i) => i.environment === 'development') as never;
  }

  const routableModels = (instances: Awaited<ReturnType<typeof snapshot>>) => [...new Set(instances.filter((i) => i.routable).flatMap((i) => i.models))].sort();

  async function routerModels(router: RunningApp): Promise<string[] | undefined> {
    const response = await fetch(`${router.url}/v1/models`, { headers: { authorization: `Bearer ${API_KEY}` } }).catch(() => undefined);
    if (response?.status !== 200) return undefined;
    return ((await response.json()) as { data: { id: string }[] }).data.map((m) => m.id).sort();
  }

  /** Cached model keys that disagree with the database (a marker is never wrong: it only sends a read to PostgreSQL). */
  async function staleCacheKeys(instances: Awaited<ReturnType<typeof snapshot>>): Promise<string[]> {
    const stale: string[] = [];
    for (let i = 0; i < MODELS; i++) {
      const key = `${env.redisKeyPrefix}model_registry:development:flip-${i}`;
      const raw = await redis.hget(key, 'value');
      if (raw === null) continue;
      const cached = (JSON.parse(raw) as { serviceId: string; revision: number; adminState: string; health: string }[]).map((d) => `${d.serviceId}@${d.revision}:${d.adminState}/${d.health}`);
      const truth = instances.filter((x) => x.models.includes(`flip-${i}`)).map((x) => `${x.serviceId}@${x.revision}:${x.adminState}/${x.status}`).sort();
      if (JSON.stringify(cached) !== JSON.stringify(truth)) stale.push(`${key}: cached ${cached.join(',')} != ${truth.join(',')}`);
    }
    return stale;
  }

  beforeAll(async () => {
    cluster = await NatsCluster.start();
    env = await createTestEnvironment('cluster');
    subjects = new SubjectSpace(env.subjectPrefix);
    const cache = { CACHE_ENABLED: 'true', REDIS_URL: env.redisUrl, REDIS_KEY_PREFIX: env.redisKeyPrefix };
    const registryEnv = { ...cache, EVENT_STREAM_REPLICAS: '3', OUTBOX_SWEEP_INTERVAL_MS: '200' };
    // The first replica creates the stream (3 replicas) and runs the migrations; the rest start together.
    registries = [await startRegistry(cluster.url, env.subjectPrefix, env.databaseUrl, registryEnv)];
    // Drift checks every 10 minutes only: the stream feed itself must ride the node and leader changes.
    const routerEnv = { DRIFT_CHECK_INTERVAL_MS: '600000' };
    const [registry2, router1, router2] = await Promise.all([
      startRegistry(cluster.url, env.subjectPrefix, env.databaseUrl, registryEnv),
      startRouter(cluster.url, env.subjectPrefix, routerEnv),
      startRouter(cluster.url, env.subjectPrefix, routerEnv),
    ]);
    registries.push(registry2);
    routers = [router1, router2];
    const prober = (registry: RunningApp) =>
      startApp(PROBER_MAIN, {
        NATS_URL: cluster.url,
        SUBJECT_PREFIX: env.subjectPrefix,
        REGISTRY_URL: registry.url,
        PROBER_ENVIRONMENT: 'development',
        CHECK_INTERVAL_MS: '500',
        PROBE_MIN_INTERVAL_MS: '100',
        MEMBER_HEARTBEAT_INTERVAL_MS: '200',
      });
    const invalidator = () => startApp(INVALIDATOR_MAIN, { NATS_URL: cluster.url, SUBJECT_PREFIX: env.subjectPrefix, ...cache });
    [probers, invalidators] = await Promise.all([Promise.all([prober(registries[0]), prober(registries[1])]), Promise.all([invalidator(), invalidator()])]);

    nats = await NatsClient.connect({ servers: cluster.url, name: 'e2e-cluster', reconnectTimeWaitMs: 100 });
    redis = new Redis(env.redisUrl);
    // Two backends serve the steady model (the router load) and every flipping model.
    const models = ['steady', ...Array.from({ length: MODELS }, (_, i) => `flip-${i}`)];
    backends.push(await startMockBackend({ name: 'cluster-a', models }), await startMockBackend({ name: 'cluster-b', models }));
    for (const [k, backend] of backends.entries()) await registerInstance(registries[k].url, { serviceId: `steady-${k}`, serviceName: 'steady', port: backend.port, models: ['steady'] });
    for (let i = 0; i < MODELS; i++) await registerInstance(registries[i % 2].url, { serviceId: `flip-${i}`, serviceName: 'flip', port: backends[i % 2].port, models: [`flip-${i}`] });
    for (const router of routers) await waitFor(async () => (await routerModels(router))?.length === MODELS + 1, 20_000, 'both routers to see every model');
  }, 180_000);

  afterAll(async () => {
    redis?.disconnect();
    await nats?.close();
    await Promise.all([...probers, ...invalidators, ...routers].map((app) => stopApp(app)));
    await Promise.all(registries.map((app) => stopApp(app)));
    await Promise.all(backends.map((b) => b.close()));
    await env?.dispose();
    await cluster?.dispose();
  });

  it('keeps every acknowledged change exactly once at every consumer through node and stream-leader failures', async () => {
    const acks: Ack[] = [];
    /** Every write's outcome in time order: a refused one is a non-2xx answer or no answer. */
    const outcomes: { at: number; ok: boolean }[] = [];
    let writing = true;
    let next = 0;
    const writer = async () => {
      while (writing) {
        const registry = registries[next++ % 2];
        const serviceId = `flip-${Math.floor(Math.random() * MODELS)}`;
        const res = await call(registry, 'PUT', `${REGISTRY}/${serviceId}/status`, { adminState: Math.random() < 0.5 ? 'enabled' : 'disabled' }).catch(() => undefined);
        const ok = res?.status === 200;
        outcomes.push({ at: Date.now(), ok });
        if (ok) acks.push({ serviceId, revision: res.body.service.revision, changed: res.body.changed });
      }
    };
    // Readers fill the cache through both replicas, so the invalidators have keys to keep right.
    const reader = async () => {
      while (writing) await call(registries[next % 2], 'GET', `${REGISTRY}/models/lookup?environment=development&model=flip-${Math.floor(Math.random() * MODELS)}`).catch(() => undefined);
    };
    const load = [...Array.from({ length: WRITERS }, writer), reader(), reader()];
    const progress = async (what: string) => {
      const from = acks.length;
      await waitFor(() => acks.length >= from + WRITES_PER_STEP, 30_000, what);
    };

    const victim = cluster.nodes[0].name;
    let leader = '';
    try {
      for (let round = 1; round <= 2; round++) {
        await progress(`writes before killing ${victim} (round ${round})`);
        await cluster.killNode(victim);
        await progress(`writes while ${victim} is down (round ${round})`);
        await cluster.startNode(victim);
        await waitFor(async () => {
          const view = await cluster.stream(subjects.registryStream);
          return view && view.replicas.length === 2 && view.replicas.every((r) => r.current);
        }, 30_000, `${victim} current again`);
      }
      await progress('writes before killing the stream leader');
      leader = (await cluster.stream(subjects.registryStream))?.leader ?? '';
      expect(leader).not.toBe('');
      await cluster.killNode(leader);
      await progress(`writes after killing the stream leader ${leader}`);
    } finally {
      writing = false;
      await Promise.all(load);
    }
    const lastWrite = Date.now();

    // Converged: both routers route by the registry, the invalidators' consumer has acked everything
    // and the cache equals the database, every acknowledged revision is on the stream.
    let truth: Awaited<ReturnType<typeof snapshot>> = [];
    // When each consumer first agreed with the registry (ms after the last write).
    const agreed: Record<string, number> = {};
    const mark = (what: string, ok: boolean) => {
      if (ok) agreed[what] ??= Date.now() - lastWrite;
      return ok;
    };
    await waitFor(async () => {
      truth = await snapshot(registries[0]);
      const expected = JSON.stringify(routableModels(truth));
      const routersAgree = (await Promise.all(routers.map(async (router, k) => mark(`router${k + 1}`, JSON.stringify(await routerModels(router)) === expected)))).every(Boolean);
      // JetStream's API may not answer while the cluster elects new leaders.
      const consumer = await nats
        .jsm()
        .then((jsm) => jsm.consumers.info(subjects.registryStream, 'cache-invalidator'))
        .catch(() => undefined);
      const consumed = mark('consumer', !!consumer && consumer.num_pending === 0 && consumer.num_ack_pending === 0);
      const cached = mark('cache', (await staleCacheKeys(truth)).length === 0);
      return routersAgree && consumed && cached;
    }, 60_000, 'routers, cache and consumer to agree with the registry').catch(() => undefined);
    const convergedMs = Date.now() - lastWrite;
    const expected = routableModels(truth);
    for (const router of routers) expect(await routerModels(router)).toEqual(expected);
    expect(await staleCacheKeys(truth)).toEqual([]);
    expect(await (await nats.jsm()).consumers.info(subjects.registryStream, 'cache-invalidator')).toMatchObject({ num_pending: 0, num_ack_pending: 0 });

    // The stream: one message per revision, and every acknowledged change's revision on it.
    const stream = await registryStream(nats, subjects);
    const copies = new Map<number, number>();
    for (const e of stream) copies.set(e.revision, (copies.get(e.revision) ?? 0) + 1);
    expect([...copies].filter(([, n]) => n !== 1)).toEqual([]);
    const changed = acks.filter((a) => a.changed);
    const lost = changed.filter((a) => !copies.has(a.revision));
    expect(lost).toEqual([]);

    // Refused writes: PostgreSQL takes writes whatever NATS does (the outbox holds the events).
    let longestRefusedMs = 0;
    let refusedSince: number | undefined;
    for (const o of outcomes) {
      if (!o.ok) refusedSince ??= o.at;
      else if (refusedSince !== undefined) {
        longestRefusedMs = Math.max(longestRefusedMs, o.at - refusedSince);
        refusedSince = undefined;
      }
    }
    const refused = outcomes.filter((o) => !o.ok).length;
    process.stdout.write(
      `[cluster] ${outcomes.length} writes, ${acks.length} accepted (${changed.length} changes), ${refused} refused (longest run ${longestRefusedMs} ms), ` +
        `${stream.length} events on the stream, events lost = ${lost.length}, duplicates = 0; ${victim} killed twice, stream leader ${leader} killed; ` +
        `routers, cache and durable consumer converged ${convergedMs} ms after the last write (${JSON.stringify(agreed)})\n`,
    );
    expect(refused).toBe(0);
    await cluster.startNode(leader);
  }, 180_000);

  it('serves every non-streaming request while one replica of each app is SIGKILLed', async () => {
    let running = true;
    let served = 0;
    let movedToOtherRouter = 0;
    const failures: string[] = [];
    // A load balancer's client: try one router; only when no answer came at all (refused, reset) try
    // the other, since then the request may not have been forwarded. Any HTTP answer is final.
    const complete = async (first: number): Promise<void> => {
      for (const k of [first, 1 - first]) {
        const attempt = await fetch(`${routers[k].url}/v1/chat/completions`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${API_KEY}` },
          body: JSON.stringify({ model: 'steady', messages: [{ role: 'user', content: 'hi' }] }),
        }).then(
          async (response) => ({ response, text: await response.text() }),
          (error: Error) => ({ error }),
        );
        if ('error' in attempt) {
          if (k === first) movedToOtherRouter++;
          else failures.push(`no answer from either router: ${String((attempt.error as { cause?: unknown }).cause ?? attempt.error.message)}`);
          continue;
        }
        const { response, text } = attempt;
        if (response.status === 200) served++;
        else failures.push(`${response.status} ${text.slice(0, 200)}`);
        return;
      }
    };
    let turn = 0;
    const clients = Array.from({ length: 6 }, async () => {
      while (running) await complete(turn++ % 2);
    });
    try {
      await waitFor(() => served >= 100, 30_000, 'load flowing through both routers');
      const before = served;
      await Promise.all([stopApp(registries[1], 'SIGKILL'), stopApp(routers[1], 'SIGKILL'), stopApp(probers[1], 'SIGKILL'), stopApp(invalidators[1], 'SIGKILL')]);
      await waitFor(() => served >= before + 200, 30_000, 'load after the kills');
    } finally {
      running = false;
      await Promise.all(clients);
    }

    // The survivors still form a system: a change through the remaining registry-api reaches the router.
    const res = await call(registries[0], 'PUT', `${REGISTRY}/flip-0/status`, { adminState: 'disabled', reason: 'after the kills' });
    expect(res.status).toBe(200);
    const expected = routableModels(await snapshot(registries[0]));
    await waitFor(async () => JSON.stringify(await routerModels(routers[0])) === JSON.stringify(expected), 20_000, 'the surviving router to apply the change').catch(() => undefined);
    expect(await routerModels(routers[0])).toEqual(expected);
    process.stdout.write(`[cluster] SIGKILL of one registry-api, router, prober and invalidator under load: ${served} completions served, ${failures.length} failed, ${movedToOtherRouter} moved to the other router on a connection error\n`);
    expect(failures).toEqual([]);
  }, 120_000);
});

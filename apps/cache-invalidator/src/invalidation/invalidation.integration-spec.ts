import { Redis } from 'ioredis';
import { createRedisConnection, DiscoveryCacheRepository } from '@switchboard/discovery-cache';
import { encodeJson } from '@switchboard/messaging';
import { createTestEnvironment, PrivateRedisServer, TestEnvironment, waitFor } from '@switchboard/testing';
import { EventPublisher, RunningInvalidator, startCacheInvalidator } from '../testing/cache-invalidator-harness.util';

const instance = (over: Record<string, unknown>) =>
  ({ serviceId: 'vllm-1', serviceName: 'vllm', environment: 'production', status: 'healthy', adminState: 'enabled', models: [], internalUrl: 'http://10.0.0.1:8000', ...over }) as never;
const place = { serviceId: 'vllm-1', serviceName: 'vllm', environment: 'production' };
const healthy = { status: 'healthy', adminState: 'enabled' } as const;
const degraded = { status: 'degraded', adminState: 'enabled' } as const;

/** Every key of the cache layout the cases below may touch. */
const KEYS = [
  'discovery:production:vllm',
  'discovery:staging:vllm',
  'discovery:production:vllm-old',
  'discovery:production:other',
  'model_registry:production:llama',
  'model_registry:production:qwen',
  'model_registry:production:mistral',
  'model_registry:staging:llama',
];

describe('cache-invalidator (real NATS JetStream and Redis)', () => {
  let env: TestEnvironment;
  let events: EventPublisher;
  let redis: Redis;
  let cache: DiscoveryCacheRepository;
  let revision = 100;
  const running: RunningInvalidator[] = [];

  const start = async (overrides: Record<string, string> = {}) => {
    const invalidator = await startCacheInvalidator(env, overrides);
    running.push(invalidator);
    return invalidator;
  };
  const seed = async (rev = 1) => {
    for (const key of KEYS) {
      await redis.del(key);
      await cache.setIfNewer(key, rev, 'seed');
    }
  };
  /** The key → state map, for comparing whole keyspaces. */
  const keyspace = async () => Object.fromEntries(await Promise.all(KEYS.map(async (key) => [key, await cache.get(key)])));
  const statusChanged = (rev: number, models: string[]) => events.publish('statusChanged', { revision: rev, instance: instance({ models, revision: rev }), from: healthy, to: degraded }, place);

  beforeAll(async () => {
    env = await createTestEnvironment('invalidator');
    events = await EventPublisher.connect(env);
    // registry-api's side of registry.cmd.revision: the highest revision really issued so far.
    events.nats.subscribe(events.subjects.revisionCommand, (msg) => msg.respond(encodeJson({ revision })));
    redis = createRedisConnection({ url: env.redisUrl, keyPrefix: env.redisKeyPrefix, name: 'invalidator-spec' });
    cache = new DiscoveryCacheRepository(redis, 120);
    await new Promise((resolve) => redis.once('ready', resolve));
  });
  afterEach(async () => {
    jest.restoreAllMocks();
    await Promise.all(running.splice(0).map((r) => r.close()));
  });
  afterAll(async () => {
    await events?.close();
    redis?.disconnect();
    await env?.dispose();
  });

  it.each([
    {
      what: 'a status change: the discovery list and each model of the instance',
      publish: (rev: number) => statusChanged(rev, ['llama', 'qwen']),
      affected: ['discovery:production:vllm', 'model_registry:production:llama', 'model_registry:production:qwen'],
    },
    {
      what: 'a re-registration that moved service and models: the new place and the old one',
      publish: (rev: number) =>
        events.publish('registered', { revision: rev, instance: instance({ models: ['llama'], revision: rev }), previous: { serviceName: 'vllm-old', environment: 'production', models: ['mistral'] } }, place),
      affected: ['discovery:production:vllm', 'discovery:production:vllm-old', 'model_registry:production:llama', 'model_registry:production:mistral'],
    },
    {
      what: 'a deregistration: the discovery list and the models it served',
      publish: (rev: number) =>
        events.publish('deregistered', { revision: rev, serviceId: 'vllm-1', serviceName: 'vllm', environment: 'staging', models: ['llama'] }, { ...place, environment: 'staging' }),
      affected: ['discovery:staging:vllm', 'model_registry:staging:llama'],
    },
  ])('replaces exactly the keys each event affects, and no others: $what', async ({ publish, affected }) => {
    const invalidator = await start();
    await seed();
    const before = invalidator.handler.status.handled;
    const rev = ++revision;
    await publish(rev);
    await waitFor(() => invalidator.handler.status.handled === before + 1, 10_000, 'the event to be handled');

    const expected = Object.fromEntries(
      KEYS.map((key) => [key, affected.includes(key) ? { state: 'invalidated', revision: rev } : { state: 'hit', revision: 1, value: 'seed' }]),
    );
    expect(await keyspace()).toEqual(expected);
  });

  it('leaves an entry that is already newer than the event (replays and reordering are harmless)', async () => {
    const invalidator = await start();
    await seed();
    await cache.setIfNewer('discovery:production:vllm', 5000, 'newer');
    const before = invalidator.handler.status.handled;
    await statusChanged(++revision, ['llama']);
    await waitFor(() => invalidator.handler.status.handled === before + 1);
    expect(await cache.get('discovery:production:vllm')).toEqual({ state: 'hit', revision: 5000, value: 'newer' });
    expect(await cache.get('model_registry:production:llama')).toEqual({ state: 'invalidated', revision });
  });

  it('drops an invalid event for good and goes on with the ones behind it; /health and /metrics tell', async () => {
    const invalidator = await start();
    await seed();
    const before = invalidator.handler.status.handled;
    await events.publishGarbage(++revision);
    await statusChanged(++revision, []);
    await waitFor(() => invalidator.handler.status.handled === before + 1, 10_000, 'the valid event behind the invalid one');
    expect(await cache.get('discovery:production:vllm')).toEqual({ state: 'invalidated', revision });

    const backlog = await waitFor(async () => {
      const b = await invalidator.handler.backlog();
      return b && b.pending === 0 && b.unacknowledged === 0 ? b : undefined;
    });
    expect(backlog).toEqual({ pending: 0, unacknowledged: 0 });
    const health = await invalidator.http('/health');
    expect(health.status).toBe(200);
    expect(health.body.details).toMatchObject({ nats: { status: 'up' }, redis: { status: 'up' }, consumer: { status: 'up', consuming: true, pending: 0, unacknowledged: 0 } });
    const metrics = (await invalidator.http('/metrics')).body as string;
    expect(metrics).toMatch(/cache_invalidation_errors_total\{reason="invalid_event"[^}]*\} [1-9]/);
    expect(metrics).toMatch(/cache_invalidations_total\{kind="statusChanged"[^}]*\} [1-9]/);
    expect(metrics).toMatch(/cache_invalidation_lag_seconds_count\{[^}]*\} [1-9]/);
  });

  it('drops a forged event whose revision the registry never reached: its keys still fill, later real events apply; /metrics counts it', async () => {
    const invalidator = await start();
    await seed();
    const before = invalidator.handler.status.handled;
    // Anyone on the open bus can put this on the stream; a marker at this revision would refuse every fill of its keys.
    await events.publish('statusChanged', { revision: 10_000_000, instance: instance({ models: ['llama'], revision: 10_000_000 }), from: healthy, to: degraded }, place);
    // A real event behind it: once handled, the forged one has been decided (one consumer, in order).
    await statusChanged(++revision, ['qwen']);
    await waitFor(() => invalidator.handler.status.handled === before + 1, 10_000, 'the real event behind the forged one');

    expect(await cache.get('model_registry:production:llama')).toEqual({ state: 'hit', revision: 1, value: 'seed' });
    expect(await cache.get('discovery:production:vllm')).toEqual({ state: 'invalidated', revision });
    expect(await cache.setIfNewer('discovery:production:vllm', revision, 'fresh')).toBe(true);
    const metrics = (await invalidator.http('/metrics')).body as string;
    expect(metrics).toMatch(/cache_invalidation_events_rejected_total\{reason="ahead_of_registry"[^}]*\} 1\b/);
    await waitFor(async () => (await invalidator.handler.backlog())?.unacknowledged === 0, 10_000, 'the forged event to leave the consumer for good');
  });

  it('loses no invalidation across its own restart: what was published while it was down is applied when it returns', async () => {
    const first = await start();
    await seed();
    await first.close();

    const revisions = [++revision, ++revision, ++revision];
    await statusChanged(revisions[0], ['llama']);
    await events.publish('deregistered', { revision: revisions[1], serviceId: 'x', serviceName: 'other', environment: 'production', models: [] }, { ...place, serviceName: 'other' });
    await statusChanged(revisions[2], ['qwen']);
    expect(await cache.get('discovery:production:vllm')).toEqual({ state: 'hit', revision: 1, value: 'seed' });

    const second = await start();
    await waitFor(() => second.handler.status.handled === 3, 10_000, 'the three events published meanwhile');
    expect(await keyspace()).toMatchObject({
      'discovery:production:vllm': { state: 'invalidated', revision: revisions[2] },
      'discovery:production:other': { state: 'invalidated', revision: revisions[1] },
      'model_registry:production:llama': { state: 'invalidated', revision: revisions[0] },
      'model_registry:production:qwen': { state: 'invalidated', revision: revisions[2] },
      'model_registry:production:mistral': { state: 'hit', revision: 1 },
    });
  });

  it('hands an event that a dying replica held to another replica', async () => {
    const gate = holdFirstInvalidation();
    const doomed = await start({ CONSUMER_ACK_WAIT_MS: '1000' });
    await seed();
    await statusChanged(++revision, ['llama']);
    await gate.reached;
    await doomed.crash();

    const survivor = await start({ CONSUMER_ACK_WAIT_MS: '1000' });
    await waitFor(() => survivor.handler.status.handled === 1, 15_000, 'the redelivery to the surviving replica');
    expect(await cache.get('model_registry:production:llama')).toEqual({ state: 'invalidated', revision });
    gate.release();
  });

  it('shares one durable consumer between replicas: each event is handled exactly once', async () => {
    const replicas = await Promise.all([start(), start()]);
    const base = replicas.map((r) => r.handler.status.handled);
    const count = 200;
    for (let i = 0; i < count; i++) await statusChanged(++revision, [`m${i % 7}`]);
    const handled = () => replicas.reduce((sum, r, i) => sum + r.handler.status.handled - base[i], 0);
    await waitFor(() => handled() >= count, 20_000, `${count} events handled`);
    await waitFor(async () => (await replicas[0].handler.backlog())?.unacknowledged === 0);
    expect(handled()).toBe(count);
  });

  describe('with its own redis-server, killed and restarted', () => {
    let server: PrivateRedisServer;
    let privateCache: DiscoveryCacheRepository;

    beforeAll(async () => {
      server = await PrivateRedisServer.start();
      const connection = createRedisConnection({ url: server.url, keyPrefix: env.redisKeyPrefix, name: 'invalidator-spec-private' });
      connection.on('error', () => undefined);
      privateCache = new DiscoveryCacheRepository(connection, 120);
    });
    afterAll(async () => {
      privateCache?.redis.disconnect();
      await server?.dispose();
    });

    it('keeps events unacknowledged while Redis is down, reports it, and applies them when Redis returns', async () => {
      // Its own durable consumer: this replica replays the stream into this Redis from the start.
      const invalidator = await start({ REDIS_URL: server.url, CONSUMER_NAME: 'outage', CONSUMER_ACK_WAIT_MS: '1000' });
      await waitFor(async () => (await invalidator.handler.backlog())?.pending === 0 && (await invalidator.handler.backlog())?.unacknowledged === 0, 15_000, 'the replay');

      await server.stop();
      const during = [++revision, ++revision];
      await statusChanged(during[0], ['llama']);
      await statusChanged(during[1], ['qwen']);
      const down = await waitFor(async () => {
        const health = await invalidator.http('/health');
        return health.status === 503 ? health : undefined;
      }, 10_000, '/health to report Redis down');
      expect(down.body.error).toMatchObject({ redis: { status: 'down' } });
      expect((await invalidator.handler.backlog())?.unacknowledged ?? 0).toBeGreaterThan(0);

      await server.start();
      // The restarted Redis is empty; the redelivered events leave their markers in it.
      await waitFor(async () => privateCache.ready && (await privateCache.get('model_registry:production:qwen')).state === 'invalidated', 15_000, 'the events to be applied');
      expect(await privateCache.get('discovery:production:vllm')).toEqual({ state: 'invalidated', revision: during[1] });
      expect(await privateCache.get('model_registry:production:llama')).toEqual({ state: 'invalidated', revision: during[0] });
      const healthy = await waitFor(async () => {
        const health = await invalidator.http('/health');
        return health.status === 200 && health.body.details.consumer.unacknowledged === 0 ? health : undefined;
      }, 15_000, '/health to recover with an empty backlog');
      expect(healthy.body.details.redis.status).toBe('up');
      expect((await invalidator.http('/metrics')).body).toMatch(/cache_invalidation_errors_total\{reason="redis"[^}]*\} [1-9]/);
    });
  });
});

/** Makes the first invalidation wait until released, and tells when it is waiting. */
function holdFirstInvalidation(): { reached: Promise<void>; release: () => void } {
  let release!: () => void;
  let reached!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  const reachedPromise = new Promise<void>((resolve) => (reached = resolve));
  const original = DiscoveryCacheRepository.prototype.invalidate;
  let first = true;
  jest.spyOn(DiscoveryCacheRepository.prototype, 'invalidate').mockImplementation(async function (this: DiscoveryCacheRepository, keys, rev) {
    if (first) {
      first = false;
      reached();
      await released;
    }
    return original.call(this, keys, rev);
  });
  return { reached: reachedPromise, release };
}

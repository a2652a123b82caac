import { Logger } from '@nestjs/common';
import { Client } from 'pg';
import { CacheEntry, DiscoveryCacheRepository } from '@switchboard/discovery-cache';
import { RegistryRepository, RegistryTransaction, RegistryWrites } from '@switchboard/persistence';
import { PrivateRedisServer, waitFor } from '@switchboard/testing';
import { OutboxRelayService } from '../outbox/outbox-relay.service';
import { CachedRegistry, startCachedRegistry, withoutLiveness } from '../testing/discovery-cache-harness.util';
import { BASE, registration, writeHeaders } from '../testing/registry-api-harness.util';

describe('discovery cache (real Redis, NATS, PostgreSQL, and the invalidation consumer)', () => {
  let sys: CachedRegistry;
  const http = (method: string, path: string, body?: unknown) => sys.api.http(method, path, body, method === 'GET' ? {} : writeHeaders);
  const register = async (overrides: Record<string, unknown>) => {
    const res = await http('POST', `${BASE}/register`, registration(overrides));
    expect([200, 201]).toContain(res.status);
    return res.body.service.revision as number;
  };
  const setStatus = async (serviceId: string, body: Record<string, unknown>) => {
    const res = await http('PUT', `${BASE}/${serviceId}/status`, body);
    expect(res.status).toBe(200);
    return res.body.service.revision as number;
  };
  const discover = (service: string, environment = 'production') => http('GET', `${BASE}/discover/${service}?environment=${environment}`);
  const lookup = (model: string, environment = 'production') => http('GET', `${BASE}/models/lookup?environment=${environment}&model=${encodeURIComponent(model)}`);
  const metric = (pattern: RegExp) => metricValue(sys.api.url, (l) => pattern.test(l));
  /** The DB's truth for a discovery key, through the uncached list endpoint. */
  const truth = async (service: string, environment = 'production') =>
    withoutLiveness((await http('GET', `${BASE}/services?serviceName=${service}&environment=${environment}`)).body.services);

  beforeAll(async () => {
    sys = await startCachedRegistry('cache');
  });
  afterEach(() => jest.restoreAllMocks());
  afterAll(async () => {
    await sys?.close();
  });

  describe('cache-aside', () => {
    it('answers discovery from Redis after the first read, still spreading calls across the routable instances', async () => {
      await register({ serviceName: 'cached', serviceId: 'cached-a' });
      await register({ serviceName: 'cached', serviceId: 'cached-b' });
      await sys.settle();
      const hitsBefore = await metric(/^registry_cache_hits_total\{lookup="discovery"/);

      expect((await discover('cached')).status).toBe(200);
      const entry = await sys.waitForKey('discovery:production:cached', 'hit');
      expect((entry as { value: { serviceId: string }[] }).value.map((v) => v.serviceId)).toEqual(['cached-a', 'cached-b']);

      // A change behind the registry's back (no revision, no event) is invisible while the entry lives: the answers come from Redis.
      const db = new Client({ connectionString: sys.api.env.databaseUrl });
      await db.connect();
      await db.query(`UPDATE service_instances SET version = 'behind-its-back' WHERE service_id = 'cached-a'`);
      await db.end();
      const picks = [];
      for (let i = 0; i < 6; i++) picks.push((await discover('cached')).body.service);
      expect(new Set(picks.map((p) => p.serviceId))).toEqual(new Set(['cached-a', 'cached-b']));
      expect(picks.find((p) => p.serviceId === 'cached-a').version).toBe('1.2.0');
      expect(await metric(/^registry_cache_hits_total\{lookup="discovery"/)).toBeGreaterThanOrEqual(hitsBefore + 6);

      // A real change replaces the entry; the next read takes what PostgreSQL holds now.
      const revision = await setStatus('cached-b', { status: 'degraded' });
      await sys.waitForKey('discovery:production:cached', 'invalidated', revision);
      const after = (await discover('cached')).body.service;
      expect(after).toMatchObject({ serviceId: 'cached-a', version: 'behind-its-back' });
      expect((await sys.waitForKey('discovery:production:cached', 'hit')).state).toBe('hit');
    });

    it('serves the model lookup from Redis: every deployment of a model in an environment, with its status word', async () => {
      for (const endpoint of ['10.1.0.1:8000', '10.1.0.2:8000']) {
        expect((await http('POST', `${BASE}/models`, { modelName: 'llama-2-7b', environment: 'production', endpoint })).status).toBe(201);
      }
      await http('POST', `${BASE}/models`, { modelName: 'llama-2-7b', environment: 'staging', endpoint: '10.1.0.3:8000' });

      const first = await lookup('llama-2-7b');
      expect(first.status).toBe(200);
      expect(first.body).toMatchObject({ success: true, count: 2 });
      expect(first.body.models.map((m: { endpoint: string; status: string }) => [m.endpoint, m.status]).sort()).toEqual([
        ['10.1.0.1:8000', 'ready'],
        ['10.1.0.2:8000', 'ready'],
      ]);
      await sys.waitForKey('model_registry:production:llama-2-7b', 'hit');

      const disabled = await http('POST', `${BASE}/models/disable`, { modelName: 'llama-2-7b', environment: 'production' });
      const revision = Math.max(...disabled.body.models.map((m: { revision: number }) => m.revision));
      await sys.waitForKey('model_registry:production:llama-2-7b', 'invalidated', revision);
      expect((await lookup('llama-2-7b')).body.models.map((m: { status: string }) => m.status)).toEqual(['disabled', 'disabled']);
      expect((await lookup('llama-2-7b', 'staging')).body.models.map((m: { status: string }) => m.status)).toEqual(['ready']);
    });

    it('answers 404 for a model with no deployment there, and 400 naming each missing parameter', async () => {
      const missing = await lookup('no-such-model');
      expect(missing.status).toBe(404);
      expect(missing.body).toMatchObject({ error: 'MODEL_NOT_FOUND', message: 'model not found in registry: no-such-model (environment: production)' });
      const bad = await http('GET', `${BASE}/models/lookup`);
      expect(bad.status).toBe(400);
      expect(bad.body.errors).toEqual(expect.arrayContaining([{ field: 'environment', reason: 'environment is required' }, { field: 'model', reason: 'model is required' }]));
    });

    it('does not cache discovery without an environment (no key names it)', async () => {
      await register({ serviceName: 'anyenv', serviceId: 'anyenv-1' });
      await sys.settle();
      expect((await http('GET', `${BASE}/discover/anyenv`)).status).toBe(200);
      // Only the registration's marker is there: the read stored nothing.
      expect(await sys.keys.redis.keys(`${sys.api.env.redisKeyPrefix}*anyenv*`)).toEqual([`${sys.api.env.redisKeyPrefix}discovery:production:anyenv`]);
      expect((await sys.keys.get('discovery:production:anyenv')).state).toBe('invalidated');
    });
  });

  describe('invalidation', () => {
    const KEYS = [
      'discovery:production:alpha',
      'discovery:staging:alpha',
      'discovery:production:beta',
      'model_registry:production:m1',
      'model_registry:staging:m1',
      'model_registry:production:m2',
      'model_registry:production:m3',
    ];
    const warm = async () => {
      await sys.settle();
      for (const key of KEYS) {
        const [kind, env, name] = key.split(':');
        await (kind === 'discovery' ? discover(name, env) : lookup(name, env));
      }
      return Object.fromEntries(await Promise.all(KEYS.map(async (k) => [k, await sys.keys.get(k)])));
    };

    beforeAll(async () => {
      await register({ serviceName: 'alpha', serviceId: 'inv-a1', models: ['m1'] });
      await register({ serviceName: 'alpha', serviceId: 'inv-a2', environment: 'staging', models: ['m1'] });
      await register({ serviceName: 'beta', serviceId: 'inv-b1', models: ['m2'] });
    });

    it.each([
      {
        what: 'a status change',
        write: () => setStatus('inv-a1', { status: 'degraded' }),
        affected: ['discovery:production:alpha', 'model_registry:production:m1'],
      },
      {
        what: 'a re-registration that moves the instance to another service and model',
        write: () => register({ serviceName: 'beta', serviceId: 'inv-a1', models: ['m3'] }),
        affected: ['discovery:production:alpha', 'discovery:production:beta', 'model_registry:production:m1', 'model_registry:production:m3'],
      },
      {
        what: 'a deregistration',
        write: async () => (await http('DELETE', `${BASE}/services/inv-b1`)).body.revision as number,
        affected: ['discovery:production:beta', 'model_registry:production:m2'],
      },
    ])('$what replaces exactly the keys it affects, and the next reads see the change', async ({ write, affected }) => {
      const before = await warm();
      expect(Object.values(before).every((e) => (e as CacheEntry<unknown>).state === 'hit')).toBe(true);

      const revision = await write();
      for (const key of affected) await sys.waitForKey(key, 'invalidated', revision);
      await sys.settle();
      const after = Object.fromEntries(await Promise.all(KEYS.map(async (k) => [k, await sys.keys.get(k)])));
      expect(after).toEqual(Object.fromEntries(KEYS.map((k) => [k, affected.includes(k) ? { state: 'invalidated', revision } : before[k]])));

      for (const key of affected.filter((k) => k.startsWith('discovery:'))) {
        const [, env, name] = key.split(':');
        await discover(name, env);
        const refilled = await sys.keys.get(key);
        expect(refilled.state).toBe('hit');
        expect(withoutLiveness((refilled as { value: [] }).value)).toEqual(await truth(name, env));
      }
    });

    it('loses no invalidation while the invalidator is stopped: it catches up from the stream when it starts again', async () => {
      await register({ serviceName: 'gamma', serviceId: 'inv-g1' });
      await warm();
      await discover('gamma');
      await sys.waitForKey('discovery:production:gamma', 'hit');
      await sys.invalidator.stop();

      const revision = await setStatus('inv-g1', { adminState: 'disabled' });
      await sys.api.app.get(OutboxRelayService).flush();
      // Nobody invalidates meanwhile: the cached answer is the old one (PostgreSQL would answer 503).
      const stale = await discover('gamma');
      expect(stale.status).toBe(200);
      expect(stale.body.service).toMatchObject({ serviceId: 'inv-g1', adminState: 'enabled' });
      expect(stale.body.service.revision).toBeLessThan(revision);
      const entry = await sys.keys.get('discovery:production:gamma');
      expect(entry).toMatchObject({ state: 'hit', revision: expect.any(Number) });
      expect((entry as { revision: number }).revision).toBeLessThan(revision);

      sys.invalidator.start();
      await sys.waitForKey('discovery:production:gamma', 'invalidated', revision);
      expect((await discover('gamma')).status).toBe(503);
    });
  });

  describe('the cache-aside race, driven through each interleaving', () => {
    // R: the reader reads PostgreSQL; W: it offers the value to Redis; C: a writer commits a change;
    // M: the invalidator replaces the key by the change's marker. R before W, C before M; every order.
    const ORDERS = ['RWCM', 'RCWM', 'RCMW', 'CRWM', 'CRMW', 'CMRW'];

    it.each(ORDERS)('%s never leaves an old value in the cache', async (order) => {
      const service = `race-${order.toLowerCase()}`;
      const key = `discovery:production:${service}`;
      await register({ serviceName: service, serviceId: `${service}-a` });
      await register({ serviceName: service, serviceId: `${service}-b` });
      await sys.settle();
      await sys.keys.redis.del(key);

      const read = gate<void>();
      const fill = gate<boolean>();
      const mark = gate<number>();
      intercept(RegistryRepository.prototype, 'listAsOfRevision', (filter: { serviceName?: string }) => (filter.serviceName === service ? read : undefined));
      intercept(DiscoveryCacheRepository.prototype, 'setIfNewer', (k: string) => (k === key ? fill : undefined));
      intercept(DiscoveryCacheRepository.prototype, 'invalidate', (keys: string[]) => (keys.includes(key) ? mark : undefined));

      const answer = discover(service);
      await read.arrived;
      let revision = 0;
      for (const step of order) {
        if (step === 'R') await read.open();
        if (step === 'W') await fill.open();
        if (step === 'C') revision = await setStatus(`${service}-a`, { status: 'unhealthy' });
        if (step === 'M') {
          await mark.arrived;
          await mark.open();
        }
      }
      expect((await answer).status).toBe(200);
      const entry = await sys.keys.get(key);
      jest.restoreAllMocks();

      // What clients see from now on: the change, never the instance it made unhealthy.
      for (let i = 0; i < 4; i++) expect((await discover(service)).body.service.serviceId).toBe(`${service}-b`);
      if (entry.state === 'hit') {
        expect(withoutLiveness(entry.value as [])).toEqual(await truth(service));
      } else {
        expect(entry).toEqual({ state: 'invalidated', revision });
      }
      // The one interleaving that breaks plain cache-aside: the stale value arrives after the invalidation, and is refused.
      expect(await fill.result).toBe(order !== 'RCMW');
    });

    it('does not cache a read made while an earlier revision is still uncommitted (revisions commit out of order)', async () => {
      const service = 'ooo';
      const key = `discovery:production:${service}`;
      await register({ serviceName: service, serviceId: 'ooo-a' });
      await register({ serviceName: service, serviceId: 'ooo-b' });
      await sys.settle();
      await sys.keys.redis.del(key);
      const inFlightBefore = await metric(/^registry_cache_fills_total\{outcome="writer_in_flight"/);

      // Writer A takes its revision, then stalls before committing; writer B takes a later one and commits.
      const stalled = gate<number>();
      intercept(RegistryTransaction.prototype, 'write', (writes: RegistryWrites) => (writes.outbox.some((r) => (r.payload as { subject?: string }).subject === 'ooo-a') ? stalled : undefined));
      const writerA = setStatus('ooo-a', { status: 'unhealthy' });
      await stalled.arrived;
      const revisionB = await setStatus('ooo-b', { status: 'degraded' });
      await sys.waitForKey(key, 'invalidated', revisionB);

      // B's commit is visible and A's is not: the read is right for now, but must not be cached,
      // because A's marker will be older than B's and so cannot replace what this read would store.
      expect((await discover(service)).body.service.serviceId).toBe('ooo-a');
      const entryBeforeA = await sys.keys.get(key);

      await stalled.open();
      const revisionA = await writerA;
      expect(revisionA).toBeLessThan(revisionB);
      await sys.settle();
      const entryAfterA = await sys.keys.get(key);
      jest.restoreAllMocks();
      for (let i = 0; i < 4; i++) expect((await discover(service)).body.service.serviceId).toBe('ooo-b');

      expect(entryBeforeA).toEqual({ state: 'invalidated', revision: revisionB });
      expect(entryAfterA).toEqual({ state: 'invalidated', revision: revisionB });
      expect(await metric(/^registry_cache_fills_total\{outcome="writer_in_flight"/)).toBe(inFlightBefore + 1);
      const refilled = await sys.waitForKey(key, 'hit');
      expect(withoutLiveness((refilled as { value: [] }).value)).toEqual(await truth(service));
    });
  });
});

describe('discovery cache with its own redis-server, killed and restarted', () => {
  let redis: PrivateRedisServer;
  let sys: CachedRegistry;
  const http = (method: string, path: string, body?: unknown) => sys.api.http(method, path, body, method === 'GET' ? {} : writeHeaders);
  const discover = () => http('GET', `${BASE}/discover/outage?environment=production`);

  beforeAll(async () => {
    redis = await PrivateRedisServer.start();
    sys = await startCachedRegistry('cacheoutage', { REDIS_URL: redis.url });
  });
  afterEach(() => jest.restoreAllMocks());
  afterAll(async () => {
    await sys?.close();
    await redis?.dispose();
  });

  it('answers from PostgreSQL while Redis is down, says so once, and recovers by itself with no invalidation lost', async () => {
    const warn = jest.spyOn(Logger.prototype, 'warn');
    const log = jest.spyOn(Logger.prototype, 'log');
    const said = (spy: jest.SpyInstance, text: string) => spy.mock.calls.filter(([message]) => String(message).includes(text)).length;
    await http('POST', `${BASE}/register`, registration({ serviceName: 'outage', serviceId: 'outage-a' }));
    await http('POST', `${BASE}/register`, registration({ serviceName: 'outage', serviceId: 'outage-b' }));
    await sys.settle();
    await discover();
    await sys.waitForKey('discovery:production:outage', 'hit');

    await redis.stop();
    for (let i = 0; i < 20; i++) expect((await discover()).status).toBe(200);
    const health = await http('GET', '/health');
    expect(health.status).toBe(200);
    expect(health.body.details.redis).toMatchObject({ status: 'up', state: 'down', degraded: true });
    expect(await metricValue(sys.api.url, (l) => l.startsWith('registry_cache_redis_up'))).toBe(0);

    // Writes go on; discovery shows them at once, from PostgreSQL.
    await http('PUT', `${BASE}/outage-a/status`, { status: 'offline' });
    for (let i = 0; i < 4; i++) expect((await discover()).body.service.serviceId).toBe('outage-b');
    expect(said(warn, 'answering discovery from PostgreSQL')).toBe(1);

    await redis.start();
    await waitFor(async () => (await http('GET', '/health')).body.details.redis.state === 'up', 15_000, 'registry-api to reconnect to Redis');
    await sys.settle();
    for (let i = 0; i < 4; i++) expect((await discover()).body.service.serviceId).toBe('outage-b');
    const refilled = await sys.waitForKey('discovery:production:outage', 'hit');
    expect((refilled as { value: { serviceId: string; status: string }[] }).value.map((v) => [v.serviceId, v.status])).toEqual([
      ['outage-a', 'offline'],
      ['outage-b', 'healthy'],
    ]);
    expect(said(log, 'Redis is back')).toBe(1);
    expect(said(warn, 'answering discovery from PostgreSQL')).toBe(1);
    expect(await metricValue(sys.api.url, (l) => l.startsWith('registry_cache_misses_total') && l.includes('reason="redis_down"'))).toBeGreaterThan(0);
  });
});

/** Sum of the Prometheus samples on the lines `line` selects. */
async function metricValue(url: string, line: (l: string) => boolean): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  return text.split('\n').filter(line).reduce((sum, l) => sum + Number(l.split(' ').pop()), 0);
}

interface Gate<T> {
  /** Resolves when the intercepted call has arrived and waits. */
  arrived: Promise<void>;
  /** Lets the call proceed and resolves once it has returned. */
  open(): Promise<T>;
  /** What the call returned. */
  result: Promise<T>;
}

function gate<T>(): Gate<T> & { arrive(): void; opened: Promise<void>; finish(value: T): void } {
  let arrive!: () => void;
  let openNow!: () => void;
  let finish!: (value: T) => void;
  const arrived = new Promise<void>((r) => (arrive = r));
  const opened = new Promise<void>((r) => (openNow = r));
  const result = new Promise<T>((r) => (finish = r));
  return {
    arrived,
    opened,
    result,
    arrive,
    finish,
    open() {
      openNow();
      return result;
    },
  };
}

/** Makes calls of `method` for which `select` returns a gate wait at it; other calls pass straight through. */
function intercept<O extends object, K extends keyof O>(target: O, method: K, select: (...args: any[]) => ReturnType<typeof gate<any>> | undefined): void {
  const original = target[method] as unknown as (...args: unknown[]) => Promise<unknown>;
  jest.spyOn(target, method as never).mockImplementation((async function (this: unknown, ...args: unknown[]) {
    const g = select(...args);
    if (!g) return original.apply(this, args);
    g.arrive();
    await g.opened;
    const value = await original.apply(this, args);
    g.finish(value);
    return value;
  }) as never);
}

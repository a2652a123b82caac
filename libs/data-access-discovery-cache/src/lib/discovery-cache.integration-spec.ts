import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { freePort, testServices } from '@switchboard/testing';
import { DiscoveryCacheRepository } from './discovery-cache.repository';
import { createRedisConnection } from './redis-connection.util';

describe('DiscoveryCacheRepository (real Redis)', () => {
  const prefix = `t_cache_${randomBytes(4).toString('hex')}:`;
  let redis: Redis;
  let raw: Redis;
  let cache: DiscoveryCacheRepository;
  let n = 0;
  const key = () => `discovery:production:svc-${++n}`;

  beforeAll(async () => {
    redis = createRedisConnection({ url: testServices().redisUrl, keyPrefix: prefix, name: 'cache-spec' });
    raw = new Redis(testServices().redisUrl);
    cache = new DiscoveryCacheRepository(redis, 120);
    await new Promise((resolve) => redis.once('ready', resolve));
  });
  afterAll(async () => {
    const keys = await raw.keys(`${prefix}*`);
    if (keys.length) await raw.del(...keys);
    redis.disconnect();
    raw.disconnect();
  });

  it('stores a value with its revision under the prefixed key, with the TTL, and reads it back', async () => {
    const k = key();
    expect(await cache.get(k)).toEqual({ state: 'absent' });
    expect(await cache.setIfNewer(k, 4, [{ serviceId: 'a' }])).toBe(true);
    expect(await cache.get(k)).toEqual({ state: 'hit', revision: 4, value: [{ serviceId: 'a' }] });
    expect(await raw.hgetall(`${prefix}${k}`)).toEqual({ revision: '4', value: '[{"serviceId":"a"}]' });
    const ttl = await raw.ttl(`${prefix}${k}`);
    expect(ttl).toBeGreaterThan(100);
    expect(ttl).toBeLessThanOrEqual(120);
  });

  it('keeps a newer or equal value against an older read, and takes a newer one', async () => {
    const k = key();
    await cache.setIfNewer(k, 5, 'five');
    expect(await cache.setIfNewer(k, 4, 'four')).toBe(false);
    expect(await cache.setIfNewer(k, 5, 'five again')).toBe(false);
    expect(await cache.get(k)).toMatchObject({ revision: 5, value: 'five' });
    expect(await cache.setIfNewer(k, 6, 'six')).toBe(true);
    expect(await cache.get(k)).toMatchObject({ revision: 6, value: 'six' });
  });

  it('replaces a value by a marker at the event revision; a read from before it cannot come back, one from after can', async () => {
    const k = key();
    await cache.setIfNewer(k, 5, 'old');
    expect(await cache.invalidate([k], 7)).toBe(1);
    expect(await cache.get(k)).toEqual({ state: 'invalidated', revision: 7 });
    expect(await raw.hgetall(`${prefix}${k}`)).toEqual({ revision: '7', invalidated: '1' });
    expect(await raw.ttl(`${prefix}${k}`)).toBeGreaterThan(100);

    // The classic cache-aside race: a reader that read before revision 7 writes after the invalidation.
    expect(await cache.setIfNewer(k, 6, 'stale')).toBe(false);
    expect(await cache.get(k)).toEqual({ state: 'invalidated', revision: 7 });
    // A reader whose read includes revision 7 fills it again.
    expect(await cache.setIfNewer(k, 7, 'fresh')).toBe(true);
    expect(await cache.get(k)).toMatchObject({ state: 'hit', revision: 7, value: 'fresh' });
  });

  it('marks absent keys too, so a slow reader cannot fill them with what it read before the event', async () => {
    const k = key();
    expect(await cache.invalidate([k], 3)).toBe(1);
    expect(await cache.setIfNewer(k, 2, 'stale')).toBe(false);
    expect(await cache.get(k)).toEqual({ state: 'invalidated', revision: 3 });
  });

  it('never lets an older or repeated event replace a newer entry (replays and reordering are harmless)', async () => {
    const [newer, marked, older] = [key(), key(), key()];
    await cache.setIfNewer(newer, 9, 'nine');
    await cache.invalidate([marked], 8);
    await cache.setIfNewer(older, 2, 'two');
    expect(await cache.invalidate([newer, marked, older], 8)).toBe(1);
    expect(await cache.get(newer)).toMatchObject({ state: 'hit', revision: 9, value: 'nine' });
    expect(await cache.get(marked)).toEqual({ state: 'invalidated', revision: 8 });
    expect(await cache.get(older)).toEqual({ state: 'invalidated', revision: 8 });
    expect(await cache.invalidate([older], 8)).toBe(0);
    expect(await cache.invalidate([older], 1)).toBe(0);
  });

  it('does not touch keys outside the ones it is given', async () => {
    const [target, bystander] = [key(), key()];
    await cache.setIfNewer(target, 1, 'x');
    await cache.setIfNewer(bystander, 1, 'y');
    await cache.invalidate([target], 2);
    expect(await cache.get(bystander)).toMatchObject({ state: 'hit', revision: 1, value: 'y' });
  });

  it('hands out parsed values frozen, so one request cannot change what the next one reads', async () => {
    const k = key();
    await cache.setIfNewer(k, 1, [{ serviceId: 'a', models: ['m'] }]);
    const first = await cache.get<{ serviceId: string; models: string[] }[]>(k);
    const second = await cache.get<{ serviceId: string; models: string[] }[]>(k);
    if (first.state !== 'hit' || second.state !== 'hit') throw new Error('expected hits');
    expect(Object.isFrozen(first.value[0].models)).toBe(true);
    expect(() => first.value[0].models.push('n')).toThrow(TypeError);
    expect(second.value).toEqual([{ serviceId: 'a', models: ['m'] }]);
  });

  it('fails at once, without queueing, while Redis is unreachable', async () => {
    const nowhere = createRedisConnection({ url: `redis://127.0.0.1:${await freePort()}`, name: 'cache-spec-down' });
    nowhere.on('error', () => undefined);
    const down = new DiscoveryCacheRepository(nowhere, 120);
    try {
      expect(down.ready).toBe(false);
      await expect(down.get('discovery:production:x')).rejects.toThrow();
      await expect(down.invalidate(['discovery:production:x'], 1)).rejects.toThrow();
    } finally {
      nowhere.disconnect();
    }
  });
});

import { Redis } from 'ioredis';
import { RedisSentinelGroup, SENTINEL_MASTER_NAME, waitFor } from '@switchboard/testing';
import { DiscoveryCacheRepository } from './discovery-cache.repository';
import { createRedisConnection } from './redis-connection.util';

/**
 * The cache through Redis Sentinel (REDIS_SENTINELS + REDIS_SENTINEL_NAME): a private primary,
 * replica and sentinel. The connection finds the primary through the sentinel, and after a manual
 * failover and then a SIGKILL of the new primary, writes go on at whichever server is primary.
 */
describe('DiscoveryCacheRepository through Redis Sentinel (private redis-servers)', () => {
  let group: RedisSentinelGroup;
  let redis: Redis;
  let cache: DiscoveryCacheRepository;

  beforeAll(async () => {
    group = await RedisSentinelGroup.start();
    // The URL names no reachable server: only the sentinel can lead the connection to the primary.
    redis = createRedisConnection({ url: 'redis://127.0.0.1:1', sentinels: group.sentinelList, sentinelName: SENTINEL_MASTER_NAME, name: 'sentinel-spec', commandTimeoutMs: 500 });
    redis.on('error', () => undefined);
    cache = new DiscoveryCacheRepository(redis, 120);
    await waitFor(async () => cache.ready, 10_000, 'the cache connection ready through the sentinel');
  }, 60_000);

  afterAll(async () => {
    redis?.disconnect();
    await group?.dispose();
  });

  /** What the server on `port` holds for `key` (a direct connection, no sentinel). */
  async function heldBy(port: number, key: string): Promise<Record<string, string>> {
    const direct = new Redis({ host: '127.0.0.1', port, maxRetriesPerRequest: 0, retryStrategy: () => null });
    direct.on('error', () => undefined);
    try {
      return await direct.hgetall(key);
    } finally {
      direct.disconnect();
    }
  }

  /**
   * Writes until the value is on the server the sentinel names as primary. A write may land on the
   * old primary in the instant before it is demoted, and is then lost with its data (Redis replicates
   * asynchronously): the caller's retry is what puts it on the new one.
   */
  async function writeThroughFailover(key: string, revision: number, primary: number): Promise<void> {
    await waitFor(async () => {
      await cache.setIfNewer(key, revision, [{ serviceId: `at-${revision}` }]).catch(() => undefined);
      return (await heldBy(primary, key).catch(() => undefined))?.['revision'] === String(revision);
    }, 20_000, `a write at revision ${revision} on the new primary`);
  }

  it('reads and writes at the primary the sentinel names, and follows a failover and a killed primary', async () => {
    const first = await group.primaryPort();
    expect(await cache.setIfNewer('discovery:production:svc', 1, [{ serviceId: 'at-1' }])).toBe(true);
    expect(await cache.get('discovery:production:svc')).toEqual({ state: 'hit', revision: 1, value: [{ serviceId: 'at-1' }] });
    expect(await heldBy(first, 'discovery:production:svc')).toMatchObject({ revision: '1' });

    const second = await group.failover();
    expect(second).not.toBe(first);
    await writeThroughFailover('discovery:production:svc', 2, second);
    expect(await cache.get('discovery:production:svc')).toEqual({ state: 'hit', revision: 2, value: [{ serviceId: 'at-2' }] });
    expect(await cache.invalidate(['discovery:production:svc'], 3)).toBe(1);

    // The old primary came back as a replica; kill the new one and the sentinel promotes it again.
    await group.waitForSyncedReplica();
    await group.killPrimary();
    const third = await waitFor(async () => {
      const port = await group.primaryPort();
      return port !== second ? port : undefined;
    }, 20_000, 'the sentinel to promote the replica after the primary died');
    expect(third).toBe(first);
    await writeThroughFailover('discovery:production:svc', 4, third);
    expect(await cache.get('discovery:production:svc')).toEqual({ state: 'hit', revision: 4, value: [{ serviceId: 'at-4' }] });
  });
});

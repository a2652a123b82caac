import { SubjectSpace } from '@switchboard/contracts';
import { CacheEntry, CacheInvalidationHandler, createRedisConnection, DiscoveryCacheRepository } from '@switchboard/discovery-cache';
import { NatsClient } from '@switchboard/messaging';
import { waitFor } from '@switchboard/testing';
import { OutboxRelayService } from '../outbox/outbox-relay.service';
import { RunningRegistryApi, startRegistryApi } from './registry-api-harness.util';

/**
 * registry-api with its Redis cache on, plus the invalidation consumer that cache-invalidator runs
 * (the same class from the discovery-cache lib, on its own NATS and Redis connections), plus a
 * third Redis client to look at the keys.
 */
export interface CachedRegistry {
  api: RunningRegistryApi;
  /** Reads the suite's keys as they are in Redis. */
  keys: DiscoveryCacheRepository;
  invalidator: CacheInvalidationHandler;
  /** Waits until every committed event is on the stream and the invalidator has acknowledged it. */
  settle(): Promise<void>;
  /** Waits until `key` is in the given state (and revision, if given). */
  waitForKey(key: string, state: CacheEntry<unknown>['state'], revision?: number): Promise<CacheEntry<unknown>>;
  close(): Promise<void>;
}

export async function startCachedRegistry(label: string, overrides: Record<string, string> = {}): Promise<CachedRegistry> {
  const api = await startRegistryApi(label, { CACHE_ENABLED: 'true', ...overrides });
  const redisUrl = overrides['REDIS_URL'] ?? api.env.redisUrl;
  const keyConnection = createRedisConnection({ url: redisUrl, keyPrefix: api.env.redisKeyPrefix, name: `${label}-keys` });
  const invalidatorConnection = createRedisConnection({ url: redisUrl, keyPrefix: api.env.redisKeyPrefix, name: `${label}-invalidator` });
  for (const connection of [keyConnection, invalidatorConnection]) connection.on('error', () => undefined);
  const keys = new DiscoveryCacheRepository(keyConnection, 120);
  const nats = await NatsClient.connect({ servers: overrides['NATS_URL'] ?? api.env.natsUrl, name: `${label}-invalidator` });
  const invalidator = new CacheInvalidationHandler({
    nats,
    subjects: new SubjectSpace(api.env.subjectPrefix),
    cache: new DiscoveryCacheRepository(invalidatorConnection, 120),
    durableName: 'cache-invalidator',
    ackWaitMs: 1000,
  });
  invalidator.start();
  return {
    api,
    keys,
    invalidator,
    async settle() {
      await api.app.get(OutboxRelayService).flush();
      await waitFor(async () => {
        const backlog = await invalidator.backlog();
        return backlog?.pending === 0 && backlog.unacknowledged === 0;
      }, 30_000, 'the invalidator to acknowledge every event');
    },
    waitForKey(key, state, revision) {
      return waitFor(async () => {
        const entry = await keys.get(key);
        return entry.state === state && (revision === undefined || ('revision' in entry && entry.revision === revision)) ? entry : undefined;
      }, 10_000, `${key} to be ${state}${revision === undefined ? '' : ` at ${revision}`}`);
    },
    async close() {
      await invalidator.stop();
      await nats.close();
      keyConnection.disconnect();
      invalidatorConnection.disconnect();
      await api.close();
    },
  };
}

/** Instance views without the fields heartbeats change (they take no revision and publish no event). */
export function withoutLiveness<T extends { lastSeen?: unknown; load?: unknown }>(views: readonly T[]): Omit<T, 'lastSeen' | 'load'>[] {
  return views.map(({ lastSeen: _lastSeen, load: _load, ...rest }) => rest);
}

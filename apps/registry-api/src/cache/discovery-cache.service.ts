import { Inject, Injectable, Logger, OnApplicationShutdown } from '@nestjs/common';
import { DiscoveryCacheRepository } from '@switchboard/discovery-cache';
import { RegistryMetricsService } from '../observability/registry-metrics.service';
import { DISCOVERY_CACHE } from '../registry-api.tokens';

export type CacheLookup = 'discovery' | 'model';

/** A value read from PostgreSQL, with the revision it is complete up to (null: not safe to cache). */
export interface LoadedValue<T> {
  revision: number | null;
  value: T;
}

/**
 * Reads the value from PostgreSQL. `forCache`: the value will be offered to Redis, so it needs its
 * revision (the fence costs a statement); otherwise a plain read will do.
 */
export type Loader<T> = (forCache: boolean) => Promise<LoadedValue<T>>;

export type RedisState = 'up' | 'down' | 'disabled';

/**
 * Cache-aside in front of the discovery reads. Redis is an accelerator, never a dependency: any
 * failure (down, slow, script error) answers from PostgreSQL, is counted, and is logged once per
 * outage and once on recovery.
 */
@Injectable()
export class DiscoveryCacheService implements OnApplicationShutdown {
  private readonly logger = new Logger('DiscoveryCache');
  private health: 'unknown' | 'up' | 'down' = 'unknown';

  constructor(
    @Inject(DISCOVERY_CACHE) private readonly cache: DiscoveryCacheRepository | null,
    private readonly metrics: RegistryMetricsService,
  ) {
    if (!cache) {
      this.logger.log('discovery cache disabled (CACHE_ENABLED=false): every read goes to PostgreSQL');
      return;
    }
    this.metrics.redisUp.set(0);
    cache.redis.on('ready', () => this.markUp());
    cache.redis.on('error', (error: Error) => this.markDown(error.message));
    cache.redis.on('close', () => this.markDown('connection closed'));
    if (cache.ready) this.markUp(); // connected before this listener was attached
  }

  get state(): RedisState {
    if (!this.cache) return 'disabled';
    return this.cache.ready && this.health === 'up' ? 'up' : 'down';
  }

  /** The state for /health: after a failed command, a ping tells whether Redis answers again without waiting for traffic. */
  async probe(): Promise<RedisState> {
    if (this.cache?.ready && this.health !== 'up') {
      await this.cache.redis.ping().then(
        () => this.markUp(),
        () => undefined,
      );
    }
    return this.state;
  }

  async read<T>(lookup: CacheLookup, key: string, load: Loader<T>): Promise<T> {
    const cache = this.cache;
    if (!cache) return (await load(false)).value;
    if (!cache.ready) {
      this.metrics.cacheMisses.inc({ lookup, reason: 'redis_down' });
      return (await load(false)).value;
    }
    let entry;
    try {
      entry = await cache.get<T>(key);
      this.markUp();
    } catch (error) {
      this.failed('get', error as Error);
      this.metrics.cacheMisses.inc({ lookup, reason: 'error' });
      return (await load(false)).value;
    }
    if (entry.state === 'hit') {
      this.metrics.cacheHits.inc({ lookup });
      return entry.value;
    }
    this.metrics.cacheMisses.inc({ lookup, reason: entry.state });
    const loaded = await load(true);
    await this.fill(cache, key, loaded);
    return loaded.value;
  }

  async onApplicationShutdown(): Promise<void> {
    if (!this.cache) return;
    this.cache.redis.removeAllListeners('close');
    this.cache.redis.disconnect();
  }

  /** Offers the value read from PostgreSQL; the script keeps whatever is newer. */
  private async fill<T>(cache: DiscoveryCacheRepository, key: string, loaded: LoadedValue<T>): Promise<void> {
    if (loaded.revision === null) {
      this.metrics.cacheFills.inc({ outcome: 'writer_in_flight' });
      return;
    }
    try {
      const stored = await cache.setIfNewer(key, loaded.revision, loaded.value);
      this.metrics.cacheFills.inc({ outcome: stored ? 'stored' : 'newer_kept' });
    } catch (error) {
      this.failed('set', error as Error);
    }
  }

  private failed(op: 'get' | 'set', error: Error): void {
    this.metrics.cacheErrors.inc({ op });
    this.markDown(error.message);
  }

  private markUp(): void {
    if (this.health === 'up') return;
    this.logger.log(this.health === 'down' ? 'Redis is back: discovery cache on again' : 'connected to Redis: discovery cache on');
    this.health = 'up';
    this.metrics.redisUp.set(1);
  }

  private markDown(reason: string): void {
    if (this.health === 'down') return;
    this.logger.warn(`Redis unavailable (${reason}): answering discovery from PostgreSQL until it returns`);
    this.health = 'down';
    this.metrics.redisUp.set(0);
  }
}

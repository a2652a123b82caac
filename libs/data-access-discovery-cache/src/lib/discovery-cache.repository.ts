import type { Redis } from 'ioredis';

/**
 * Each key is a hash: `{ revision, value }` for a cached value, `{ revision, invalidated: 1 }` for
 * the marker an event leaves. `revision` is the registry revision the entry is complete up to.
 *
 * A reader may store over an absent key, an older value, or a marker no newer than its read (it
 * read after that change committed). Equal revisions keep the value already there.
 */
const SET_IF_NEWER = `
local stored = redis.call('HMGET', KEYS[1], 'revision', 'invalidated')
local revision = tonumber(ARGV[1])
if stored[1] then
  local held = tonumber(stored[1])
  if stored[2] then
    if held > revision then return 0 end
  elseif held >= revision then
    return 0
  end
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'revision', ARGV[1], 'value', ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 1
`;

/**
 * An event with revision R replaces each key it affects by a marker at R, absent keys included
 * (so that a reader that read before R cannot fill them afterwards), unless the key already holds
 * R or newer. Returns how many keys it replaced.
 */
const INVALIDATE = `
local replaced = 0
local revision = tonumber(ARGV[1])
for _, key in ipairs(KEYS) do
  local held = tonumber(redis.call('HGET', key, 'revision'))
  if not held or held < revision then
    redis.call('DEL', key)
    redis.call('HSET', key, 'revision', ARGV[1], 'invalidated', '1')
    redis.call('EXPIRE', key, ARGV[2])
    replaced = replaced + 1
  end
end
return replaced
`;

interface CacheScripts {
  sbCacheSetIfNewer(key: string, revision: number, value: string, ttlSeconds: number): Promise<number>;
  sbCacheInvalidate(numKeys: number, ...keysThenArgs: (string | number)[]): Promise<number>;
}

export type CacheEntry<T> =
  | { state: 'hit'; revision: number; value: T }
  | { state: 'invalidated'; revision: number }
  | { state: 'absent' };

/** Parsed values kept per key, reused while Redis returns the same bytes (parsing dominates a hit). */
const MAX_PARSED = 10_000;

/**
 * The discovery cache's Redis adapter: revision-guarded cache-aside (DESIGN.md "Redis cache",
 * ARCHITECTURE.md "Redis discovery cache"). Values returned by `get` are shared and frozen.
 */
export class DiscoveryCacheRepository {
  private readonly scripts: CacheScripts;
  private readonly parsed = new Map<string, { raw: string; value: unknown }>();

  constructor(
    readonly redis: Redis,
    readonly ttlSeconds: number,
  ) {
    if (!('sbCacheSetIfNewer' in redis)) {
      redis.defineCommand('sbCacheSetIfNewer', { numberOfKeys: 1, lua: SET_IF_NEWER });
      redis.defineCommand('sbCacheInvalidate', { lua: INVALIDATE });
    }
    this.scripts = redis as unknown as CacheScripts;
  }

  /** Connected and past the ready check; commands fail at once otherwise. */
  get ready(): boolean {
    return this.redis.status === 'ready';
  }

  async get<T>(key: string): Promise<CacheEntry<T>> {
    const [revision, raw] = await this.redis.hmget(key, 'revision', 'value');
    if (revision === null) return { state: 'absent' };
    if (raw === null) return { state: 'invalidated', revision: Number(revision) };
    return { state: 'hit', revision: Number(revision), value: this.parse<T>(key, raw) };
  }

  /** Stores `value` as complete up to `revision`, unless the key holds something newer. True when stored. */
  async setIfNewer(key: string, revision: number, value: unknown): Promise<boolean> {
    return (await this.scripts.sbCacheSetIfNewer(key, revision, JSON.stringify(value), this.ttlSeconds)) === 1;
  }

  /** Replaces each key by a marker at `revision` unless it holds that revision or newer. Returns how many it replaced. */
  async invalidate(keys: readonly string[], revision: number): Promise<number> {
    if (!keys.length) return 0;
    // One script for all keys of an event: atomic, and one round trip. (On a Redis Cluster the keys
    // would need a common hash tag; Switchboard runs one Redis, with replicas for availability.)
    return this.scripts.sbCacheInvalidate(keys.length, ...keys, revision, this.ttlSeconds);
  }

  private parse<T>(key: string, raw: string): T {
    const memo = this.parsed.get(key);
    if (memo && memo.raw === raw) return memo.value as T;
    const value = deepFreeze(JSON.parse(raw) as T);
    if (this.parsed.size >= MAX_PARSED && !memo) this.parsed.delete(this.parsed.keys().next().value as string);
    this.parsed.set(key, { raw, value });
    return value;
  }
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}

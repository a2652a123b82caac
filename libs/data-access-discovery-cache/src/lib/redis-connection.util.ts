import { Redis, RedisOptions } from 'ioredis';

export interface RedisConnectionOptions {
  /** Password and database; the server itself unless `sentinels` are given. */
  url: string;
  /** Redis Sentinel: ask these for the primary of `sentinelName`, and follow it through a failover. */
  sentinels?: { host: string; port: number }[];
  sentinelName?: string;
  sentinelPassword?: string;
  /** Prepended to every key (scripts included), to isolate deployments or test suites sharing one Redis. */
  keyPrefix?: string;
  /** `CLIENT SETNAME`, shown by `CLIENT LIST`. */
  name: string;
  /** A command slower than this fails, and the caller falls back; a cache must never slow a read down. */
  commandTimeoutMs?: number;
  connectTimeoutMs?: number;
}

/** Reconnect delays: 50 ms doubling to 2 s, forever. */
export function redisReconnectDelay(attempt: number): number {
  return Math.min(50 * 2 ** Math.min(attempt, 6), 2000);
}

/**
 * An ioredis client for a cache: commands fail at once while disconnected (no offline queue, no
 * retries of in-flight commands) so callers fall back immediately, and it reconnects forever in
 * the background. The owner must listen for `error` (ioredis prints unhandled ones).
 */
export function createRedisConnection(options: RedisConnectionOptions): Redis {
  return new Redis(options.url, {
    keyPrefix: options.keyPrefix || undefined,
    connectionName: options.name,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: options.commandTimeoutMs ?? 100,
    connectTimeout: options.connectTimeoutMs ?? 1000,
    retryStrategy: redisReconnectDelay,
    enableReadyCheck: true,
    // Commands issued in the same tick (concurrent discoveries) leave in one write.
    enableAutoPipelining: true,
    ...(options.sentinels?.length ? sentinelOptions(options) : {}),
  });
}

function sentinelOptions(options: RedisConnectionOptions): RedisOptions {
  return {
    sentinels: options.sentinels,
    name: options.sentinelName,
    sentinelPassword: options.sentinelPassword,
    sentinelRetryStrategy: redisReconnectDelay,
    // Redis 7 drops its clients when demoted, which moves the connection; these cover a primary that
    // cannot tell it was replaced (partitioned): reconnect when the sentinels announce +switch-master,
    // or when a write is answered READONLY.
    failoverDetector: true,
    reconnectOnError: (error) => error.message.startsWith('READONLY'),
  };
}

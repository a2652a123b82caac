import type { SwitchboardConnectionOptions } from '../options';

/** Load figures an instance reports in its heartbeats. */
export interface InstanceLoad {
  requestsPerMinute?: number;
  /** ms */
  averageLatency?: number;
  /** 0..1 */
  errorRate?: number;
  inflight?: number;
}

/** A routable instance, as the client sees it. */
export interface SwitchboardInstance {
  serviceId: string;
  serviceName: string;
  environment: string;
  models: readonly string[];
  /** Base URL requests go to (`http://vmIp:internalPort`). */
  url: string;
  /** `healthy` or `degraded` (routable instances only). */
  status: string;
  adminState: string;
  /** Registry revision of this view. */
  revision: number;
  /** Latest heartbeat figures. */
  load: InstanceLoad;
  /** What this client measured: latency EWMA to first byte (undefined until measured) and requests in flight now. */
  measured: { latencyMs?: number; outstanding: number; ejected: boolean };
}

/** Options of `SwitchboardClient.connect`; every field optional. */
export interface SwitchboardClientOptions extends SwitchboardConnectionOptions {
  /** Default per-attempt timeout, ms (a stream: to its first byte, and between chunks). Default 30,000. */
  timeout?: number;
  /** Default retries after the first attempt. Default 3. */
  maxRetries?: number;
  /** TCP connect timeout per instance, ms. Default 2000. */
  connectTimeout?: number;
  /** Backoff between attempts: ceiling `baseMs × 2^(retry-1)` up to `maxMs`, the wait uniform in [ceiling/2, ceiling). Default 50 / 2000. */
  backoff?: { baseMs?: number; maxMs?: number };
  /** The longest `Retry-After` honoured, ms. Default 30,000. */
  maxRetryAfter?: number;
  /** How long `connect` waits for the first routing-table snapshot (registry-api down), ms. Default 30,000. */
  startTimeout?: number;
}

/** Options of one `request`. */
export interface RequestOptions {
  /** Per-attempt timeout, ms (a stream: to its first byte, and the longest gap between chunks). */
  timeout?: number;
  /** Retries after the first attempt, each on another instance when there is one. */
  maxRetries?: number;
  /** Default `POST`. */
  method?: string;
  headers?: Record<string, string>;
  /** Aborts the request (between attempts, and the attempt in flight); it rejects with the signal's reason. */
  signal?: AbortSignal;
  /** `true`: resolve to an async iterator of the server-sent events (each `data:` parsed as JSON), ended by `[DONE]`. */
  stream?: boolean;
}

/** One result of `parallelRequests`, at its payload's index. */
export type ParallelResult<T> = { ok: true; value: T } | { ok: false; error: Error };

export interface ParallelOptions extends Omit<RequestOptions, 'stream'> {
  /** At most this many requests in flight at once. Default 5. */
  maxParallel?: number;
}

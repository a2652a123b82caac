import { Pool } from 'undici';

/** Every live {@link UpstreamPools}, so {@link closeAgents} can reach the pools of every router in the process (tests). */
const live = new Set<UpstreamPools>();

/** An instance's pool and the base path its routes hang from (an `internalUrl` may carry one). */
export interface Upstream {
  internalUrl: string;
  connectMs: number;
  pool: Pool;
  basePath: string;
}

/**
 * One keep-alive connection pool per instance (undici `Pool`, for its `dispatch`), made on the instance's
 * first request and closed once the instance has left the routing table: a request goes straight to its
 * pool (no per-request origin lookup of an `Agent`), and a gone instance's idle sockets do not linger.
 * `close()` lets requests in flight finish (undici's graceful close).
 */
export class UpstreamPools {
  private readonly pools = new Map<string, Upstream>();

  constructor() {
    live.add(this);
  }

  get size(): number {
    return this.pools.size;
  }

  /** The pool of `serviceId` at `internalUrl`; a new one when the instance moved or its model's connect timeout changed. */
  upstreamFor(serviceId: string, internalUrl: string, connectMs: number): Upstream {
    const entry = this.pools.get(serviceId);
    if (entry && entry.internalUrl === internalUrl && entry.connectMs === connectMs) return entry;
    if (entry) closeQuietly(entry.pool);
    const url = new URL(internalUrl);
    const pool = new Pool(url.origin, { connect: { timeout: connectMs }, keepAliveTimeout: 30_000, keepAliveMaxTimeout: 600_000, connections: 1024, pipelining: 1 });
    const upstream = { internalUrl, connectMs, pool, basePath: url.pathname.replace(/\/+$/, '') };
    this.pools.set(serviceId, upstream);
    return upstream;
  }

  /** Closes (gracefully) the pool of an instance that left the table. */
  drop(serviceId: string): void {
    const entry = this.pools.get(serviceId);
    if (!entry) return;
    this.pools.delete(serviceId);
    closeQuietly(entry.pool);
  }

  /** Closes (gracefully) the pools of instances `known` denies. */
  retainKnown(known: (serviceId: string) => boolean): void {
    for (const [serviceId, entry] of this.pools) {
      if (known(serviceId)) continue;
      this.pools.delete(serviceId);
      closeQuietly(entry.pool);
    }
  }

  async close(): Promise<void> {
    live.delete(this);
    const pools = [...this.pools.values()].map((u) => u.pool);
    this.pools.clear();
    await Promise.all(pools.map((pool) => pool.close()));
  }
}

/** A graceful close in the background: requests in flight finish; a pool closed twice is not an error worth a crash. */
function closeQuietly(pool: Pool): void {
  pool.close().catch(() => undefined);
}

/** Closes every router's upstream pools in this process (a test's clean-up; an app closes its own at shutdown). */
export async function closeAgents(): Promise<void> {
  await Promise.all([...live].map((pools) => pools.close()));
}

/** `Retry-After` as milliseconds (seconds or an HTTP date), if present and sane. */
export function retryAfterMs(value: string | string[] | undefined, now = Date.now()): number | undefined {
  const raw = Array.isArray(value) ? value[0] : value;
  if (!raw) return undefined;
  const seconds = Number(raw);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const date = Date.parse(raw);
  return Number.isFinite(date) ? Math.max(0, date - now) : undefined;
}

export type FailureKind = 'connect' | 'timeout' | 'status';

export interface AttemptFailure {
  kind: FailureKind;
  instance: string;
  status?: number;
  retryAfterMs?: number;
  /** What an API client may see: an error code, `timeout` or `HTTP 503`; never an address or the backend's words. */
  code: string;
  /** For the log only: may hold the backend's address and what it answered. */
  detail: string;
}

/**
 * An error's code, when it is one of the fixed-format tokens that say what went wrong without saying
 * where: Node's errno names (ECONNREFUSED, ENOTFOUND, …) and undici's codes. Messages are never
 * passed on: undici's name the address (`connect ECONNREFUSED 10.0.0.8:3008`, `attempted address: …`).
 */
export function safeErrorCode(error: unknown): string {
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' && /^(E[A-Z_]{2,30}|UND_ERR_[A-Z_]{1,30})$/.test(code) ? code : 'connection failed';
}

/** Which undici errors mean "never got an answer from this instance". */
export function classify(error: unknown): Exclude<FailureKind, 'status'> {
  const code = (error as { code?: string }).code ?? '';
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT' || (error as Error).name === 'TimeoutError') return 'timeout';
  return 'connect';
}

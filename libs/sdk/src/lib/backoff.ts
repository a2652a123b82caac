/** @internal How long to wait before retry number `retry` (1 = the first retry). */
export interface BackoffPolicy {
  /** First retry's ceiling, ms. Default 50. */
  baseMs: number;
  /** No wait longer than this, ms. Default 2000. */
  maxMs: number;
}

/** @internal */
export const DEFAULT_BACKOFF: BackoffPolicy = { baseMs: 50, maxMs: 2000 };

/**
 * @internal
 * Exponential backoff with "equal jitter": the ceiling doubles per retry (base, 2×base, 4×base, … up
 * to max) and the wait is uniform in [ceiling/2, ceiling), so callers that failed together do not
 * retry together, yet each waits at least half the ceiling.
 */
export function backoffMs(retry: number, policy: BackoffPolicy = DEFAULT_BACKOFF, random: () => number = Math.random): number {
  const ceiling = Math.min(policy.maxMs, policy.baseMs * 2 ** Math.max(0, retry - 1));
  return ceiling / 2 + random() * (ceiling / 2);
}

/** @internal `Retry-After` as milliseconds (delta-seconds or an HTTP date), if present and sane. */
export function parseRetryAfter(value: string | string[] | undefined, now = Date.now()): number | undefined {
  const raw = (Array.isArray(value) ? value[0] : value)?.trim();
  if (!raw) return undefined;
  if (/^\d+(\.\d+)?$/.test(raw)) return Number(raw) * 1000;
  // An HTTP date names its day and month (Date.parse alone takes "-1" for a year).
  if (!/[a-z]{3}/i.test(raw)) return undefined;
  const date = Date.parse(raw);
  return Number.isFinite(date) ? Math.max(0, date - now) : undefined;
}

/** @internal Resolves after `ms`, or rejects with the signal's reason as soon as it aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (ms <= 0 && !signal?.aborted) return Promise.resolve();
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

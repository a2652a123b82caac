/** The load figures a heartbeat carries (registry-api's `LoadFigures`). */
export interface ServiceLoad {
  /** Requests that ended in the last 60 s. */
  requestsPerMinute: number;
  /** Mean duration of those requests, ms (0 when there were none). */
  averageLatency: number;
  /** Fraction of those requests answered 5xx, 0..1 (0 when there were none). */
  errorRate: number;
  /** Requests started and not yet ended. */
  inflight: number;
}

/** What the meter needs of a request: its URL, to leave the health check path out. */
export interface MeteredRequest {
  url?: string;
  /** Express keeps the URL before mounting here. */
  originalUrl?: string;
}

/** What the meter needs of a response (node:http `ServerResponse`, Express's, Fastify's `reply.raw`). */
export interface MeteredResponse {
  statusCode: number;
  once(event: 'finish' | 'close', listener: () => void): unknown;
}

export interface LoadMeterOptions {
  /** Milliseconds clock; default `performance.now`-based wall time. Tests pass a fake one. */
  now?: () => number;
  /**
   * Request paths not counted (query string ignored), e.g. the health check the prober calls every few
   * seconds, which would otherwise pose as traffic. Default none (register() passes its health check path).
   */
  ignorePaths?: readonly string[];
}

const WINDOW_MS = 60_000;
const BUCKET_MS = 1000;
const BUCKETS = WINDOW_MS / BUCKET_MS;

/**
 * Request counter behind the middleware (seed 002's RequestCounterMiddleware): a sliding 60 s window
 * in 1 s buckets of (ended requests, summed latency, 5xx answers), plus the requests in flight. O(1)
 * per request; reading sums 60 buckets.
 */
export class LoadMeter {
  private readonly now: () => number;
  private readonly ignored: ReadonlySet<string>;
  /** Second (clock / 1000, floored) each bucket holds; a bucket of an older second is stale. */
  private readonly stamp = new Float64Array(BUCKETS).fill(-Infinity);
  private readonly count = new Float64Array(BUCKETS);
  private readonly latency = new Float64Array(BUCKETS);
  private readonly errors = new Float64Array(BUCKETS);
  private live = 0;
  private total = 0;

  constructor(options: LoadMeterOptions = {}) {
    this.now = options.now ?? (() => performance.timeOrigin + performance.now());
    this.ignored = new Set(options.ignorePaths ?? []);
  }

  /** Requests in flight now. */
  get inflight(): number {
    return this.live;
  }

  /** Requests ended since the meter was created (not windowed). */
  get totalRequests(): number {
    return this.total;
  }

  /**
   * Counts one request from now; call the returned function once when it ends with its HTTP status
   * (later calls do nothing). For frameworks without a node:http response.
   */
  begin(): (statusCode: number) => void {
    const started = this.now();
    this.live++;
    let ended = false;
    return (statusCode: number) => {
      if (ended) return;
      ended = true;
      this.live--;
      this.record(this.now() - started, statusCode);
    };
  }

  /**
   * Counts a node:http-style request until its response finishes, or closes first (client gone: counted
   * with the status set so far, an error only if that is 5xx). Requests to an ignored path are not counted.
   */
  track(req: MeteredRequest, res: MeteredResponse): void {
    if (this.ignored.size && this.ignored.has(pathOf(req.originalUrl ?? req.url))) return;
    const end = this.begin();
    const done = () => end(res.statusCode);
    res.once('finish', done);
    res.once('close', done);
  }

  /** Adds one ended request directly (what `begin()`'s function does). */
  record(durationMs: number, statusCode: number): void {
    const second = Math.floor(this.now() / BUCKET_MS);
    const i = ((second % BUCKETS) + BUCKETS) % BUCKETS;
    if (this.stamp[i] !== second) {
      this.stamp[i] = second;
      this.count[i] = this.latency[i] = this.errors[i] = 0;
    }
    this.count[i]++;
    this.latency[i] += Math.max(0, durationMs);
    if (statusCode >= 500) this.errors[i]++;
    this.total++;
  }

  /** The figures over the last 60 s (the current second included) and the requests in flight. */
  snapshot(): ServiceLoad {
    const oldest = Math.floor(this.now() / BUCKET_MS) - BUCKETS + 1;
    let count = 0;
    let latency = 0;
    let errors = 0;
    for (let i = 0; i < BUCKETS; i++) {
      if (this.stamp[i] < oldest) continue;
      count += this.count[i];
      latency += this.latency[i];
      errors += this.errors[i];
    }
    return {
      requestsPerMinute: count,
      averageLatency: count ? Math.round((latency / count) * 100) / 100 : 0,
      errorRate: count ? Math.min(1, errors / count) : 0,
      inflight: this.live,
    };
  }
}

function pathOf(url: string | undefined): string {
  if (!url) return '/';
  const q = url.indexOf('?');
  return q === -1 ? url : url.slice(0, q);
}

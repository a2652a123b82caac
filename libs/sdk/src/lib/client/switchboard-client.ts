import { Logger } from '@nestjs/common';
import { performance } from 'node:perf_hooks';
import { Agent, Dispatcher, request as undiciRequest } from 'undici';
import { modelStatusOf, SubjectSpace } from '@switchboard/contracts';
import { LogThrottle } from '@switchboard/observability';
import type { NatsClient } from '@switchboard/messaging';
import { RoutedInstance, RoutingTable } from '@switchboard/routing-table';
import { BadRequestError, NoInstanceError, RequestAttempt, RetriesExhaustedError, StreamCutError, SwitchboardError } from '../errors';
import { connectNats, resolveConnection, SwitchboardLogger } from '../options';
import { backoffMs, BackoffPolicy, parseRetryAfter, sleep } from '../backoff';
import { ClientBalancer } from './balancer';
import { DONE, SseParser } from './sse';
import type { ParallelOptions, ParallelResult, RequestOptions, SwitchboardClientOptions, SwitchboardInstance } from './types';

const DEFAULT_TIMEOUT_MS = 30_000;
const DEFAULT_MAX_RETRIES = 3;
const DEFAULT_CONNECT_TIMEOUT_MS = 2000;
const DEFAULT_MAX_RETRY_AFTER_MS = 30_000;
const DEFAULT_START_TIMEOUT_MS = 30_000;
const DEFAULT_MAX_PARALLEL = 5;
/** Of an error body only the start is read: a backend may send megabytes. */
const ERROR_BODY_MAX_BYTES = 64 * 1024;
const FAILURE_LOG_INTERVAL_MS = 10_000;


class AttemptTimeout extends Error {
  override name = 'TimeoutError';
}

type Failure = Omit<RequestAttempt, 'durationMs' | 'serviceId' | 'url'>;
type AttemptOutcome<T> = { ok: true; value: T } | { ok: false; failure: Failure };

/** Test and bench hooks (seeded randomness); callers need none of them. */
export interface ClientInternals {
  random?: () => number;
}

/**
 * Calls models and services by name from Switchboard's pushed routing table: list-then-watch over
 * NATS (the REGISTRY stream), so every lookup is in memory and keeps working while registry-api is
 * down. Each request goes to an instance chosen by power of two choices on this client's latency
 * EWMA and outstanding requests (healthy before degraded), and moves to another instance on a
 * connect error, a timeout, a 5xx or a 429, with exponential backoff and jitter between attempts.
 */
export class SwitchboardClient {
  private readonly agent: Agent;
  private readonly balancer: ClientBalancer;
  private readonly backoff: BackoffPolicy;
  private readonly failureLog = new LogThrottle(FAILURE_LOG_INTERVAL_MS, 10_000);
  /**
   * The routable part of each list the table hands out. Sound because the table's lists are
   * copy-on-write: every change of membership or status (routable included) makes a new list;
   * heartbeats only change `load`, which the balancer reads live.
   */
  private readonly routableOf = new WeakMap<readonly RoutedInstance[], RoutedInstance[]>();
  private closed = false;
  private readonly unwatch: () => void;

  private constructor(
    private readonly nats: NatsClient,
    private readonly table: RoutingTable,
    /** The environment every target is looked up in. */
    readonly environment: string,
    private readonly options: SwitchboardClientOptions,
    private readonly logger: SwitchboardLogger,
    private readonly random: () => number,
  ) {
    this.agent = new Agent({
      connect: { timeout: options.connectTimeout ?? DEFAULT_CONNECT_TIMEOUT_MS },
      keepAliveTimeout: 30_000,
      keepAliveMaxTimeout: 600_000,
      pipelining: 1,
    });
    this.balancer = new ClientBalancer({ random });
    this.backoff = { baseMs: options.backoff?.baseMs ?? 50, maxMs: options.backoff?.maxMs ?? 2000 };
    this.unwatch = table.onChange(() => this.balancer.retainKnown((id) => table.get(id) !== undefined));
  }

  /**
   * Connects to NATS, loads the routing table (snapshot, then the event stream) and resolves once it
   * is usable. Rejects after `startTimeout` when no registry-api answers the snapshot.
   */
  static async connect(options: SwitchboardClientOptions = {}, internals: ClientInternals = {}): Promise<SwitchboardClient> {
    const connection = resolveConnection(options);
    // Nest's Logger: the app's own inside NestJS, the SDK's sink (useLogger) in the package.
    const logger: SwitchboardLogger = options.logger ?? new Logger('SwitchboardClient');
    const nats = await connectNats(connection.natsUrl, options.connectionName ?? 'switchboard-client');
    const table = new RoutingTable({ nats, subjects: new SubjectSpace(connection.subjectPrefix ?? ''), logger });
    const startTimeout = options.startTimeout ?? DEFAULT_START_TIMEOUT_MS;
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        table.start(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new SwitchboardError(`no routing table within ${startTimeout} ms: is registry-api running on this NATS (${connection.natsUrl})?`)), startTimeout);
        }),
      ]);
    } catch (error) {
      table.stop();
      await nats.close().catch(() => undefined);
      throw error;
    } finally {
      clearTimeout(timer);
    }
    return new SwitchboardClient(nats, table, connection.environment, options, logger, internals.random ?? Math.random);
  }

  /** The routable instances of `target` (a model, else a service name) in this client's environment. */
  instances(target: string): SwitchboardInstance[] {
    return this.lookup(target).routable.map((i) => this.view(i));
  }

  /** The `n` best routable instances by measured latency (unmeasured ones after, then by outstanding requests). */
  getAll(target: string, n: number): SwitchboardInstance[] {
    return this.balancer.best(this.lookup(target).routable, n).map((i) => this.view(i));
  }

  /** @internal One balancer choice, as each attempt makes it (lookup and p2c): the chosen serviceId. For the bench. */
  pickInstance(target: string): string | undefined {
    return this.balancer.pick(this.lookup(target).routable)?.serviceId;
  }

  /**
   * Sends `body` (JSON unless a string or bytes) to `path` on an instance of `target` and resolves to
   * the parsed JSON answer (text when it is not JSON; undefined for an empty body). With
   * `{ stream: true }`, resolves to an async iterator of server-sent events once the first byte
   * arrived; until then it is retried like any request, after it never.
   * @throws NoInstanceError nothing routable for `target`
   * @throws BadRequestError a 4xx other than 408/429 (not retried)
   * @throws RetriesExhaustedError every attempt failed (listed)
   */
  request<T = unknown>(target: string, path: string, body: unknown, options: RequestOptions & { stream: true }): Promise<AsyncIterableIterator<T>>;
  request<T = unknown>(target: string, path: string, body?: unknown, options?: RequestOptions & { stream?: false }): Promise<T>;
  request<T = unknown>(target: string, path: string, body?: unknown, options?: RequestOptions): Promise<T | AsyncIterableIterator<T>>;
  async request<T = unknown>(target: string, path: string, body?: unknown, options: RequestOptions = {}): Promise<T | AsyncIterableIterator<T>> {
    if (this.closed) throw new SwitchboardError('client closed');
    const maxRetries = Math.max(0, options.maxRetries ?? this.options.maxRetries ?? DEFAULT_MAX_RETRIES);
    const signal = options.signal;
    const payload = encodeBody(body);
    const headers: Record<string, string> = { ...(payload !== undefined && !isBytesOrString(body) ? { 'content-type': 'application/json' } : {}), ...options.headers };
    if (options.stream && !Object.keys(headers).some((h) => h.toLowerCase() === 'accept')) headers['accept'] = 'text/event-stream';
    const attempts: RequestAttempt[] = [];
    const tried = new Set<string>();
    for (let attempt = 0; attempt <= maxRetries; attempt++) {
      if (signal?.aborted) throw signal.reason;
      // Looked up afresh each attempt: the table may have changed meanwhile.
      const { all, routable } = this.lookup(target);
      if (!routable.length) {
        if (!attempts.length) throw this.noInstance(target, all);
        break;
      }
      // Another instance when there is one; with none left untried, any (its cooldown or backoff applies).
      const untried = routable.filter((i) => !tried.has(i.serviceId));
      // Never undefined: `routable` is not empty.
      const instance = this.balancer.pick(untried.length ? untried : routable) as RoutedInstance;
      tried.add(instance.serviceId);
      if (attempt > 0) {
        // Back to an instance that asked to be left alone (Retry-After, also on another request): wait that long, within reason.
        const retryAfter = Math.min(this.options.maxRetryAfter ?? DEFAULT_MAX_RETRY_AFTER_MS, Math.max(0, (this.balancer.peek(instance.serviceId)?.retryAfterUntil ?? 0) - Date.now()));
        await sleep(Math.max(backoffMs(attempt, this.backoff, this.random), retryAfter), signal);
      }
      const started = performance.now();
      const outcome = await this.attempt<T>(instance, path, payload, headers, options, signal);
      if (outcome.ok) return outcome.value;
      attempts.push({ serviceId: instance.serviceId, url: instance.internalUrl, ...outcome.failure, durationMs: Math.round(performance.now() - started) });
      this.balancer.failed(instance.serviceId, outcome.failure.retryAfterMs);
      this.logFailure(target, instance, outcome.failure);
    }
    throw new RetriesExhaustedError(target, attempts);
  }

  /**
   * The requests of `payloads`, at most `maxParallel` at once; each result at its payload's index,
   * `{ ok: true, value }` or `{ ok: false, error }` (it never throws for one item).
   */
  async parallelRequests<T = unknown>(target: string, path: string, payloads: readonly unknown[], options: ParallelOptions = {}): Promise<ParallelResult<T>[]> {
    const { maxParallel = DEFAULT_MAX_PARALLEL, ...requestOptions } = options;
    const limit = Math.max(1, Math.floor(maxParallel));
    const results = new Array<ParallelResult<T>>(payloads.length);
    let next = 0;
    const worker = async () => {
      for (let i = next++; i < payloads.length; i = next++) {
        try {
          results[i] = { ok: true, value: await this.request<T>(target, path, payloads[i], { ...requestOptions, stream: false }) };
        } catch (error) {
          results[i] = { ok: false, error: error instanceof Error ? error : new SwitchboardError(String(error)) };
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(limit, payloads.length) }, worker));
    return results;
  }

  /** Stops the table's watch, closes NATS and the connection pools. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.unwatch();
    this.table.stop();
    await this.nats.close().catch(() => undefined);
    await this.agent.close().catch(() => undefined);
  }

  private lookup(target: string): { all: readonly RoutedInstance[]; routable: RoutedInstance[] } {
    let all = this.table.instancesFor(this.environment, target);
    if (!all.length) all = this.table.instancesOfService(this.environment, target);
    let routable = this.routableOf.get(all);
    if (!routable) {
      routable = all.filter((i) => i.routable);
      this.routableOf.set(all, routable);
    }
    return { all, routable };
  }

  private noInstance(target: string, all: readonly RoutedInstance[]): NoInstanceError {
    return new NoInstanceError(target, this.environment, all.length > 0, [...new Set(all.map(modelStatusOf))]);
  }

  private view(i: RoutedInstance): SwitchboardInstance {
    const s = this.balancer.peek(i.serviceId);
    return {
      serviceId: i.serviceId,
      serviceName: i.serviceName,
      environment: i.environment,
      models: i.models,
      url: i.internalUrl,
      status: i.status,
      adminState: i.adminState,
      revision: i.revision,
      load: { ...i.load },
      measured: { latencyMs: s?.ewmaMs, outstanding: s?.outstanding ?? 0, ejected: this.balancer.isEjected(i.serviceId) },
    };
  }

  private async attempt<T>(
    instance: RoutedInstance,
    path: string,
    payload: string | Uint8Array | undefined,
    headers: Record<string, string>,
    options: RequestOptions,
    signal: AbortSignal | undefined,
  ): Promise<AttemptOutcome<T | AsyncIterableIterator<T>>> {
    const timeoutMs = options.timeout ?? this.options.timeout ?? DEFAULT_TIMEOUT_MS;
    const controller = new AbortController();
    const onAbort = () => controller.abort(signal?.reason);
    signal?.addEventListener('abort', onAbort, { once: true });
    const timer = setTimeout(() => controller.abort(new AttemptTimeout(`no answer within ${timeoutMs} ms`)), timeoutMs);
    const started = performance.now();
    let handedOver = false;
    this.balancer.started(instance.serviceId);
    try {
      const res = await undiciRequest(`${instance.internalUrl}${path}`, {
        method: (options.method ?? 'POST') as Dispatcher.HttpMethod,
        headers,
        body: payload,
        signal: controller.signal,
        dispatcher: this.agent,
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
      });
      const status = res.statusCode;
      if (status >= 500 || status === 429 || status === 408) {
        await res.body.dump({ limit: ERROR_BODY_MAX_BYTES }).catch(() => undefined);
        return { ok: false, failure: { reason: 'status', status, code: `HTTP ${status}`, retryAfterMs: parseRetryAfter(res.headers['retry-after']) } };
      }
      if (status >= 400) {
        const text = await readStart(res.body, ERROR_BODY_MAX_BYTES);
        this.balancer.succeeded(instance.serviceId, performance.now() - started);
        const parsed = parseJson(text);
        throw new BadRequestError(status, parsed ?? text, instance.serviceId, `HTTP ${status} from ${instance.serviceId}: ${messageOf(parsed) ?? (text.slice(0, 300) || 'no body')}`);
      }
      const contentType = String(res.headers['content-type'] ?? '');
      if (options.stream) {
        // Hold the answer until its first byte: until then another instance can still take over.
        const chunks = res.body[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
        const first = await chunks.next();
        this.balancer.succeeded(instance.serviceId, performance.now() - started);
        clearTimeout(timer);
        handedOver = true;
        return { ok: true, value: this.events<T>(instance, chunks, first, signal, () => res.body.destroy(), () => signal?.removeEventListener('abort', onAbort)) };
      }
      const text = await res.body.text();
      this.balancer.succeeded(instance.serviceId, performance.now() - started);
      if (!text) return { ok: true, value: undefined as T };
      // JSON when it says so, or looks so; otherwise the text as it came.
      return { ok: true, value: (contentType.includes('json') || /^\s*[[{"]/.test(text) ? (parseJson(text) ?? text) : text) as T };
    } catch (error) {
      if (error instanceof SwitchboardError) throw error;
      if (signal?.aborted) throw signal.reason;
      if (controller.signal.aborted || isTimeout(error)) return { ok: false, failure: { reason: 'timeout', code: 'timeout' } };
      return { ok: false, failure: { reason: 'connect', code: errorCode(error) } };
    } finally {
      if (!handedOver) {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        this.balancer.finished(instance.serviceId);
      }
    }
  }

  /** The stream after its first chunk: events until `[DONE]` or the end; a cut is a StreamCutError. */
  private async *events<T>(
    instance: RoutedInstance,
    chunks: AsyncIterator<Buffer>,
    first: IteratorResult<Buffer>,
    signal: AbortSignal | undefined,
    destroy: () => void,
    release: () => void,
  ): AsyncGenerator<T> {
    const parser = new SseParser();
    let finished = false;
    try {
      let next = first;
      for (;;) {
        const events = next.done ? parser.end() : parser.push(next.value);
        for (const event of events) {
          if (event === DONE) {
            finished = true;
            return;
          }
          yield event as T;
        }
        if (next.done) {
          finished = true;
          return;
        }
        try {
          next = await chunks.next();
        } catch (error) {
          // The caller's own abort is no fault of the instance.
          if (signal?.aborted) throw signal.reason;
          this.balancer.failed(instance.serviceId);
          throw new StreamCutError(instance.serviceId, error);
        }
      }
    } finally {
      if (!finished) destroy();
      release();
      this.balancer.finished(instance.serviceId);
    }
  }

  /** At most one line per instance per interval: a dead backend under load must not flood the log. */
  private logFailure(target: string, instance: RoutedInstance, failure: Failure): void {
    const suppressed = this.failureLog.take(instance.serviceId);
    if (suppressed === undefined) return;
    const more = suppressed ? ` (${suppressed} more since the last line)` : '';
    this.logger.warn(`${target}: attempt on ${instance.serviceId} failed (${failure.code}); trying another instance${more}`);
  }
}

function isBytesOrString(body: unknown): boolean {
  return typeof body === 'string' || body instanceof Uint8Array;
}

function encodeBody(body: unknown): string | Uint8Array | undefined {
  if (body === undefined) return undefined;
  if (isBytesOrString(body)) return body as string | Uint8Array;
  return JSON.stringify(body);
}

function parseJson(text: string): unknown {
  if (!text) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** `{ error: { message } }` (OpenAI-compatible), `{ error: "…" }` or `{ message }`. */
function messageOf(body: unknown): string | undefined {
  if (typeof body !== 'object' || body === null) return undefined;
  const b = body as { error?: unknown; message?: unknown };
  if (typeof b.error === 'object' && b.error !== null && typeof (b.error as { message?: unknown }).message === 'string') return (b.error as { message: string }).message;
  if (typeof b.error === 'string') return b.error;
  if (typeof b.message === 'string') return b.message;
  return undefined;
}

/** Reads at most `limit` bytes of a body, then drops the rest. */
async function readStart(body: AsyncIterable<Buffer> & { destroy(): unknown }, limit: number): Promise<string> {
  const parts: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of body) {
      if (size < limit) parts.push(chunk);
      size += chunk.length;
      if (size >= limit) break;
    }
  } catch {
    // An error body that fails half way still tells what it told.
  } finally {
    body.destroy();
  }
  return Buffer.concat(parts).toString('utf8').slice(0, limit);
}

function isTimeout(error: unknown): boolean {
  const code = (error as { code?: string }).code;
  return code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT' || code === 'UND_ERR_CONNECT_TIMEOUT' || (error as Error).name === 'TimeoutError';
}

/** The error's code (ECONNREFUSED, UND_ERR_SOCKET, …), never its message (which names addresses). */
function errorCode(error: unknown): string {
  const e = error as { code?: unknown; cause?: { code?: unknown } };
  const code = typeof e.code === 'string' ? e.code : typeof e.cause?.code === 'string' ? e.cause.code : undefined;
  return code && /^[A-Z][A-Z_0-9]{1,40}$/.test(code) ? code : 'connection failed';
}

import { Inject, Injectable, Logger, OnApplicationShutdown } from '@nestjs/common';
import type { IncomingHttpHeaders, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { request } from 'undici';
import { modelStatusOf } from '@switchboard/contracts';
import { LogThrottle } from '@switchboard/observability';
import { RoutedInstance, RoutingTable } from '@switchboard/routing-table';
import { BalancerService } from '../balancing/balancer.service';
import type { LlmRouterConfig } from '../config/llm-router.config';
import type { ResolvedPolicy } from '../config/routing-policy.config';
import { RoutingPolicyService } from '../config/routing-policy.service';
import { LLM_ROUTER_CONFIG } from '../llm-router.tokens';
import { RouterMetricsService } from '../observability/router-metrics.service';
import { DrainService } from './drain.service';
import { OpenAiError } from './openai-error.exception';
import { agentFor, AttemptFailure, classify, closeAgents, retryAfterMs, safeErrorCode } from './upstream.util';

export type Endpoint = 'chat' | 'completions' | 'embeddings';

const PATHS: Record<Endpoint, string> = { chat: '/v1/chat/completions', completions: '/v1/completions', embeddings: '/v1/embeddings' };
/** Request headers worth passing to a backend (never the client's API key). */
const FORWARDED = ['accept', 'traceparent', 'tracestate', 'x-request-id', 'openai-organization', 'openai-project'];
/** Response headers worth passing back. */
// content-length too: the body passes unchanged, and a known length spares a chunked encoding.
const RETURNED = ['content-type', 'content-length', 'x-request-id', 'openai-processing-ms', 'retry-after'];
const MAX_BACKOFF_MS = 250;
/** Failed attempts are logged at most once per instance per interval: a dead backend under load must not flood the log. */
const FAILURE_LOG_INTERVAL_MS = 10_000;
/** Of an error body only the start goes into a message; a backend may send megabytes, which are not read. */
export const ERROR_BODY_MAX_BYTES = 4096;

type AttemptResult = { done: true } | { done: false; failure: AttemptFailure };

class TimeoutSignal extends Error {
  override name = 'TimeoutError';
}

/** Ends a stream the shutdown cut: an error event in OpenAI's shape (the `openai` client throws it as an APIError), no [DONE]. */
const SHUTDOWN_SSE_EVENT = `data: ${JSON.stringify(OpenAiError.shuttingDown().body)}\n\n`;

/**
 * Sends each request to an instance that serves its model, from the event-fed table only.
 * Retries on another instance after a connect error, a timeout, a 5xx or a 429, but only while
 * nothing has reached the client; then streams the answer through chunk by chunk, honouring
 * backpressure, and aborts the upstream request if the client goes away. On shutdown the
 * {@link DrainService} lets requests in flight finish, then cuts the rest through their signal.
 */
@Injectable()
export class ProxyService implements OnApplicationShutdown {
  private readonly logger = new Logger(ProxyService.name);
  private readonly failureLog = new LogThrottle(FAILURE_LOG_INTERVAL_MS);

  constructor(
    private readonly table: RoutingTable,
    private readonly balancer: BalancerService,
    private readonly policies: RoutingPolicyService,
    private readonly metrics: RouterMetricsService,
    private readonly drain: DrainService,
    @Inject(LLM_ROUTER_CONFIG) private readonly config: LlmRouterConfig,
  ) {}

  /** After the drain and the HTTP server: the keep-alive pools to the backends. */
  async onApplicationShutdown(): Promise<void> {
    await closeAgents();
  }

  async handle(endpoint: Endpoint, req: FastifyRequest, reply: FastifyReply): Promise<void> {
    const shutdown = this.drain.enter();
    try {
      await this.proxy(endpoint, req, reply, shutdown.signal);
    } finally {
      this.drain.leave(shutdown);
    }
  }

  private async proxy(endpoint: Endpoint, req: FastifyRequest, reply: FastifyReply, shutdown: AbortSignal): Promise<void> {
    const body = validate(endpoint, req.body);
    const requested = body['model'] as string;
    const environment = this.config.ROUTER_ENVIRONMENT;
    let notReady: OpenAiError | undefined;
    let failure: AttemptFailure | undefined;

    for (const [index, model] of this.policies.candidates(requested).entries()) {
      const all = this.table.instancesFor(environment, model);
      if (!all.length) continue;
      const routable = all.filter((i) => i.routable);
      if (!routable.length) {
        notReady ??= OpenAiError.modelNotReady(model, [...new Set(all.map(modelStatusOf))].join(', '));
        continue;
      }
      // The client's bytes as they came (the parser kept them), unless an alias or a fallback renames the model.
      const payload = model === requested ? (rawBodyOf(req) ?? JSON.stringify(body)) : JSON.stringify({ ...body, model });
      const result = await this.route(endpoint, model, routable, payload, body, req, reply, shutdown);
      if (result.done) {
        if (index > 0) this.metrics.fallbacks.inc({ model: requested, fallback: model });
        return;
      }
      failure = result.failure;
    }
    if (failure) throw toClientError(failure);
    throw notReady ?? OpenAiError.modelNotFound(requested);
  }

  private async route(
    endpoint: Endpoint,
    model: string,
    routable: RoutedInstance[],
    payload: string | Buffer,
    body: Record<string, unknown>,
    req: FastifyRequest,
    reply: FastifyReply,
    shutdown: AbortSignal,
  ): Promise<AttemptResult> {
    const policy = this.policies.policyFor(model);
    const affinityKey = headerValue(req.headers[policy.affinityHeader]) ?? (typeof body['user'] === 'string' ? body['user'] : undefined);
    const tried = new Set<string>();
    let failure: AttemptFailure | undefined;
    for (let attempt = 0; attempt < policy.maxAttempts; attempt++) {
      const candidates = routable.filter((i) => !tried.has(i.serviceId));
      const instance = this.balancer.pick(model, candidates, policy, affinityKey);
      if (!instance) break;
      tried.add(instance.serviceId);
      if (attempt > 0) {
        this.metrics.retries.inc({ model, reason: failure?.kind ?? 'unknown' });
        await sleep(Math.min(MAX_BACKOFF_MS, 10 * 2 ** attempt));
        if (reply.raw.destroyed) return { done: true };
      }
      const result = await this.attempt(endpoint, model, instance, policy, payload, body['stream'] === true, req, reply, shutdown);
      if (result.done) return result;
      failure = result.failure;
      this.balancer.failed(model, instance.serviceId, policy, failure.retryAfterMs);
      this.logFailure(instance, failure);
    }
    this.metrics.errors.inc({ model, reason: failure?.kind ?? 'no_instance' });
    return { done: false, failure: failure ?? { kind: 'connect', instance: '-', code: 'no instance could be tried', detail: 'no instance could be tried' } };
  }

  /** The address and the backend's words go here, never to the API client. */
  private logFailure(instance: RoutedInstance, failure: AttemptFailure): void {
    const suppressed = this.failureLog.take(instance.serviceId);
    if (suppressed === undefined) return;
    const more = suppressed ? ` (${suppressed} more failure(s) of it not logged since)` : '';
    this.logger.warn(`attempt on ${instance.serviceId} (${instance.internalUrl}) failed: ${failure.kind}, ${failure.detail}${more}`);
  }

  private async attempt(
    endpoint: Endpoint,
    model: string,
    instance: RoutedInstance,
    policy: ResolvedPolicy,
    payload: string | Buffer,
    stream: boolean,
    req: FastifyRequest,
    reply: FastifyReply,
    shutdown: AbortSignal,
  ): Promise<AttemptResult> {
    // Cut between two attempts: no new one starts.
    if (shutdown.aborted) throw OpenAiError.shuttingDown();
    const res = reply.raw;
    const started = performance.now();
    const controller = new AbortController();
    const onShutdown = () => controller.abort();
    shutdown.addEventListener('abort', onShutdown);
    let clientGone = false;
    let committed = false;
    let eventStream = false;
    const onClose = () => {
      if (!res.writableFinished) {
        clientGone = true;
        controller.abort();
      }
    };
    res.on('close', onClose);
    const total = setTimeout(() => controller.abort(new TimeoutSignal('total timeout')), policy.totalMs);
    const labels = { model, instance: instance.serviceId };
    this.balancer.started(instance.serviceId);
    try {
      const upstream = await request(`${instance.internalUrl}${PATHS[endpoint]}`, {
        method: 'POST',
        headers: forwardHeaders(req.headers, payload),
        body: payload,
        signal: controller.signal,
        dispatcher: agentFor(policy.connectMs),
        headersTimeout: stream ? policy.firstTokenMs : policy.totalMs,
        bodyTimeout: policy.firstTokenMs,
      });
      if (upstream.statusCode >= 500 || upstream.statusCode === 429) {
        const { text, truncated } = await readStart(upstream.body, ERROR_BODY_MAX_BYTES).catch(() => ({ text: '', truncated: false }));
        if (truncated) this.metrics.errorBodiesTruncated.inc({ model });
        return {
          done: false,
          failure: {
            kind: 'status',
            instance: instance.serviceId,
            status: upstream.statusCode,
            retryAfterMs: retryAfterMs(upstream.headers['retry-after']),
            code: `HTTP ${upstream.statusCode}`,
            detail: `HTTP ${upstream.statusCode}: ${text.slice(0, 500)}`,
          },
        };
      }
      // Hold the answer until its first byte exists: until then another instance can still take over.
      const chunks = upstream.body[Symbol.asyncIterator]();
      // A stream's first token must arrive within what is left of firstTokenMs; a plain answer's body
      // follows its headers at once (bodyTimeout still guards it), so it needs no timer of its own.
      const first = stream
        ? await firstChunk(chunks, Math.max(1, policy.firstTokenMs - (performance.now() - started)), () => upstream.body.destroy())
        : await chunks.next();
      const ttftMs = performance.now() - started;
      this.balancer.succeeded(instance.serviceId, ttftMs);
      committed = true;
      reply.hijack();
      const headers = responseHeaders(upstream.headers, instance.serviceId);
      eventStream = headers['content-type']?.startsWith('text/event-stream') === true;
      res.writeHead(upstream.statusCode, headers);
      if (!first.done) res.write(first.value);
      this.metrics.ttft.observe(labels, ttftMs / 1000);
      for (;;) {
        const next = await chunks.next();
        if (next.done) break;
        if (!res.write(next.value)) await drained(res, shutdown);
        if (res.destroyed) break;
      }
      res.end();
      this.metrics.requests.inc({ ...labels, code: String(upstream.statusCode) });
      this.metrics.duration.observe(labels, (performance.now() - started) / 1000);
      return { done: true };
    } catch (error) {
      if (clientGone) {
        this.metrics.clientAborts.inc({ model });
        return { done: true };
      }
      if (shutdown.aborted) {
        if (!committed) throw OpenAiError.shuttingDown();
        endCutByShutdown(res, eventStream);
        return { done: true };
      }
      if (committed) {
        // Cut after the first byte: too late to retry; end the client's stream so it sees the cut.
        this.metrics.streamCuts.inc(labels);
        this.balancer.failed(model, instance.serviceId, policy);
        res.destroy();
        return { done: true };
      }
      const kind = controller.signal.aborted ? 'timeout' : classify(error);
      const detail = `${(error as Error).message}${(error as Error).cause ? ` (${String((error as Error).cause)})` : ''}`;
      return { done: false, failure: { kind, instance: instance.serviceId, code: kind === 'timeout' ? 'timeout' : safeErrorCode(error), detail } };
    } finally {
      clearTimeout(total);
      shutdown.removeEventListener('abort', onShutdown);
      res.off('close', onClose);
      this.balancer.finished(instance.serviceId);
    }
  }
}

async function firstChunk(chunks: AsyncIterator<Buffer>, timeoutMs: number, onTimeout: () => void): Promise<IteratorResult<Buffer>> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      onTimeout();
      reject(new TimeoutSignal('no first byte in time'));
    }, timeoutMs);
  });
  try {
    return await Promise.race([chunks.next(), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function validate(endpoint: Endpoint, body: unknown): Record<string, unknown> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw OpenAiError.badRequest('The request body must be a JSON object.');
  const b = body as Record<string, unknown>;
  if (typeof b['model'] !== 'string' || !b['model']) throw OpenAiError.badRequest("'model' is required and must be a non-empty string.", 'model');
  if (b['stream'] !== undefined && typeof b['stream'] !== 'boolean') throw OpenAiError.badRequest("'stream' must be a boolean.", 'stream');
  if (endpoint === 'chat' && (!Array.isArray(b['messages']) || b['messages'].length === 0)) {
    throw OpenAiError.badRequest("'messages' is required and must be a non-empty array.", 'messages');
  }
  if (endpoint === 'completions' && typeof b['prompt'] !== 'string' && !Array.isArray(b['prompt'])) {
    throw OpenAiError.badRequest("'prompt' is required and must be a string or an array.", 'prompt');
  }
  if (endpoint === 'embeddings' && typeof b['input'] !== 'string' && !Array.isArray(b['input'])) {
    throw OpenAiError.badRequest("'input' is required and must be a string or an array.", 'input');
  }
  return b;
}

/** The body's bytes as JSON came (`rawBody: true` in bootstrap); only the JSON parser's: a form body is re-serialised as before. */
function rawBodyOf(req: FastifyRequest): Buffer | undefined {
  const raw = (req as { rawBody?: unknown }).rawBody;
  return Buffer.isBuffer(raw) && JSON_TYPE.test(req.headers['content-type'] ?? '') ? raw : undefined;
}

const JSON_TYPE = /^\s*application\/json\s*(;|$)/i;

function forwardHeaders(incoming: IncomingHttpHeaders, payload: string | Buffer): Record<string, string> {
  const headers: Record<string, string> = { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(payload)) };
  for (const name of FORWARDED) {
    const value = headerValue(incoming[name]);
    if (value) headers[name] = value;
  }
  return headers;
}

function responseHeaders(upstream: IncomingHttpHeaders, serviceId: string): Record<string, string> {
  const headers: Record<string, string> = { 'x-switchboard-instance': serviceId };
  for (const name of RETURNED) {
    const value = headerValue(upstream[name]);
    if (value) headers[name] = value;
  }
  if (headers['content-type']?.startsWith('text/event-stream')) {
    headers['cache-control'] = 'no-cache';
    headers['x-accel-buffering'] = 'no';
  }
  return headers;
}

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/**
 * The honest answer after every attempt failed: what went wrong and on which instance (by id), never a
 * 200, and never the instance's address or the backend's own words (those are in the log).
 */
function toClientError(failure: AttemptFailure): OpenAiError {
  const retry = failure.retryAfterMs !== undefined ? { 'retry-after': String(Math.ceil(failure.retryAfterMs / 1000)) } : undefined;
  if (failure.kind === 'timeout') {
    return new OpenAiError(504, `upstream timed out (last: ${failure.instance}, ${failure.code})`, 'server_error', 'upstream_timeout');
  }
  if (failure.kind === 'connect') {
    return new OpenAiError(502, `no backend could be reached (last: ${failure.instance}, ${failure.code})`, 'server_error', 'upstream_unreachable');
  }
  if (failure.status === 429) {
    return new OpenAiError(429, `backend is rate limiting (${failure.instance})`, 'rate_limit_error', 'rate_limit_exceeded', null, retry);
  }
  if (failure.status === 503) {
    return new OpenAiError(503, `backend unavailable (${failure.instance})`, 'service_unavailable', 'upstream_unavailable', null, retry);
  }
  return new OpenAiError(502, `backend error ${failure.status} (${failure.instance})`, 'server_error', 'upstream_error', null, retry);
}

/** Backpressure: resolves when the client has taken what was written, went away, or the shutdown cut the stream. */
function drained(res: NodeJS.WritableStream, shutdown: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      shutdown.removeEventListener('abort', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
    shutdown.addEventListener('abort', done);
  });
}

/** A started event stream gets the error event, then its end; any other answer can only be cut off. */
function endCutByShutdown(res: ServerResponse, eventStream: boolean): void {
  if (res.destroyed) return;
  if (eventStream) {
    res.end(SHUTDOWN_SSE_EVENT);
  } else {
    res.destroy();
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** At most `maxBytes` of a body; the rest is left unread and the connection dropped (not reused). */
async function readStart(body: AsyncIterable<Buffer> & { destroy(): unknown }, maxBytes: number): Promise<{ text: string; truncated: boolean }> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    chunks.push(chunk);
    size += chunk.length;
    if (size >= maxBytes) {
      body.destroy();
      return { text: Buffer.concat(chunks).subarray(0, maxBytes).toString('utf8'), truncated: true };
    }
  }
  return { text: Buffer.concat(chunks).toString('utf8'), truncated: false };
}

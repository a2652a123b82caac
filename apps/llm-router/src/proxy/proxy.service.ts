import { Inject, Injectable, Logger, OnApplicationShutdown, OnModuleInit } from '@nestjs/common';
import type { IncomingHttpHeaders, ServerResponse } from 'node:http';
import { modelStatusOf } from '@switchboard/contracts';
import { LogThrottle } from '@switchboard/observability';
import { RoutedInstance, RoutingTable } from '@switchboard/routing-table';
import { BalancerService } from '../balancing/balancer.service';
import type { LlmRouterConfig } from '../config/llm-router.config';
import type { ResolvedPolicy } from '../config/routing-policy.config';
import { RoutingPolicyService } from '../config/routing-policy.service';
import { LLM_ROUTER_CONFIG } from '../llm-router.tokens';
import { RouterMetricsService } from '../observability/router-metrics.service';
import { attachRequestSpan, RequestSpan, requestSpanOf } from '../observability/request-span.util';
import { DrainService } from './drain.service';
import { OpenAiError } from './openai-error.exception';
import { AttemptResult, ClientSide, ExchangeDeps, UpstreamExchange } from './upstream-exchange.util';
import { AttemptFailure, UpstreamPools } from './upstream.util';

export type Endpoint = 'chat' | 'completions' | 'embeddings';

/** What the proxy needs of a client's request, whichever route took it. */
export interface ClientRequest {
  headers: IncomingHttpHeaders;
  /** The parsed body. */
  body: unknown;
  /** The body's bytes as they came, when they are JSON: forwarded untouched unless the model is renamed. */
  raw?: Buffer;
}

const PATHS: Record<Endpoint, string> = { chat: '/v1/chat/completions', completions: '/v1/completions', embeddings: '/v1/embeddings' };
/** Request headers worth passing to a backend (never the client's API key). */
const FORWARDED = ['accept', 'traceparent', 'tracestate', 'x-request-id', 'openai-organization', 'openai-project'];
const MAX_BACKOFF_MS = 250;
/** Failed attempts are logged at most once per instance per interval: a dead backend under load must not flood the log. */
const FAILURE_LOG_INTERVAL_MS = 10_000;

/**
 * Sends each request to an instance that serves its model, from the event-fed table only.
 * Retries on another instance after a connect error, a timeout, a 5xx or a 429, but only while
 * nothing has reached the client; then streams the answer through chunk by chunk, honouring
 * backpressure, and aborts the upstream request if the client goes away ({@link UpstreamExchange},
 * on undici's `dispatch` over a pool per instance). On shutdown the {@link DrainService} lets
 * requests in flight finish, then cuts the rest.
 */
@Injectable()
export class ProxyService implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger(ProxyService.name);
  private readonly failureLog = new LogThrottle(FAILURE_LOG_INTERVAL_MS);
  private readonly exchangeDeps: ExchangeDeps;
  /** The keep-alive pools to the backends, one per instance, closed once the instance has left the table. */
  readonly pools = new UpstreamPools();
  private stopWatching?: () => void;

  constructor(
    private readonly table: RoutingTable,
    private readonly balancer: BalancerService,
    private readonly policies: RoutingPolicyService,
    private readonly metrics: RouterMetricsService,
    private readonly drain: DrainService,
    @Inject(LLM_ROUTER_CONFIG) private readonly config: LlmRouterConfig,
  ) {
    this.exchangeDeps = { balancer, metrics };
  }

  onModuleInit(): void {
    // An event names its instance (gone: no instance); a snapshot replaced the whole table.
    this.stopWatching = this.table.onChange((change) => {
      if (!change) this.pools.retainKnown((id) => this.table.get(id) !== undefined);
      else if (!change.instance) this.pools.drop(change.serviceId);
    });
  }

  /** After the drain and the HTTP server: the keep-alive pools to the backends. */
  async onApplicationShutdown(): Promise<void> {
    this.stopWatching?.();
    await this.pools.close();
  }

  /**
   * Answers `request` on `res`: the backend's answer, or throws an {@link OpenAiError} (or another
   * error) when nothing has been written, for the caller to answer.
   */
  async handle(endpoint: Endpoint, request: ClientRequest, res: ServerResponse): Promise<void> {
    const client = this.drain.enter(new ClientSide(res));
    try {
      await this.proxy(endpoint, request, client);
    } finally {
      client.release();
      this.drain.leave(client);
    }
  }

  private async proxy(endpoint: Endpoint, request: ClientRequest, client: ClientSide): Promise<void> {
    const body = validate(endpoint, request.body);
    const requested = body['model'] as string;
    // GenAI attributes on the request's server span, while tracing records it (observability/request-span.util.ts).
    attachRequestSpan(client, RequestSpan.start(endpoint, requested, body['stream'] === true));
    const environment = this.config.ROUTER_ENVIRONMENT;
    let notReady: OpenAiError | undefined;
    let failure: AttemptFailure | undefined;
    let headers: string[] | undefined;

    for (const [index, model] of this.policies.candidates(requested).entries()) {
      const all = this.table.instancesFor(environment, model);
      if (!all.length) continue;
      const routable = all.filter((i) => i.routable);
      if (!routable.length) {
        notReady ??= OpenAiError.modelNotReady(model, [...new Set(all.map(modelStatusOf))].join(', '));
        continue;
      }
      // The client's bytes as they came, unless an alias or a fallback renames the model.
      const payload = model === requested ? (request.raw ?? JSON.stringify(body)) : JSON.stringify({ ...body, model });
      headers ??= forwardHeaders(request.headers);
      const result = await this.route(endpoint, model, routable, payload, headers, body, request.headers, client);
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
    headers: string[],
    body: Record<string, unknown>,
    incoming: IncomingHttpHeaders,
    client: ClientSide,
  ): Promise<AttemptResult> {
    const policy = this.policies.policyFor(model);
    const affinityKey = headerValue(incoming[policy.affinityHeader]) ?? (typeof body['user'] === 'string' ? body['user'] : undefined);
    const stream = body['stream'] === true;
    let tried: Set<string> | undefined;
    let failure: AttemptFailure | undefined;
    for (let attempt = 0; attempt < policy.maxAttempts; attempt++) {
      const candidates = tried ? routable.filter((i) => !tried?.has(i.serviceId)) : routable;
      const instance = this.balancer.pick(model, candidates, policy, affinityKey);
      if (!instance) break;
      (tried ??= new Set()).add(instance.serviceId);
      if (attempt > 0) {
        this.metrics.retries.inc({ model, reason: failure?.kind ?? 'unknown' });
        await sleep(Math.min(MAX_BACKOFF_MS, 10 * 2 ** attempt));
        if (client.gone || client.res.destroyed) return { done: true };
      }
      const result = await this.attempt(endpoint, model, instance, policy, payload, headers, stream, client);
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

  private attempt(
    endpoint: Endpoint,
    model: string,
    instance: RoutedInstance,
    policy: ResolvedPolicy,
    payload: string | Buffer,
    headers: string[],
    stream: boolean,
    client: ClientSide,
  ): Promise<AttemptResult> {
    // Cut between two attempts: no new one starts.
    if (client.cut) return Promise.reject(OpenAiError.shuttingDown());
    const upstream = this.pools.upstreamFor(instance.serviceId, instance.internalUrl, policy.connectMs);
    requestSpanOf(client)?.attempt(instance.serviceId, model);
    return new Promise<AttemptResult>((resolve, reject) => {
      const exchange = new UpstreamExchange(this.exchangeDeps, client, model, instance, policy, stream, resolve, reject);
      upstream.pool.dispatch(
        {
          path: upstream.basePath + PATHS[endpoint],
          method: 'POST',
          headers,
          body: payload,
          headersTimeout: stream ? policy.firstTokenMs : policy.totalMs,
          bodyTimeout: policy.firstTokenMs,
        },
        exchange,
      );
    });
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

/** The upstream request's headers, a flat list (undici takes it as is); undici adds content-length from the body. */
function forwardHeaders(incoming: IncomingHttpHeaders): string[] {
  const headers = ['content-type', 'application/json'];
  for (const name of FORWARDED) {
    const value = headerValue(incoming[name]);
    if (value) headers.push(name, value);
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

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

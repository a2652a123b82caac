import { randomBytes } from 'node:crypto';
import { createServer, IncomingMessage, Server, ServerResponse, STATUS_CODES } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import fastify, { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { completionPieces, completionText, embeddingToBase64, embedText, tokenBudget } from './completion.util';
import { FaultState, FaultValidationError, MockFaults, RequestFaultPlan } from './faults.util';
import { MockBackendOptions, ResolvedMockBackendOptions, resolveMockBackendOptions } from './mock-backend.config';
import { parseChatCompletionRequest, parseCompletionRequest, parseEmbeddingRequest } from './openai.dto';
import { errorCodeFor, invalidRequest, modelNotFound, OpenAIHttpException } from './openai.exception';
import {
  chatCompletionJson,
  chatStreamPlan,
  completionJson,
  completionStreamPlan,
  ResponseHead,
  StreamPlan,
  usageJson,
} from './openai-response.util';

export interface MockBackendStats {
  /** Requests received, admin (`/_mock/*`) excluded. */
  requests: number;
  inflight: number;
  /** Requests per path, query string excluded. */
  byPath: Record<string, number>;
  /** Requests whose client disconnected before the response ended (not those the mock cut itself). */
  aborted: number;
}

export interface MockBackend {
  /** `http://host:port`; a wildcard host is given as loopback so the URL can be called. */
  readonly url: string;
  readonly port: number;
  readonly name: string;
  readonly models: readonly string[];
  stats(): MockBackendStats;
  /** Replaces the faults in force (validated: throws FaultValidationError on a bad one). */
  setFaults(faults: MockFaults): void;
  clearFaults(): void;
  faults(): MockFaults | undefined;
  /** Stops listening and destroys open sockets (streams and hung requests included), then resolves. */
  close(): Promise<void>;
  /** Destroys every socket at once and stops listening, like a crashed process. */
  kill(): Promise<void>;
}

const JSON_TYPE = 'application/json';
const STREAM_HEADERS = { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', 'x-accel-buffering': 'no' };
const HEALTH_OK = '{"status":"ok"}';

/** Every path answers (sends, hijacks or throws) before this settles, so Fastify has nothing left to send. */
type Answered = void | Promise<void>;
const BODY_LIMIT_BYTES = 64 * 1024 * 1024;
// Longer than common client keep-alive timeouts, so the client, not the mock, retires idle
// connections and never sends on one the mock is closing.
const KEEP_ALIVE_TIMEOUT_MS = 72_000;
// A cut waits this long after its last bytes are flushed, so the client reads them before the
// connection error (a fetch body stream drops chunks it has queued when it errors).
const CUT_GRACE_MS = 20;

export async function startMockBackend(options: MockBackendOptions = {}): Promise<MockBackend> {
  const backend = new MockBackendServer(resolveMockBackendOptions(options));
  await backend.listen();
  return backend;
}

class MockBackendServer implements MockBackend {
  url = '';
  port = 0;
  name = '';
  readonly models: readonly string[];

  private readonly server: Server;
  private readonly app: FastifyInstance;
  private readonly faultState = new FaultState();
  private readonly sockets = new Set<Socket>();
  /** Responses the mock ended on purpose (drop, cut): their close is not a client abort. */
  private readonly endedByMock = new WeakSet<ServerResponse>();
  private readonly modelJson: Map<string, string>;
  private readonly idPrefix = randomBytes(4).toString('hex');
  private readonly created = Math.floor(Date.now() / 1000);
  private fingerprintJson = '""';
  private modelsListJson = '';
  private sequence = 0;
  private requests = 0;
  private inflight = 0;
  private aborted = 0;
  private readonly byPath = new Map<string, number>();
  private stopping: Promise<void> | undefined;

  constructor(private readonly config: ResolvedMockBackendOptions) {
    this.models = config.models;
    this.modelJson = new Map(config.models.map((model) => [model, JSON.stringify(model)]));
    this.server = createServer({ keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS });
    this.server.on('connection', (socket: Socket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
    });
    this.app = fastify({
      logger: false,
      bodyLimit: BODY_LIMIT_BYTES,
      // A malformed URL is answered before routing; keep OpenAI's error shape there too.
      frameworkErrors: (error, _req, reply) => {
        this.sendError(reply, toOpenAIException(error));
      },
      serverFactory: (handler) =>
        this.server.on('request', (req: IncomingMessage, res: ServerResponse) => {
          this.track(req, res);
          handler(req, res);
        }),
    });
    this.routes();
  }

  async listen(): Promise<void> {
    await this.app.listen({ port: this.config.port, host: this.config.host });
    this.port = (this.server.address() as AddressInfo).port;
    this.name = this.config.name ?? `mock-${this.port}`;
    this.fingerprintJson = JSON.stringify(this.name);
    this.url = `http://${urlHost(this.config.host)}:${this.port}`;
    this.modelsListJson = JSON.stringify({ object: 'list', data: this.models.map((id) => this.modelObject(id)) });
  }

  stats(): MockBackendStats {
    return { requests: this.requests, inflight: this.inflight, byPath: Object.fromEntries(this.byPath), aborted: this.aborted };
  }

  setFaults(faults: MockFaults): void {
    this.faultState.set(faults);
  }

  clearFaults(): void {
    this.faultState.clear();
  }

  faults(): MockFaults | undefined {
    return this.faultState.current();
  }

  close(): Promise<void> {
    this.stopping ??= (async () => {
      const closed = this.stopListening();
      for (const socket of this.sockets) socket.destroy();
      await this.app.close();
      await closed;
    })();
    return this.stopping;
  }

  kill(): Promise<void> {
    if (this.stopping === undefined) {
      for (const socket of this.sockets) socket.destroy();
      this.stopping = this.stopListening();
    }
    return this.stopping;
  }

  private stopListening(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private track(req: IncomingMessage, res: ServerResponse): void {
    res.setHeader('x-mock-backend', this.name);
    const url = req.url ?? '/';
    if (url.startsWith('/_mock/')) return;
    const query = url.indexOf('?');
    const path = query === -1 ? url : url.slice(0, query);
    this.requests++;
    this.inflight++;
    this.byPath.set(path, (this.byPath.get(path) ?? 0) + 1);
    res.on('close', this.onResponseClose);
    this.config.onRequest?.(req, res);
  }

  // One listener shared by every response (`this` inside is the response), not a closure each.
  private readonly onResponseClose = ((backend: MockBackendServer) =>
    function (this: ServerResponse): void {
      backend.inflight--;
      if (!this.writableEnded && backend.stopping === undefined && !backend.endedByMock.has(this)) backend.aborted++;
    })(this);

  private routes(): void {
    const app = this.app;
    // Clients that omit or mislabel the content type still send JSON; parse it rather than answer 415.
    app.addContentTypeParser('*', { parseAs: 'string' }, (_req, body, done) => {
      if (body === '') return done(null, undefined);
      try {
        done(null, JSON.parse(body as string));
      } catch {
        done(invalidRequest('The request body is not valid JSON.'), undefined);
      }
    });
    app.setErrorHandler((error: unknown, _req, reply) => this.sendError(reply, toOpenAIException(error)));
    app.setNotFoundHandler((req, reply) =>
      this.sendError(reply, new OpenAIHttpException(404, `Invalid URL (${req.method} ${req.url})`, null, 'unknown_url', 'invalid_request_error')),
    );

    app.post('/v1/chat/completions', (req, reply) => this.v1(req, reply, this.chatCompletions));
    app.post('/v1/completions', (req, reply) => this.v1(req, reply, this.completions));
    app.post('/v1/embeddings', (req, reply) => this.v1(req, reply, this.embeddings));
    app.get('/v1/models', (req, reply) => this.v1(req, reply, this.listModels));
    // Model ids often contain a slash (`org/model`), hence the wildcard.
    app.get<{ Params: { '*': string } }>('/v1/models/*', (req, reply) => this.v1(req, reply, this.retrieveModel));
    app.get('/health', (req, reply) => this.health(req, reply));

    app.get('/_mock/faults', (_req, reply) => this.sendJson(reply, JSON.stringify({ faults: this.faults() ?? null })));
    app.put('/_mock/faults', (req, reply) => {
      this.setFaults(req.body as MockFaults);
      return this.sendJson(reply, JSON.stringify({ faults: this.faults() ?? null }));
    });
    app.delete('/_mock/faults', (_req, reply) => {
      this.clearFaults();
      return this.sendJson(reply, '{"faults":null}');
    });
    app.get('/_mock/stats', (_req, reply) => this.sendJson(reply, JSON.stringify({ name: this.name, ...this.stats() })));
  }

  /**
   * Latency and faults first, then `answer`. With neither (the benchmark baseline) the whole request
   * is answered synchronously: no promise, no timer.
   */
  private v1<R extends FastifyRequest>(req: R, reply: FastifyReply, answer: (req: R, reply: FastifyReply, cutAfterChunks: number | undefined) => Answered): Answered {
    const plan = this.faultState.forRequest(req.headers);
    if (plan === undefined && this.config.latencyMs === 0) return answer(req, reply, undefined);
    return this.applyFaults(plan, reply).then((handled) => (handled ? undefined : answer(req, reply, cutAfter(plan))));
  }

  private readonly chatCompletions = (req: FastifyRequest, reply: FastifyReply, cutAfterChunks: number | undefined): Answered => {
    const request = parseChatCompletionRequest(req.body);
    const head = this.head('chatcmpl-', request.model);
    const budget = tokenBudget(this.config.completionTokens, request.maxTokens);
    if (request.stream) {
      const usage = request.includeUsage ? usageJson(request.promptTokens, budget.tokens) : undefined;
      return this.stream(reply, chatStreamPlan(head, completionPieces(request.promptText, budget.tokens), budget.finishReason, usage), cutAfterChunks);
    }
    const send = (): void => {
      const content = completionText(request.promptText, budget.tokens);
      this.sendJson(reply, chatCompletionJson(head, content, budget.finishReason, usageJson(request.promptTokens, budget.tokens)), cutAfterChunks);
    };
    return this.afterGeneration(reply, budget.tokens, send);
  };

  private readonly completions = (req: FastifyRequest, reply: FastifyReply, cutAfterChunks: number | undefined): Answered => {
    const request = parseCompletionRequest(req.body);
    const head = this.head('cmpl-', request.model);
    const budget = tokenBudget(this.config.completionTokens, request.maxTokens);
    if (request.stream) {
      const usage = request.includeUsage ? usageJson(request.promptTokens, budget.tokens) : undefined;
      return this.stream(reply, completionStreamPlan(head, completionPieces(request.promptText, budget.tokens), budget.finishReason, usage), cutAfterChunks);
    }
    const send = (): void => {
      const text = completionText(request.promptText, budget.tokens);
      this.sendJson(reply, completionJson(head, text, budget.finishReason, usageJson(request.promptTokens, budget.tokens)), cutAfterChunks);
    };
    return this.afterGeneration(reply, budget.tokens, send);
  };

  private readonly embeddings = (req: FastifyRequest, reply: FastifyReply, cutAfterChunks: number | undefined): Answered => {
    const request = parseEmbeddingRequest(req.body);
    if (!this.modelJson.has(request.model)) throw modelNotFound(request.model);
    const data = request.inputs.map((input, index) => {
      const vector = embedText(input);
      return { object: 'embedding', index, embedding: request.base64 ? embeddingToBase64(vector) : vector };
    });
    const usage = { prompt_tokens: request.promptTokens, total_tokens: request.promptTokens };
    this.sendJson(reply, JSON.stringify({ object: 'list', data, model: request.model, usage }), cutAfterChunks);
  };

  private readonly listModels = (_req: FastifyRequest, reply: FastifyReply, cutAfterChunks: number | undefined): Answered => {
    this.sendJson(reply, this.modelsListJson, cutAfterChunks);
  };

  private readonly retrieveModel = (req: FastifyRequest<{ Params: { '*': string } }>, reply: FastifyReply, cutAfterChunks: number | undefined): Answered => {
    const model = req.params['*'];
    if (!this.modelJson.has(model)) throw modelNotFound(model);
    this.sendJson(reply, JSON.stringify(this.modelObject(model)), cutAfterChunks);
  };

  private async health(req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
    const plan = this.faultState.forHealth(req.headers);
    if (plan === undefined) return this.sendJson(reply, HEALTH_OK);
    switch (plan.mode) {
      case 'unhealthy':
        return this.sendJson(reply, '{"status":"unhealthy"}', undefined, 503);
      case 'degraded':
        await sleep(plan.delayMs, reply.raw);
        if (reply.raw.destroyed) return reply.hijack();
        return this.sendJson(reply, '{"status":"degraded"}');
      case 'hang':
        return reply.hijack();
    }
  }

  /** Waits the latency, then carries out a terminal fault; true when the request needs nothing more. */
  private async applyFaults(plan: RequestFaultPlan | undefined, reply: FastifyReply): Promise<boolean> {
    const res = reply.raw;
    const latency = plan?.latencyMs ?? this.config.latencyMs;
    if (latency > 0) {
      await sleep(latency, res);
      if (res.destroyed) {
        reply.hijack();
        return true;
      }
    }
    const action = plan?.action;
    if (action === undefined || action.kind === 'cut') return false;
    switch (action.kind) {
      case 'status': {
        if (action.retryAfter !== undefined) reply.header('retry-after', String(action.retryAfter));
        const message = `Mock fault: HTTP ${action.status} ${STATUS_CODES[action.status] ?? ''}`.trimEnd();
        this.sendError(reply, new OpenAIHttpException(action.status, message, null, errorCodeFor(action.status)));
        return true;
      }
      case 'drop':
        reply.hijack();
        this.endedByMock.add(res);
        res.destroy();
        return true;
      case 'hang':
        // Held until the client gives up or the backend closes; the close counts as an abort.
        reply.hijack();
        return true;
    }
  }

  /** A non-streaming answer arrives after the time streaming its tokens would take. */
  private afterGeneration(reply: FastifyReply, tokens: number, send: () => void): Answered {
    if (this.config.tokensPerSecond === 0 || tokens <= 1) return send();
    return sleep(((tokens - 1) * 1000) / this.config.tokensPerSecond, reply.raw).then(() => {
      if (reply.raw.destroyed) reply.hijack();
      else send();
    });
  }

  private head(idPrefix: string, model: string): ResponseHead {
    const modelJson = this.modelJson.get(model);
    if (modelJson === undefined) throw modelNotFound(model);
    return {
      id: idPrefix + this.idPrefix + (++this.sequence).toString(36),
      created: Math.floor(Date.now() / 1000),
      modelJson,
      fingerprintJson: this.fingerprintJson,
    };
  }

  private modelObject(id: string): { id: string; object: 'model'; created: number; owned_by: string } {
    return { id, object: 'model', created: this.created, owned_by: 'mock' };
  }

  private sendJson(reply: FastifyReply, body: string, cutAfterChunks?: number, status = 200): FastifyReply {
    if (cutAfterChunks !== undefined) {
      // Headers and half the body: the client sees a truncated response, as from a backend dying mid-write.
      reply.hijack();
      const res = reply.raw;
      const bytes = Buffer.from(body);
      res.writeHead(status, { 'content-type': JSON_TYPE, 'content-length': bytes.length });
      res.write(bytes.subarray(0, bytes.length >> 1), () => this.cut(res));
      return reply;
    }
    return reply.code(status).header('content-type', JSON_TYPE).send(body);
  }

  private sendError(reply: FastifyReply, error: OpenAIHttpException): FastifyReply {
    return this.sendJson(reply, JSON.stringify(error.toBody()), undefined, error.status);
  }

  /**
   * Writes SSE chunks as they fall due: the role chunk and first token at once, token i at
   * i / tokensPerSecond, the closing chunks with the last token. Chunks due together go out in one
   * write; a full socket buffer is waited out before the next.
   */
  private async stream(reply: FastifyReply, plan: StreamPlan, cutAfterChunks: number | undefined): Promise<void> {
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, STREAM_HEADERS);
    res.flushHeaders();
    const { chunks, firstToken, tokens } = plan;
    const end = cutAfterChunks === undefined ? chunks.length : Math.min(cutAfterChunks, chunks.length);
    const interval = this.config.tokensPerSecond > 0 ? 1000 / this.config.tokensPerSecond : 0;
    const lastToken = firstToken + tokens - 1;
    const dueStep = (i: number): number => (interval === 0 || i <= firstToken ? 0 : Math.max(0, Math.min(i, lastToken) - firstToken));
    const started = performance.now();
    let i = 0;
    while (i < end) {
      const step = dueStep(i);
      const wait = started + step * interval - performance.now();
      if (wait > 0) {
        await sleep(wait, res);
        if (res.destroyed) return;
      }
      let next = i + 1;
      while (next < end && dueStep(next) === step) next++;
      const data = next - i === 1 ? chunks[i] : chunks.slice(i, next).join('');
      i = next;
      if (i === end && end < chunks.length) {
        res.write(data, () => this.cut(res));
        return;
      }
      if (!res.write(data)) {
        await drained(res);
        if (res.destroyed) return;
      }
    }
    if (end < chunks.length) this.cut(res);
    else res.end();
  }

  private cut(res: ServerResponse): void {
    this.endedByMock.add(res);
    setTimeout(() => res.destroy(), CUT_GRACE_MS);
  }
}

function cutAfter(plan: RequestFaultPlan | undefined): number | undefined {
  const action = plan?.action;
  return action?.kind === 'cut' ? action.afterChunks : undefined;
}

function toOpenAIException(error: unknown): OpenAIHttpException {
  if (error instanceof OpenAIHttpException) return error;
  if (error instanceof FaultValidationError) return invalidRequest(error.message);
  const status = (error as { statusCode?: unknown } | null)?.statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    return new OpenAIHttpException(status, error instanceof Error ? error.message : String(error));
  }
  return new OpenAIHttpException(500, 'The mock backend failed to handle the request.', null, null, 'server_error');
}

function urlHost(host: string): string {
  if (host === '0.0.0.0') return '127.0.0.1';
  if (host === '::') return '[::1]';
  return host.includes(':') ? `[${host}]` : host;
}

/** Resolves after `ms`, or as soon as the response closes (client gone, backend closing). */
function sleep(ms: number, res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    if (res.destroyed) return resolve();
    const done = (): void => {
      clearTimeout(timer);
      res.off('close', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    res.once('close', done);
  });
}

function drained(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.once('drain', done);
    res.once('close', done);
  });
}

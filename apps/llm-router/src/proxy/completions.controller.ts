import { Controller, HttpException, Inject, OnApplicationBootstrap } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { IncomingMessage, RequestListener, Server, ServerResponse } from 'node:http';
import { RoutingTable } from '@switchboard/routing-table';
import { ApiKeys } from '../auth/api-key.guard';
import type { LlmRouterConfig } from '../config/llm-router.config';
import { RoutingPolicyService } from '../config/routing-policy.service';
import { LLM_ROUTER_CONFIG } from '../llm-router.tokens';
import { DrainService } from './drain.service';
import { OpenAiError, OpenAiErrorFilter } from './openai-error.exception';
import { ClientRequest, Endpoint, ProxyService } from './proxy.service';

const ROUTES: [string, Endpoint][] = [
  ['/v1/chat/completions', 'chat'],
  ['/v1/completions', 'completions'],
  ['/v1/embeddings', 'embeddings'],
];
const LEAN_ROUTES = new Map(ROUTES);
const JSON_TYPE = /^application\/json\s*(;|$)/i;

/** A JSON body being read by the lean route: its listeners are shared functions that find it through a symbol. */
interface BodyRead {
  controller: CompletionsController;
  endpoint: Endpoint;
  res: ServerResponse;
  chunks: Buffer[];
  size: number;
  done: boolean;
}
const BODY = Symbol('llm-router body read');
type ReadRequest = IncomingMessage & { [BODY]?: BodyRead };

/**
 * The OpenAI-compatible surface, off Nest's per-request machinery:
 * - **the lean route**: a `POST` of JSON to one of the three proxy paths is taken from the HTTP server's
 *   `request` event before Fastify sees it: the body read with the app's limit and parsed by Fastify's
 *   own JSON parser (same prototype-poisoning rules, same 400/413 errors), the same bearer-key check
 *   ({@link ApiKeys}, as ApiKeyGuard) and errors in OpenAI's shape. No Fastify routing, hooks, middie
 *   (Nest middleware) or pino-http per request (its exclude list kept /v1 unlogged anyway: their traffic is
 *   in the metrics, failures in the log).
 * - **Fastify routes** for the rest of `/v1` (other content types, such as a form body, re-serialised
 *   as JSON; a query string; `GET /v1/models`), registered on Fastify directly: no router context, guard,
 *   pipes or filter lookup per request.
 * Both hand the proxy the raw response: it writes the answer itself.
 */
@Controller()
export class CompletionsController implements OnApplicationBootstrap {
  private readonly keys: ApiKeys;
  private readonly errors = new OpenAiErrorFilter();
  /** Set at bootstrap, from the Fastify instance. */
  private parseJson!: (body: Buffer) => unknown;

  constructor(
    private readonly proxy: ProxyService,
    private readonly table: RoutingTable,
    private readonly policies: RoutingPolicyService,
    private readonly drain: DrainService,
    private readonly adapter: HttpAdapterHost,
    @Inject(LLM_ROUTER_CONFIG) private readonly config: LlmRouterConfig,
  ) {
    this.keys = new ApiKeys(config);
  }

  /** At the end of the app's init: Nest's body parsers and error handler are in place, `listen` is still to come. */
  onApplicationBootstrap(): void {
    const fastify = this.adapter.httpAdapter.getInstance<FastifyInstance>();
    this.register(fastify);
    this.takeLeanRoutes(fastify);
  }

  private register(fastify: FastifyInstance): void {
    for (const [url, endpoint] of ROUTES) {
      fastify.post(url, (req, reply) => {
        // The proxy writes the answer to the raw response itself.
        reply.hijack();
        void this.serve(endpoint, { headers: req.headers, body: req.body, raw: rawBodyOf(req) }, reply.raw);
      });
    }
    fastify.get('/v1/models', (req, reply) => {
      try {
        this.keys.check(req.headers.authorization);
        void reply.send(this.models());
      } catch (error) {
        this.errors.send(reply, error);
      }
    });
  }

  /** Puts the lean route in front of Fastify's request listener; every other request goes to Fastify as before. */
  private takeLeanRoutes(fastify: FastifyInstance): void {
    const { onProtoPoisoning, onConstructorPoisoning } = fastify.initialConfig;
    // As Nest's JSON parser for Fastify: Fastify's default one, poisoning refused unless configured otherwise.
    const parser = fastify.getDefaultJsonParser(onProtoPoisoning ?? 'error', onConstructorPoisoning ?? 'error');
    this.parseJson = (body) => {
      let result: unknown;
      let failure: unknown;
      parser(undefined as never, body as unknown as string, (error: unknown, value: unknown) => ((failure = error), (result = value)));
      if (failure) throw failure;
      return result;
    };
    const server = this.adapter.httpAdapter.getHttpServer() as Server;
    const others = server.listeners('request') as RequestListener[];
    server.removeAllListeners('request');
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      const endpoint = req.method === 'POST' ? LEAN_ROUTES.get(req.url ?? '') : undefined;
      if (endpoint && JSON_TYPE.test(req.headers['content-type'] ?? '')) return this.readBody(endpoint, req, res);
      for (const listener of others) listener.call(server, req, res);
    });
  }

  /** Reads a JSON body within BODY_LIMIT_BYTES, as Fastify's parser would (413 early on a declared length over it). */
  private readBody(endpoint: Endpoint, req: ReadRequest, res: ServerResponse): void {
    const declared = Number(req.headers['content-length']);
    if (declared > this.config.BODY_LIMIT_BYTES) return this.errors.sendRaw(res, new HttpException('Request body is too large', 413));
    req[BODY] = { controller: this, endpoint, res, chunks: [], size: 0, done: false };
    req.on('data', onBodyData);
    req.on('end', onBodyEnd);
    req.on('error', onBodyError);
  }

  /** The body is in: parse, then serve (or answer the parse error). */
  bodyRead(req: ReadRequest, read: BodyRead): void {
    const declared = Number(req.headers['content-length']);
    if (!Number.isNaN(declared) && read.size !== declared) return this.errors.sendRaw(read.res, new HttpException('Request body size did not match Content-Length', 400));
    const raw = read.chunks.length === 1 ? read.chunks[0] : Buffer.concat(read.chunks, read.size);
    let body: unknown;
    try {
      body = this.parseJson(raw);
    } catch (error) {
      return this.errors.sendRaw(read.res, new HttpException((error as Error).message, (error as { statusCode?: number }).statusCode ?? 400));
    }
    void this.serve(read.endpoint, { headers: req.headers, body, raw }, read.res);
  }

  bodyTooLarge(read: BodyRead): void {
    this.errors.sendRaw(read.res, new HttpException('Request body is too large', 413));
  }

  get bodyLimit(): number {
    return this.config.BODY_LIMIT_BYTES;
  }

  private async serve(endpoint: Endpoint, request: ClientRequest, res: ServerResponse): Promise<void> {
    try {
      this.keys.check(request.headers.authorization);
      await this.proxy.handle(endpoint, request, res);
    } catch (error) {
      this.errors.sendRaw(res, error);
    }
  }

  /** Routable models of this router's environment, and the aliases that lead to one. */
  models() {
    if (this.drain.draining) throw OpenAiError.shuttingDown();
    const environment = this.config.ROUTER_ENVIRONMENT;
    const routable = this.table.routableModels(environment);
    const served = new Set(routable);
    const aliases = [...this.policies.aliases()].filter(([, target]) => served.has(target)).map(([alias]) => alias);
    return {
      object: 'list',
      data: [...routable, ...aliases.filter((a) => !served.has(a))].sort().map((id) => ({ id, object: 'model', created: 0, owned_by: 'switchboard' })),
    };
  }
}

function onBodyData(this: ReadRequest, chunk: Buffer): void {
  const read = this[BODY];
  if (!read || read.done) return;
  read.size += chunk.length;
  if (read.size > read.controller.bodyLimit) {
    read.done = true;
    read.controller.bodyTooLarge(read);
    return;
  }
  read.chunks.push(chunk);
}

function onBodyEnd(this: ReadRequest): void {
  const read = this[BODY];
  this[BODY] = undefined;
  if (!read || read.done) return;
  read.done = true;
  read.controller.bodyRead(this, read);
}

/** The client went away (or broke the request) before its body was in: nothing to answer. */
function onBodyError(this: ReadRequest): void {
  const read = this[BODY];
  if (read) read.done = true;
}

/** The body's bytes as JSON came (`rawBody: true` in bootstrap); only the JSON parser's: a form body is re-serialised as before. */
function rawBodyOf(req: FastifyRequest): Buffer | undefined {
  const raw = (req as { rawBody?: unknown }).rawBody;
  return Buffer.isBuffer(raw) && /^\s*application\/json\s*(;|$)/i.test(req.headers['content-type'] ?? '') ? raw : undefined;
}

import { Controller, Inject, OnApplicationBootstrap } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { RoutingTable } from '@switchboard/routing-table';
import { ApiKeys } from '../auth/api-key.guard';
import type { LlmRouterConfig } from '../config/llm-router.config';
import { RoutingPolicyService } from '../config/routing-policy.service';
import { LLM_ROUTER_CONFIG } from '../llm-router.tokens';
import { DrainService } from './drain.service';
import { OpenAiError, OpenAiErrorFilter } from './openai-error.exception';
import { Endpoint, ProxyService } from './proxy.service';

const ROUTES: [string, Endpoint][] = [
  ['/v1/chat/completions', 'chat'],
  ['/v1/completions', 'completions'],
  ['/v1/embeddings', 'embeddings'],
];

/**
 * The OpenAI-compatible surface. Its routes are registered on Fastify directly, at the end of the app's
 * init (Nest's body parsers and error handler are in place then, `listen` is still to come): the hot path
 * skips Nest's per-request machinery (router execution context, guard, pipes, interceptors, filter
 * lookup), which cost more than the proxying itself. What that machinery did is done here, the same
 * way: the bearer-key check ({@link ApiKeys}, as ApiKeyGuard), errors in OpenAI's shape (the filter's
 * own `send`). Body parsing, the body limit and their errors (400, 413, 415) stay Fastify's and Nest's
 * (the parser and the error handler are the app's), and the handlers write the reply themselves.
 */
@Controller()
export class CompletionsController implements OnApplicationBootstrap {
  private readonly keys: ApiKeys;
  private readonly errors = new OpenAiErrorFilter();

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

  onApplicationBootstrap(): void {
    this.register(this.adapter.httpAdapter.getInstance<FastifyInstance>());
  }

  private register(fastify: FastifyInstance): void {
    for (const [url, endpoint] of ROUTES) {
      // Not async: the handler answers through `reply` (or hijacks it), Fastify waits for that.
      fastify.post(url, (req, reply) => {
        void this.serve(endpoint, req, reply);
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

  private async serve(endpoint: Endpoint, req: FastifyRequest, reply: FastifyReply): Promise<void> {
    try {
      this.keys.check(req.headers.authorization);
      await this.proxy.handle(endpoint, req, reply);
    } catch (error) {
      this.errors.send(reply, error);
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

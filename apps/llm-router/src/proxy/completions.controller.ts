import { Controller, Get, HttpCode, Inject, Post, Req, Res } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { RoutingTable } from '@switchboard/routing-table';
import type { LlmRouterConfig } from '../config/llm-router.config';
import { RoutingPolicyService } from '../config/routing-policy.service';
import { LLM_ROUTER_CONFIG } from '../llm-router.tokens';
import { DrainService } from './drain.service';
import { OpenAiError } from './openai-error.exception';
import { ProxyService } from './proxy.service';

/** The OpenAI-compatible surface. Handlers write the reply themselves (streamed through). */
@Controller('v1')
export class CompletionsController {
  constructor(
    private readonly proxy: ProxyService,
    private readonly table: RoutingTable,
    private readonly policies: RoutingPolicyService,
    private readonly drain: DrainService,
    @Inject(LLM_ROUTER_CONFIG) private readonly config: LlmRouterConfig,
  ) {}

  @Post('chat/completions')
  @HttpCode(200)
  chat(@Req() req: FastifyRequest, @Res() reply: FastifyReply): Promise<void> {
    return this.proxy.handle('chat', req, reply);
  }

  @Post('completions')
  @HttpCode(200)
  completions(@Req() req: FastifyRequest, @Res() reply: FastifyReply): Promise<void> {
    return this.proxy.handle('completions', req, reply);
  }

  @Post('embeddings')
  @HttpCode(200)
  embeddings(@Req() req: FastifyRequest, @Res() reply: FastifyReply): Promise<void> {
    return this.proxy.handle('embeddings', req, reply);
  }

  /** Routable models of this router's environment, and the aliases that lead to one. */
  @Get('models')
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

import { CanActivate, ExecutionContext, Inject, Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { hash, timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import type { LlmRouterConfig } from '../config/llm-router.config';
import { LLM_ROUTER_CONFIG } from '../llm-router.tokens';
import { OpenAiError } from '../proxy/openai-error.exception';

import { PUBLIC_ROUTE } from '@switchboard/observability';

/** One-shot hash (cheaper per request than createHash().update().digest()). */
const digest = (value: string) => hash('sha256', value, 'buffer');

/**
 * The bearer-key check, shared by the guard (Nest routes) and the lean /v1 routes (registered on
 * Fastify directly). No key configured: everything passes (development only: production refuses to
 * start so, and main.ts warns at start).
 */
export class ApiKeys {
  private readonly keys: Buffer[];

  constructor(config: LlmRouterConfig) {
    this.keys = config.apiKeys.map(digest);
  }

  get open(): boolean {
    return !this.keys.length;
  }

  /** Throws the 401 in OpenAI's shape unless `header` carries one of the keys. */
  check(header: string | undefined): void {
    if (!this.keys.length) return;
    const match = header ? /^Bearer\s+(.+)$/i.exec(header.trim()) : null;
    if (!match) {
      throw new OpenAiError(401, "You didn't provide an API key. Send it as 'Authorization: Bearer <key>'.", 'invalid_request_error', 'missing_api_key');
    }
    const given = digest(match[1]);
    // Compare with every key, so the time taken does not tell which one matched.
    let ok = false;
    for (const key of this.keys) ok = timingSafeEqual(given, key) || ok;
    if (!ok) throw new OpenAiError(401, 'Incorrect API key provided.', 'invalid_request_error', 'invalid_api_key');
  }
}

@Injectable()
export class ApiKeyGuard implements CanActivate {
  private readonly keys: ApiKeys;

  constructor(
    private readonly reflector: Reflector,
    @Inject(LLM_ROUTER_CONFIG) config: LlmRouterConfig,
  ) {
    this.keys = new ApiKeys(config);
  }

  canActivate(context: ExecutionContext): boolean {
    // Health and metrics are open; everything else needs a bearer key, unless no key is configured.
    if (this.keys.open) return true;
    if (this.reflector.getAllAndOverride<boolean>(PUBLIC_ROUTE, [context.getHandler(), context.getClass()])) return true;
    this.keys.check(context.switchToHttp().getRequest<FastifyRequest>().headers.authorization);
    return true;
  }
}

import { CanActivate, ExecutionContext, Inject, Injectable, SetMetadata } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { REGISTRY_API_CONFIG } from '../registry-api.tokens';
import type { RegistryApiConfig } from '../config/registry-api.config';
import { RegistryErrorCode, RegistryException } from '../registry/registry.exception';

export type TokenKind = 'registry' | 'admin';
const TOKEN_KIND = 'switchboard:tokenKind';

/** `registry`: X-Registry-Token (the admin token is accepted too). `admin`: X-Admin-Token only. */
export const RequireToken = (kind: TokenKind) => SetMetadata(TOKEN_KIND, kind);

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}

/** Compares digests, so the time taken reveals neither the token nor its length. */
export function tokensMatch(given: string, expected: Buffer): boolean {
  return timingSafeEqual(digest(given), expected);
}

@Injectable()
export class TokenGuard implements CanActivate {
  private readonly registryDigest: Buffer;
  private readonly adminDigest: Buffer;

  constructor(
    private readonly reflector: Reflector,
    @Inject(REGISTRY_API_CONFIG) config: RegistryApiConfig,
  ) {
    this.registryDigest = digest(config.REGISTRY_TOKEN);
    this.adminDigest = digest(config.ADMIN_TOKEN);
  }

  canActivate(context: ExecutionContext): boolean {
    const kind = this.reflector.getAllAndOverride<TokenKind | undefined>(TOKEN_KIND, [context.getHandler(), context.getClass()]);
    if (!kind) return true;
    const headers = context.switchToHttp().getRequest<FastifyRequest>().headers;
    const header = kind === 'admin' ? 'x-admin-token' : 'x-registry-token';
    const raw = headers[header] ?? (kind === 'registry' ? headers['x-admin-token'] : undefined);
    const given = Array.isArray(raw) ? raw[0] : raw;
    if (!given) {
      throw new RegistryException(RegistryErrorCode.TokenMissing, `Missing ${kind === 'admin' ? 'X-Admin-Token' : 'X-Registry-Token'} header`);
    }
    const ok =
      kind === 'admin'
        ? tokensMatch(given, this.adminDigest)
        : tokensMatch(given, this.registryDigest) || tokensMatch(given, this.adminDigest);
    if (!ok) throw new RegistryException(RegistryErrorCode.TokenInvalid, `Invalid ${kind} token`);
    return true;
  }
}

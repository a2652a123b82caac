import { CanActivate, ExecutionContext, Inject, Injectable, SetMetadata } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { REGISTRY_API_CONFIG } from '../registry-api.tokens';
import type { RegistryApiConfig } from '../config/registry-api.config';
import { RegistryErrorCode, RegistryException } from '../registry/registry.exception';

export type TokenKind = 'read' | 'registry' | 'admin';
const TOKEN_KIND = 'switchboard:tokenKind';

/**
 * `read`: open unless REGISTRY_READ_TOKEN is set; then X-Registry-Token with the read, write or
 * admin token, or X-Admin-Token. `registry`: X-Registry-Token (the admin token is accepted too).
 * `admin`: X-Admin-Token only. On a controller class it applies to every handler that names no kind.
 */
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
  /** Unset: reads are open. */
  private readonly readDigest?: Buffer;

  constructor(
    private readonly reflector: Reflector,
    @Inject(REGISTRY_API_CONFIG) config: RegistryApiConfig,
  ) {
    this.registryDigest = digest(config.REGISTRY_TOKEN);
    this.adminDigest = digest(config.ADMIN_TOKEN);
    this.readDigest = config.REGISTRY_READ_TOKEN ? digest(config.REGISTRY_READ_TOKEN) : undefined;
  }

  canActivate(context: ExecutionContext): boolean {
    const kind = this.reflector.getAllAndOverride<TokenKind | undefined>(TOKEN_KIND, [context.getHandler(), context.getClass()]);
    if (!kind || (kind === 'read' && !this.readDigest)) return true;
    const headers = context.switchToHttp().getRequest<FastifyRequest>().headers;
    const header = kind === 'admin' ? 'x-admin-token' : 'x-registry-token';
    const raw = headers[header] ?? (kind === 'admin' ? undefined : headers['x-admin-token']);
    const given = Array.isArray(raw) ? raw[0] : raw;
    if (!given) {
      throw new RegistryException(RegistryErrorCode.TokenMissing, `Missing ${kind === 'admin' ? 'X-Admin-Token' : 'X-Registry-Token'} header`);
    }
    const ok =
      tokensMatch(given, this.adminDigest) ||
      (kind !== 'admin' && tokensMatch(given, this.registryDigest)) ||
      (kind === 'read' && tokensMatch(given, this.readDigest as Buffer));
    if (!ok) throw new RegistryException(RegistryErrorCode.TokenInvalid, `Invalid ${kind} token`);
    return true;
  }
}

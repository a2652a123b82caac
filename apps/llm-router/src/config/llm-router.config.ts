import { availableParallelism } from 'node:os';
import { IsInt, IsOptional, IsString, Max, Min, MinLength } from 'class-validator';
import { IsOneOf, NatsEnv, Secret } from '@switchboard/config';
import { ENVIRONMENTS } from '@switchboard/contracts';

/** Keys shorter than this are refused in production. */
export const MIN_PRODUCTION_KEY_LENGTH = 16;

/** Every variable llm-router reads, validated once at boot. */
export class LlmRouterConfig extends NatsEnv {
  override PORT: number = 8080;

  /** The environment whose instances this router serves (the table is (environment, model) → instances). */
  @IsOneOf(ENVIRONMENTS)
  ROUTER_ENVIRONMENT: string = 'development';

  /**
   * Comma-separated bearer keys clients may use. Unset (or empty): /v1 is open, in development only
   * (the model workflow's CI step calls the router without a key); production refuses to start.
   */
  @Secret() @IsOptional() @IsString() @MinLength(8)
  ROUTER_API_KEYS?: string = undefined;

  /** JSON file with aliases, fallbacks and per-model strategy/timeouts; reloaded when it changes. */
  @IsOptional() @IsString()
  ROUTER_POLICY_FILE?: string = undefined;

  @IsInt() @Min(100) @Max(600_000)
  DRIFT_CHECK_INTERVAL_MS: number = 5000;

  /**
   * A registry event further than this past the highest revision known to be real (snapshot, registry
   * answer) waits for the registry to confirm it, and is rejected (forged?) if it has not reached it.
   */
  @IsInt() @Min(1) @Max(1_000_000_000)
  EVENT_REVISION_MAX_AHEAD: number = 1000;

  @IsInt() @Min(1024) @Max(64 * 1024 * 1024)
  BODY_LIMIT_BYTES: number = 16 * 1024 * 1024;

  /**
   * Worker processes (node:cluster) sharing the port; each holds its own NATS connection, routing table
   * and metrics. Unset: the core count in production, 1 elsewhere (1 = no cluster, the process serves).
   */
  @IsOptional() @IsInt() @Min(1) @Max(256)
  ROUTER_WORKERS?: number = undefined;

  get workers(): number {
    return this.ROUTER_WORKERS ?? (this.isProduction ? availableParallelism() : 1);
  }

  get apiKeys(): string[] {
    return (this.ROUTER_API_KEYS ?? '').split(',').map((k) => k.trim()).filter(Boolean);
  }

  /** No key configured: every /v1 call is served without authentication (never in production). */
  get isOpen(): boolean {
    return this.apiKeys.length === 0;
  }
}

export function productionRules(config: LlmRouterConfig): string[] {
  if (config.NODE_ENV !== 'production') return [];
  if (config.isOpen) return ['ROUTER_API_KEYS: required in production (without keys the router would serve anyone); set real keys of at least 16 characters'];
  return config.apiKeys.some((k) => k.length < MIN_PRODUCTION_KEY_LENGTH)
    ? [`ROUTER_API_KEYS: set real keys of at least ${MIN_PRODUCTION_KEY_LENGTH} characters in production`]
    : [];
}

import { IsIn, IsInt, IsOptional, IsString, Matches, Max, Min, MinLength } from 'class-validator';
import { Secret } from '@switchboard/config';
import { ENVIRONMENTS } from '@switchboard/contracts';

/** The development key, documented in the README; refused when NODE_ENV=production. */
export const DEV_API_KEY = 'sk-switchboard-dev';

/** Every variable llm-router reads, validated once at boot. */
export class LlmRouterConfig {
  @IsIn(['development', 'production', 'test'])
  NODE_ENV: string = 'development';

  @IsString()
  HOST: string = '0.0.0.0';

  @IsInt() @Min(0) @Max(65535)
  PORT: number = 8080;

  @IsString()
  NATS_URL: string = 'nats://127.0.0.1:4222';

  @Matches(/^[A-Za-z0-9_-]*$/, { message: 'SUBJECT_PREFIX may hold only letters, digits, "_" and "-"' })
  SUBJECT_PREFIX: string = '';

  /** The environment whose instances this router serves (the table is (environment, model) → instances). */
  @IsIn(ENVIRONMENTS as unknown as string[], { message: `ROUTER_ENVIRONMENT must be one of: ${ENVIRONMENTS.join(', ')}` })
  ROUTER_ENVIRONMENT: string = 'development';

  /** Comma-separated bearer keys clients may use. */
  @Secret() @IsString() @MinLength(8)
  ROUTER_API_KEYS: string = DEV_API_KEY;

  /** JSON file with aliases, fallbacks and per-model strategy/timeouts; reloaded when it changes. */
  @IsOptional() @IsString()
  ROUTER_POLICY_FILE?: string = undefined;

  @IsInt() @Min(100) @Max(600_000)
  DRIFT_CHECK_INTERVAL_MS: number = 5000;

  @IsIn(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
  LOG_LEVEL: string = 'info';

  @IsInt() @Min(1024) @Max(64 * 1024 * 1024)
  BODY_LIMIT_BYTES: number = 16 * 1024 * 1024;

  get apiKeys(): string[] {
    return this.ROUTER_API_KEYS.split(',').map((k) => k.trim()).filter(Boolean);
  }
}

export function productionRules(config: LlmRouterConfig): string[] {
  if (config.NODE_ENV !== 'production') return [];
  return config.apiKeys.some((k) => k === DEV_API_KEY || k.length < 16)
    ? ['ROUTER_API_KEYS: set real keys of at least 16 characters in production']
    : [];
}

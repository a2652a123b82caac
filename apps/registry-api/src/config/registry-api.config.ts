import { IsBoolean, IsInt, IsOptional, IsString, Matches, Max, Min, MinLength } from 'class-validator';
import { IsEndpointAllowlist } from '@switchboard/contracts';
import { BooleanFromEnv, RedisEnv, Secret } from '@switchboard/config';

/** Development defaults, documented in the README; refused when NODE_ENV=production. */
export const DEV_REGISTRY_TOKEN = 'dev-registry-token';
export const DEV_ADMIN_TOKEN = 'dev-admin-token';

/** Every variable registry-api reads, validated once at boot. */
export class RegistryApiConfig extends RedisEnv {
  override PORT: number = 3013;

  @Secret()
  @Matches(/^postgres(ql)?:\/\//, { message: 'DATABASE_URL must be a postgres:// URL' })
  DATABASE_URL: string = 'postgres://postgres@127.0.0.1:5432/switchboard';

  @IsInt() @Min(1) @Max(200)
  DATABASE_POOL_SIZE: number = 10;

  /** Create the database if it does not exist (convenient in development; set false where the role may not CREATE DATABASE). */
  @BooleanFromEnv() @IsBoolean()
  DATABASE_CREATE_IF_MISSING: boolean = true;

  @Secret() @IsString() @MinLength(8)
  REGISTRY_TOKEN: string = DEV_REGISTRY_TOKEN;

  @Secret() @IsString() @MinLength(8)
  ADMIN_TOKEN: string = DEV_ADMIN_TOKEN;

  /** Heartbeats are coalesced per instance and written in one statement this often. */
  @IsInt() @Min(10) @Max(10_000)
  HEARTBEAT_FLUSH_INTERVAL_MS: number = 200;

  @IsInt() @Min(10) @Max(50_000)
  HEARTBEAT_MAX_BATCH: number = 5000;

  /**
   * Instances whose heartbeat may wait for a write at once. While PostgreSQL is down nothing drains,
   * so heartbeats of further instances (unknown ids included) are shed and counted, not held.
   */
  @IsInt() @Min(10) @Max(1_000_000)
  HEARTBEAT_MAX_PENDING: number = 50_000;

  /** Safety-net sweep of the outbox; events normally leave right after their commit. */
  @IsInt() @Min(50) @Max(60_000)
  OUTBOX_SWEEP_INTERVAL_MS: number = 1000;

  /** The sweep leaves younger rows to the writer's own publish, to avoid needless duplicates. */
  @IsInt() @Min(0) @Max(600_000)
  OUTBOX_SWEEP_MIN_AGE_MS: number = 500;

  @IsInt() @Min(1) @Max(5000)
  OUTBOX_BATCH_SIZE: number = 256;

  /**
   * Group commit: writes per transaction at most (more wait for the next one). Each holds one advisory
   * lock until commit, and PostgreSQL's shared lock table is max_locks_per_transaction × max_connections
   * (6,400 by default) for everyone: hence the cap.
   */
  @IsInt() @Min(1) @Max(1000)
  WRITE_BATCH_MAX: number = 256;

  /** Group commit: batches committing at once (one connection each); 1 serialises every write behind the slowest batch. */
  @IsInt() @Min(1) @Max(50)
  WRITE_BATCHES_IN_FLIGHT: number = 2;

  @IsInt() @Min(1) @Max(24 * 365)
  EVENT_STREAM_MAX_AGE_HOURS: number = 168;

  /**
   * Copies of the REGISTRY stream in a JetStream cluster (at most its size). Unset: 1, and 3 in
   * production. A change is applied to the existing stream in place at start.
   */
  @IsOptional() @IsInt() @Min(1) @Max(5)
  EVENT_STREAM_REPLICAS?: number = undefined;

  @IsInt() @Min(1024) @Max(16 * 1024 * 1024)
  BODY_LIMIT_BYTES: number = 256 * 1024;

  @IsInt() @Min(100) @Max(600_000)
  PROBER_REQUEST_TIMEOUT_MS: number = 30_000;

  /** When set, reads (lists, one instance, discovery, models) need it as X-Registry-Token, or the write or admin token. */
  @IsOptional() @Secret() @IsString() @MinLength(8)
  REGISTRY_READ_TOKEN?: string = undefined;

  /** Optional allowlist of registrable endpoints (CIDRs, hosts, *.suffix patterns, optional ports); unset: any. */
  @IsOptional() @IsEndpointAllowlist()
  REGISTRY_ALLOWED_ENDPOINTS?: string = undefined;

  /** Floor on a registration's healthCheck.intervalMs, so the prober cannot be made to hammer an address. */
  @IsInt() @Min(100) @Max(3_600_000)
  HEALTH_CHECK_MIN_INTERVAL_MS: number = 1000;

  /** The discovery cache (cache-aside; cache-invalidator keeps it coherent). Off: every read goes to PostgreSQL. */
  @BooleanFromEnv() @IsBoolean()
  CACHE_ENABLED: boolean = true;

  /** A safety net only: entries are replaced on every event. */
  @IsInt() @Min(1) @Max(86_400)
  CACHE_TTL_SECONDS: number = 120;

  /** A slower Redis command fails and the read goes to PostgreSQL, so it is short. */
  @IsInt() @Min(10) @Max(10_000)
  override REDIS_COMMAND_TIMEOUT_MS: number = 100;

  /** The built console (index.html and assets); unset: dist/apps/console beside this app's build. */
  @IsOptional() @IsString()
  CONSOLE_DIR?: string = undefined;

  /** Live-feed clients at once; more are answered 503 CONSOLE_BUSY. */
  @IsInt() @Min(1) @Max(10_000)
  CONSOLE_MAX_CLIENTS: number = 100;

  /** Messages a slow feed client may be behind before it is sent `resync` and disconnected. */
  @IsInt() @Min(1) @Max(100_000)
  CONSOLE_CLIENT_QUEUE_MAX: number = 1000;

  /** Routers whose /metrics feed the console's panels (comma-separated base URLs; npm start's port). */
  @IsString()
  CONSOLE_ROUTER_URLS: string = 'http://127.0.0.1:8080';

  /** Health-probers whose /metrics feed the self-preservation banner. */
  @IsString()
  CONSOLE_PROBER_URLS: string = 'http://127.0.0.1:3014';

  /** How often those are scraped, only while a console is connected. */
  @IsInt() @Min(500) @Max(60_000)
  CONSOLE_SCRAPE_INTERVAL_MS: number = 2000;

  get eventStreamReplicas(): number {
    return this.EVENT_STREAM_REPLICAS ?? (this.isProduction ? 3 : 1);
  }
}

/** Rules across variables, applied after each variable is valid on its own. */
export function productionRules(config: RegistryApiConfig): string[] {
  if (config.NODE_ENV !== 'production') return [];
  const problems: string[] = [];
  if (config.REGISTRY_TOKEN === DEV_REGISTRY_TOKEN || config.REGISTRY_TOKEN.length < 16) {
    problems.push('REGISTRY_TOKEN: set a real token of at least 16 characters in production');
  }
  if (config.ADMIN_TOKEN === DEV_ADMIN_TOKEN || config.ADMIN_TOKEN.length < 16) {
    problems.push('ADMIN_TOKEN: set a real token of at least 16 characters in production');
  }
  if (config.ADMIN_TOKEN === config.REGISTRY_TOKEN) {
    problems.push('ADMIN_TOKEN: must differ from REGISTRY_TOKEN');
  }
  return problems;
}

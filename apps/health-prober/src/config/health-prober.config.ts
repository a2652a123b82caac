import { IsBoolean, IsInt, IsNumber, IsString, Matches, Max, Min, MinLength } from 'class-validator';
import { BooleanFromEnv, IsOneOf, NatsEnv, Secret } from '@switchboard/config';
import { ENVIRONMENTS } from '@switchboard/contracts';

/** registry-api's development write token, documented in the README; refused when NODE_ENV=production. */
export const DEV_REGISTRY_TOKEN = 'dev-registry-token';

/** Every variable health-prober reads, validated once at boot. Check defaults apply unless an instance overrides them. */
export class HealthProberConfig extends NatsEnv {
  override PORT: number = 3014;

  /** registry-api, where each prober replica registers itself (replicas find each other there). */
  @Matches(/^https?:\/\//, { message: 'REGISTRY_URL must be an http(s) URL' })
  REGISTRY_URL: string = 'http://127.0.0.1:3013';

  @Secret() @IsString() @MinLength(8)
  REGISTRY_TOKEN: string = DEV_REGISTRY_TOKEN;

  /** The environment this replica registers itself in; it probes instances of every environment. */
  @IsOneOf(ENVIRONMENTS)
  PROBER_ENVIRONMENT: string = 'development';

  /** Host other replicas and the registry reach this replica on (its own /health is probed too). */
  @IsString() @MinLength(1)
  ADVERTISE_HOST: string = '127.0.0.1';

  @IsInt() @Min(100) @Max(3_600_000)
  CHECK_INTERVAL_MS: number = 10_000;

  /** Each check is scheduled at interval × (1 ± jitter), so checks don't march in step. */
  @IsNumber() @Min(0) @Max(0.5)
  CHECK_JITTER: number = 0.1;

  @IsInt() @Min(50) @Max(60_000)
  CHECK_TIMEOUT_MS: number = 2000;

  @IsInt() @Min(1) @Max(20)
  UNHEALTHY_THRESHOLD: number = 3;

  @IsInt() @Min(1) @Max(20)
  HEALTHY_THRESHOLD: number = 2;

  @IsInt() @Min(1) @Max(60_000)
  DEGRADED_LATENCY_MS: number = 1000;

  /** Silence after an instance's last heartbeat before it is unhealthy (instances that heartbeat). */
  @IsInt() @Min(1000) @Max(86_400_000)
  HEARTBEAT_TTL_MS: number = 30_000;

  /** Failing (or silent) this long: offline. */
  @IsInt() @Min(1000) @Max(7 * 86_400_000)
  OFFLINE_AFTER_MS: number = 120_000;

  /** Failing (or silent) this long: deregistered (pruning of inactive instances). */
  @IsInt() @Min(10_000) @Max(90 * 86_400_000)
  PRUNE_AFTER_MS: number = 86_400_000;

  @IsInt() @Min(1) @Max(10_000)
  MAX_CONCURRENT_PROBES: number = 256;

  /** Self-preservation: this share of an environment failing at once is taken to be our own network. */
  @IsNumber() @Min(0.1) @Max(1)
  MASS_FAILURE_THRESHOLD: number = 0.6;

  /** …but only among at least this many instances (a small fleet can really lose most of itself). */
  @IsInt() @Min(1) @Max(100_000)
  MASS_FAILURE_MIN_INSTANCES: number = 5;

  /**
   * Only failures that began within this window count towards a mass failure (a sudden wave); an
   * instance dead for longer is judged on its own. Keep it above UNHEALTHY_THRESHOLD × CHECK_INTERVAL_MS.
   */
  @IsInt() @Min(1000) @Max(86_400_000)
  MASS_FAILURE_WINDOW_MS: number = 60_000;

  /** A self-preservation hold ends after this long; the held transitions are then applied (the failures are real). */
  @IsInt() @Min(1000) @Max(86_400_000)
  MASS_FAILURE_MAX_HOLD_MS: number = 300_000;

  /** Replicas heartbeat this often; one silent for 3 intervals is dead and its share is taken over. */
  @IsInt() @Min(100) @Max(60_000)
  MEMBER_HEARTBEAT_INTERVAL_MS: number = 1000;

  @BooleanFromEnv() @IsBoolean()
  SELF_REGISTER: boolean = true;

  @IsInt() @Min(100) @Max(600_000)
  DRIFT_CHECK_INTERVAL_MS: number = 5000;

  /**
   * A registry event further than this past the highest revision known to be real (snapshot, registry
   * answer) waits for the registry to confirm it, and is rejected (forged?) if it has not reached it.
   */
  @IsInt() @Min(1) @Max(1_000_000_000)
  EVENT_REVISION_MAX_AHEAD: number = 1000;

  /**
   * The shortest check interval this prober honours, whatever a registration asks for: registrations
   * made before registry-api had its own floor must not make it hammer a host.
   */
  @IsInt() @Min(1) @Max(3_600_000)
  PROBE_MIN_INTERVAL_MS: number = 1000;

  override crossFieldProblems(): string[] {
    const problems = super.crossFieldProblems();
    if (this.isProduction && (this.REGISTRY_TOKEN === DEV_REGISTRY_TOKEN || this.REGISTRY_TOKEN.length < 16)) {
      problems.push('REGISTRY_TOKEN: set registry-api\'s real write token (16+ characters) in production');
    }
    return problems;
  }
}

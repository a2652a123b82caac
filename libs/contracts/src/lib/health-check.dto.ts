import { ApiPropertyOptional } from '@nestjs/swagger';
import { IsBoolean, IsInt, IsOptional, IsString, Matches, Max, MaxLength, Min } from 'class-validator';
import { HEALTH_STATUSES, HealthStatus } from './status';
import { SUBJECT_TOKEN_PATTERN } from './subjects';
import { IsOneOf } from './validators.util';

/** Per-instance overrides of the prober's defaults, given at registration (`healthCheck`). */
export class HealthCheckSettingsDto {
  @ApiPropertyOptional({ description: 'false: no active checks (heartbeat TTL only)' })
  @IsOptional() @IsBoolean()
  enabled?: boolean;

  @ApiPropertyOptional({ example: 10000 })
  @IsOptional() @IsInt() @Min(100) @Max(3_600_000)
  intervalMs?: number;

  @ApiPropertyOptional({ example: 2000 })
  @IsOptional() @IsInt() @Min(50) @Max(60_000)
  timeoutMs?: number;

  @ApiPropertyOptional({ example: 3, description: 'consecutive failures before unhealthy' })
  @IsOptional() @IsInt() @Min(1) @Max(20)
  unhealthyThreshold?: number;

  @ApiPropertyOptional({ example: 2, description: 'consecutive successes before healthy again' })
  @IsOptional() @IsInt() @Min(1) @Max(20)
  healthyThreshold?: number;

  @ApiPropertyOptional({ example: 1000, description: 'a check slower than this counts as degraded' })
  @IsOptional() @IsInt() @Min(1) @Max(60_000)
  degradedLatencyMs?: number;

  @ApiPropertyOptional({ example: 30000, description: 'silence after the last heartbeat before unhealthy' })
  @IsOptional() @IsInt() @Min(1000) @Max(86_400_000)
  heartbeatTtlMs?: number;
}

/** `registry.cmd.reportHealth`: the prober's verdict; registry-api applies it and publishes statusChanged. */
export class ReportHealthDto {
  @Matches(SUBJECT_TOKEN_PATTERN, { message: 'serviceId must be 1-128 characters of letters, digits, "_" or "-"' })
  serviceId!: string;

  @IsOneOf(HEALTH_STATUSES)
  status!: HealthStatus;

  @IsOptional() @IsString() @MaxLength(512)
  reason?: string;
}

/** `registry.cmd.deregister`: pruning of an instance silent for too long. */
export class DeregisterCommandDto {
  @Matches(SUBJECT_TOKEN_PATTERN, { message: 'serviceId must be 1-128 characters of letters, digits, "_" or "-"' })
  serviceId!: string;

  @IsOptional() @IsString() @MaxLength(512)
  reason?: string;
}

/** Reply of registry commands. */
export type CommandReply<T = Record<string, unknown>> = ({ ok: true } & T) | { ok: false; error: { code: string; message: string } };

/** Reply of `prober.cmd.runChecks` (and body of `POST …/health-checks`). */
export interface HealthCheckRoundSummary {
  checked: number;
  healthy: number;
  degraded: number;
  unhealthy: number;
  tookMs: number;
}

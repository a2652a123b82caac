import { Type } from 'class-transformer';
import { IsInt, IsObject, IsOptional, IsString, Max, Min, ValidateNested } from 'class-validator';
import { IsOneOf } from '@switchboard/config';

export const STRATEGIES = ['p2c', 'round-robin', 'least-outstanding', 'affinity'] as const;
export type Strategy = (typeof STRATEGIES)[number];

export class TimeoutsPolicy {
  /** TCP connect to the backend. */
  @IsOptional() @IsInt() @Min(1) @Max(600_000) connectMs?: number;
  /** Until the first byte of the answer (the first token when streaming). */
  @IsOptional() @IsInt() @Min(1) @Max(3_600_000) firstTokenMs?: number;
  /** The whole request, streaming included. */
  @IsOptional() @IsInt() @Min(1) @Max(24 * 3_600_000) totalMs?: number;
}

export class ModelPolicy {
  @IsOptional() @IsOneOf(STRATEGIES) strategy?: Strategy;
  /** Session affinity: the header whose value picks the instance (else the body's `user`). */
  @IsOptional() @IsString() affinityHeader?: string;
  @IsOptional() @IsObject() @ValidateNested() @Type(() => TimeoutsPolicy) timeouts?: TimeoutsPolicy;
  /** Attempts on different instances before giving up (retries only before the first byte). */
  @IsOptional() @IsInt() @Min(1) @Max(10) maxAttempts?: number;
  /** Consecutive failures that eject an instance. */
  @IsOptional() @IsInt() @Min(1) @Max(100) ejectAfterFailures?: number;
  /** First ejection's cooldown; doubles on each repeat. */
  @IsOptional() @IsInt() @Min(10) @Max(3_600_000) ejectBaseMs?: number;
}

/** The policy file (`ROUTER_POLICY_FILE`), validated on every (re)load; a bad file keeps the last good one. */
export class RoutingPolicyFile {
  @IsOptional() @IsObject() @ValidateNested() @Type(() => ModelPolicy) defaults?: ModelPolicy;
  /** Per model; keys are model names as clients send them, after alias resolution. */
  @IsOptional() @IsObject() models?: Record<string, ModelPolicy>;
  /** Logical name → model served in the registry. */
  @IsOptional() @IsObject() aliases?: Record<string, string>;
  /** Model → models to try, in order, when it has no routable instance or every attempt failed. */
  @IsOptional() @IsObject() fallbacks?: Record<string, string[]>;
}

export interface ResolvedPolicy {
  strategy: Strategy;
  affinityHeader: string;
  connectMs: number;
  firstTokenMs: number;
  totalMs: number;
  maxAttempts: number;
  ejectAfterFailures: number;
  ejectBaseMs: number;
}

export const BUILTIN_POLICY: ResolvedPolicy = {
  strategy: 'p2c',
  affinityHeader: 'x-session-id',
  connectMs: 2000,
  firstTokenMs: 60_000,
  totalMs: 600_000,
  maxAttempts: 3,
  ejectAfterFailures: 3,
  ejectBaseMs: 5000,
};

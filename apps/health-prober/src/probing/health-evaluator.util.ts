import type { HealthStatus } from '@switchboard/contracts';

/** One check's result: answered fine, answered but slow or self-reported degraded, or failed. */
export type ProbeOutcome = 'pass' | 'warn' | 'fail';

/** Streaks of one instance, as this replica has observed them. */
export interface CheckState {
  passes: number;
  warns: number;
  failures: number;
  /** When the current failure streak began. */
  failingSince?: number;
  lastError?: string;
}

export interface Thresholds {
  unhealthyThreshold: number;
  healthyThreshold: number;
  offlineAfterMs: number;
}

export function newCheckState(): CheckState {
  return { passes: 0, warns: 0, failures: 0 };
}

export function record(state: CheckState, outcome: ProbeOutcome, now: number, error?: string): void {
  if (outcome === 'fail') {
    if (state.failures === 0) state.failingSince = now;
    state.failures++;
    state.passes = 0;
    state.warns = 0;
    state.lastError = error;
    return;
  }
  state.failures = 0;
  state.failingSince = undefined;
  if (outcome === 'pass') {
    state.passes++;
    state.warns = 0;
  } else {
    state.warns++;
    state.passes = 0;
  }
}

/**
 * What the checks say the health is, once a streak is long enough (Consul's and Kubernetes'
 * thresholds): `undefined` while undecided, so one lost probe never flaps an instance.
 */
export function probeVerdict(state: CheckState, current: HealthStatus, t: Thresholds, now: number): HealthStatus | undefined {
  if (state.failures >= t.unhealthyThreshold) {
    const long = state.failingSince !== undefined && now - state.failingSince >= t.offlineAfterMs;
    return long || current === 'offline' ? 'offline' : 'unhealthy';
  }
  if (state.passes >= t.healthyThreshold) return 'healthy';
  if (state.warns >= t.healthyThreshold) return 'degraded';
  return undefined;
}

/** Heartbeat expiry, for instances that heartbeat: silent past the TTL is unhealthy, longer is offline. */
export function heartbeatVerdict(lastHeartbeatAt: number | undefined, ttlMs: number, offlineAfterMs: number, now: number): HealthStatus | undefined {
  if (lastHeartbeatAt === undefined) return undefined;
  const silent = now - lastHeartbeatAt;
  if (silent > Math.max(ttlMs, offlineAfterMs)) return 'offline';
  if (silent > ttlMs) return 'unhealthy';
  return undefined;
}

const SEVERITY: Record<HealthStatus, number> = { healthy: 0, degraded: 1, unhealthy: 2, offline: 3 };

/** The worse of two verdicts (an expired heartbeat is not cured by a passing check, and vice versa). */
export function worst(a: HealthStatus | undefined, b: HealthStatus | undefined): HealthStatus | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return SEVERITY[a] >= SEVERITY[b] ? a : b;
}

export function isDowngrade(from: HealthStatus, to: HealthStatus): boolean {
  return SEVERITY[to] > SEVERITY[from];
}

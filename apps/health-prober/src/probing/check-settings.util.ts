import type { HealthCheckSettings } from '@switchboard/contracts';
import type { HealthProberConfig } from '../config/health-prober.config';
import type { Thresholds } from './health-evaluator.util';

/** One instance's effective check settings: its registration's overrides over the prober's defaults. */
export interface CheckSettings extends Thresholds {
  enabled: boolean;
  intervalMs: number;
  timeoutMs: number;
  degradedLatencyMs: number;
  heartbeatTtlMs: number;
}

export type CheckDefaults = Pick<
  HealthProberConfig,
  'CHECK_INTERVAL_MS' | 'PROBE_MIN_INTERVAL_MS' | 'CHECK_TIMEOUT_MS' | 'UNHEALTHY_THRESHOLD' | 'HEALTHY_THRESHOLD' | 'DEGRADED_LATENCY_MS' | 'HEARTBEAT_TTL_MS' | 'OFFLINE_AFTER_MS'
>;

export function checkSettings(o: HealthCheckSettings, config: CheckDefaults): CheckSettings {
  return {
    enabled: o.enabled ?? true,
    // The prober's own floor: registrations stored before registry-api enforced one may ask for 100 ms.
    intervalMs: Math.max(o.intervalMs ?? config.CHECK_INTERVAL_MS, config.PROBE_MIN_INTERVAL_MS),
    timeoutMs: o.timeoutMs ?? config.CHECK_TIMEOUT_MS,
    unhealthyThreshold: o.unhealthyThreshold ?? config.UNHEALTHY_THRESHOLD,
    healthyThreshold: o.healthyThreshold ?? config.HEALTHY_THRESHOLD,
    degradedLatencyMs: o.degradedLatencyMs ?? config.DEGRADED_LATENCY_MS,
    heartbeatTtlMs: o.heartbeatTtlMs ?? config.HEARTBEAT_TTL_MS,
    offlineAfterMs: config.OFFLINE_AFTER_MS,
  };
}

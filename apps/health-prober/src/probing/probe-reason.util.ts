import type { HealthStatus } from '@switchboard/contracts';
import type { CheckSettings } from './check-settings.util';
import type { CheckState } from './health-evaluator.util';
import type { ProbeResult } from './probe.util';

/** What one check says, as the prober may repeat it to registry-api (and so to every reader of the registry). */
export function checkReason(result: ProbeResult): string {
  return result.detail;
}

/** The reason sent with a transition the checks decided. */
export function transitionReason(target: HealthStatus, state: CheckState, settings: Pick<CheckSettings, 'healthyThreshold'>): string {
  if (target === 'healthy') return `${settings.healthyThreshold} consecutive passing checks`;
  if (target === 'degraded') return `${settings.healthyThreshold} consecutive slow or degraded answers`;
  return `${state.failures} consecutive failed checks: ${state.lastError ?? 'unknown error'}`;
}

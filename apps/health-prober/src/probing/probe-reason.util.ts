import type { HealthStatus } from '@switchboard/contracts';
import type { CheckSettings } from './check-settings.util';
import type { CheckState } from './health-evaluator.util';
import type { ProbeResult } from './probe.util';

/** What registry-api (and so every reader of the registry) is told when an instance gave no HTTP answer. */
export const NO_HTTP_RESPONSE = 'no HTTP response';

/**
 * What one check says, as the prober may repeat it to registry-api, where the statusChanged event and
 * the REST API show it to whoever registered the address. Refused, timed out, unresolvable and reset
 * all read the same, or the prober would be a port scanner for registrants; the detail goes to the
 * prober's own log. An HTTP answer may say what it was (`HTTP 503`).
 */
export function checkReason(result: ProbeResult): string {
  return result.responded ? result.detail : NO_HTTP_RESPONSE;
}

/** The reason sent with a transition the checks decided. */
export function transitionReason(target: HealthStatus, state: CheckState, settings: Pick<CheckSettings, 'healthyThreshold'>): string {
  if (target === 'healthy') return `${settings.healthyThreshold} consecutive passing checks`;
  if (target === 'degraded') return `${settings.healthyThreshold} consecutive slow or degraded answers`;
  return `${state.failures} consecutive failed checks: ${state.lastError ?? 'unknown error'}`;
}

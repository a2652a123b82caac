/** Health as judged by the prober, heartbeat expiry, or `PUT …/status`. */
export const HEALTH_STATUSES = ['healthy', 'degraded', 'unhealthy', 'offline'] as const;
export type HealthStatus = (typeof HEALTH_STATUSES)[number];

/** Operator intent: the model registry's enable/disable, plus draining. */
export const ADMIN_STATES = ['enabled', 'disabled', 'draining'] as const;
export type AdminState = (typeof ADMIN_STATES)[number];

export const ENVIRONMENTS = ['production', 'staging', 'development'] as const;
export type Environment = (typeof ENVIRONMENTS)[number];

/** Routable = enabled and healthy or degraded (healthy preferred). */
export function isRoutable(instance: { status: HealthStatus; adminState: AdminState }): boolean {
  return instance.adminState === 'enabled' && (instance.status === 'healthy' || instance.status === 'degraded');
}

/**
 * The model view's single status word, as the model registry shows it:
 * `disabled`/`draining` when an operator says so, `ready` when healthy, otherwise the health.
 */
export type ModelStatus = 'ready' | 'degraded' | 'unhealthy' | 'offline' | 'disabled' | 'draining';
export const MODEL_STATUSES: readonly ModelStatus[] = ['ready', 'degraded', 'unhealthy', 'offline', 'disabled', 'draining'];

export function modelStatusOf(instance: { status: HealthStatus; adminState: AdminState }): ModelStatus {
  if (instance.adminState !== 'enabled') return instance.adminState;
  return instance.status === 'healthy' ? 'ready' : instance.status;
}

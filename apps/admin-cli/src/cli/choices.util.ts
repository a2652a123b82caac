import type { AdminState, Environment, HealthStatus, ModelStatus } from '@switchboard/contracts';

/**
 * The contracts' word lists, restated so that commands that never touch NATS load no class-validator
 * or Swagger (start-up in tens of milliseconds). choices.util.spec.ts checks they equal the contracts'.
 */
export const ENVIRONMENT_CHOICES: readonly Environment[] = ['development', 'staging', 'production'];
export const MODEL_STATUS_CHOICES: readonly ModelStatus[] = ['ready', 'degraded', 'unhealthy', 'offline', 'disabled', 'draining'];
export const HEALTH_STATUS_CHOICES: readonly HealthStatus[] = ['healthy', 'degraded', 'unhealthy', 'offline'];
export const ADMIN_STATE_CHOICES: readonly AdminState[] = ['enabled', 'disabled', 'draining'];

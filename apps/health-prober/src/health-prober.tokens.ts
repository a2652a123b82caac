/** Injection tokens of health-prober's non-class providers. */
export const HEALTH_PROBER_CONFIG = Symbol('HEALTH_PROBER_CONFIG');

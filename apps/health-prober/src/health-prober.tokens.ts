/** Injection tokens of health-prober's non-class providers. */
export const HEALTH_PROBER_CONFIG = Symbol('HEALTH_PROBER_CONFIG');

/** Milliseconds since the epoch; injected so time-dependent decisions are testable. */
export type ProberClock = () => number;
export const PROBER_CLOCK = Symbol('PROBER_CLOCK');

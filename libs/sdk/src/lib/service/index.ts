export { LoadMeter } from './load-meter';
export type { LoadMeterOptions, MeteredRequest, MeteredResponse, ServiceLoad } from './load-meter';
export type { ExpressMiddleware, FastifyLike, FastifyPlugin, LoadMiddleware, NodeHandler } from './middleware';
export { RegistrationError } from './registration-error';
export type { RegistrationFieldError } from './registration-error';
export { DEFAULT_DRAIN_DEADLINE_MS, DEFAULT_DRAIN_PROPAGATION_MS, DEFAULT_HEARTBEAT_TTL_MS, DEFAULT_VERIFY_INTERVAL_MS, register } from './registration';
export type { DrainOptions, DrainResult, HealthCheckOptions, RegisterOptions, RegistrationBody, RetryOptions, ServiceRegistration, SignalOptions } from './registration';

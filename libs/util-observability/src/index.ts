export * from './lib/observability.module';
export * from './lib/log-redaction.util';
export { Counter, Gauge, Histogram, register as metricsRegistry } from 'prom-client';
export * from './lib/log-throttle.util';

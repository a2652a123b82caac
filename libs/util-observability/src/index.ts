export * from './lib/observability.module';
export * from './lib/log-redaction.util';
export { Counter, Gauge, Histogram, register as metricsRegistry } from 'prom-client';

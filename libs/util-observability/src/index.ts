export * from './lib/observability.module';
export { Counter, Gauge, Histogram, register as metricsRegistry } from 'prom-client';

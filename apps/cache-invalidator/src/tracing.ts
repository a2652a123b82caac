// First import of main.ts: OpenTelemetry must patch http, undici, pg, ioredis and pino before they load.
// Without OTEL_EXPORTER_OTLP_ENDPOINT nothing more is loaded.
import { startTracing } from '@switchboard/observability/tracing';

startTracing('cache-invalidator');

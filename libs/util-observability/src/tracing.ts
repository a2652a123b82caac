/**
 * `@switchboard/observability/tracing`: OpenTelemetry for one app process. Each app's `src/tracing.ts`
 * calls {@link startTracing} and is the first import of its `main.ts`, so the SDK patches http, undici,
 * pg, ioredis and pino before anything loads them. This file imports nothing else on purpose: without
 * an OTLP endpoint the SDK is never loaded, and tests, benchmarks and `npm start` pay nothing.
 */
import { markTracingStarted, tracingStarted, tracingWanted } from './lib/tracing/tracing-env.util';

export { tracingStarted, tracingWanted } from './lib/tracing/tracing-env.util';

/**
 * Starts the OpenTelemetry Node SDK when the standard `OTEL_*` variables ask for it (an OTLP endpoint
 * set, `OTEL_SDK_DISABLED` not true); `OTEL_SERVICE_NAME` defaults to `serviceName`. Returns whether it
 * started. Spans are flushed by the graceful shutdown (`exitOnShutdownSignals` in util-config).
 */
export function startTracing(serviceName: string, env: NodeJS.ProcessEnv = process.env): boolean {
  if (tracingStarted()) return true;
  if (!tracingWanted(env)) return false;
  // Required only now, synchronously (a dynamic import() would let Nest load first, unpatched).
  const sdk = require('./lib/tracing/otel-sdk.util') as typeof import('./lib/tracing/otel-sdk.util');
  sdk.startOtelSdk(serviceName, env);
  markTracingStarted();
  return true;
}

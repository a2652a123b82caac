import { HttpInstrumentation } from '@opentelemetry/instrumentation-http';
import { IORedisInstrumentation } from '@opentelemetry/instrumentation-ioredis';
import { PgInstrumentation } from '@opentelemetry/instrumentation-pg';
import { PinoInstrumentation } from '@opentelemetry/instrumentation-pino';
import { UndiciInstrumentation } from '@opentelemetry/instrumentation-undici';
import { NodeSDK } from '@opentelemetry/sdk-node';
import { onShutdownComplete } from '@switchboard/config';

/** Probes and scrapes, not requests: a span for each would bury the traces people look for. */
const UNTRACED_PATHS = new Set(['/health', '/metrics']);

function untraced(url: string | undefined): boolean {
  if (!url) return false;
  const q = url.indexOf('?');
  return UNTRACED_PATHS.has(q < 0 ? url : url.slice(0, q));
}

/**
 * Loaded only when tracing is wanted (see `startTracing`). Exporter, protocol, sampler, resource and
 * propagators come from the standard `OTEL_*` variables, read by the SDK itself. Metrics stay on
 * Prometheus `/metrics` and logs on stdout (with trace ids), so the OTLP metric and log exporters are
 * off unless `OTEL_METRICS_EXPORTER` / `OTEL_LOGS_EXPORTER` name one.
 */
export function startOtelSdk(serviceName: string, env: NodeJS.ProcessEnv): NodeSDK {
  env['OTEL_METRICS_EXPORTER'] ??= 'none';
  env['OTEL_LOGS_EXPORTER'] ??= 'none';
  const sdk = new NodeSDK({
    serviceName: env['OTEL_SERVICE_NAME']?.trim() || serviceName,
    instrumentations: [
      new HttpInstrumentation({
        ignoreIncomingRequestHook: (req) => untraced(req.url),
        ignoreOutgoingRequestHook: (req) => untraced(req.path ?? undefined),
      }),
      new UndiciInstrumentation(),
      new PgInstrumentation({ requireParentSpan: true }),
      new IORedisInstrumentation({ requireParentSpan: true }),
      new PinoInstrumentation(),
    ],
  });
  sdk.start();
  onShutdownComplete('flush spans', () => sdk.shutdown());
  return sdk;
}

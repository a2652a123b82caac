import { propagation } from '@opentelemetry/api';
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
 * The router forwards its client's `traceparent` so a backend sees the trace even without OpenTelemetry.
 * With it, the instrumentation adds the upstream span's own context next; the caller's copy would make
 * two values. This runs before that injection and removes the caller's.
 */
function dropCallerTraceHeaders(request: { headers: string | (string | string[])[] }): void {
  const fields = new Set(propagation.fields().map((f) => f.toLowerCase()));
  if (!fields.size) return;
  if (Array.isArray(request.headers)) {
    const kept: (string | string[])[] = [];
    for (let i = 0; i < request.headers.length; i += 2) {
      if (!fields.has(String(request.headers[i]).toLowerCase())) kept.push(request.headers[i], request.headers[i + 1]);
    }
    request.headers.splice(0, request.headers.length, ...kept);
  } else if (typeof request.headers === 'string') {
    request.headers = request.headers
      .split('\r\n')
      .filter((line) => !fields.has(line.slice(0, line.indexOf(':')).trim().toLowerCase()))
      .join('\r\n');
  }
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
      // Client calls (HTTP, PostgreSQL, Redis) only inside a trace: the prober's checks, the outbox sweep
      // and the heartbeat flush run on timers, and would each be a one-span trace many times a second.
      new HttpInstrumentation({
        ignoreIncomingRequestHook: (req) => untraced(req.url),
        ignoreOutgoingRequestHook: (req) => untraced(req.path ?? undefined),
        requireParentforOutgoingSpans: true,
      }),
      new UndiciInstrumentation({ requireParentforSpans: true, requestHook: (_span, request) => dropCallerTraceHeaders(request) }),
      new PgInstrumentation({ requireParentSpan: true }),
      new IORedisInstrumentation({ requireParentSpan: true }),
      new PinoInstrumentation(),
    ],
  });
  sdk.start();
  onShutdownComplete('flush spans', () => sdk.shutdown());
  return sdk;
}

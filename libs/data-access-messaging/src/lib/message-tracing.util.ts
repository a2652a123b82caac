import {
  Attributes,
  context,
  Context,
  isSpanContextValid,
  propagation,
  ROOT_CONTEXT,
  Span,
  SpanKind,
  SpanStatusCode,
  TextMapGetter,
  trace,
} from '@opentelemetry/api';
import type { MsgHdrs } from 'nats';

/**
 * OpenTelemetry spans for NATS, after the messaging semantic conventions, with the W3C trace context
 * (`traceparent`, `tracestate`) in message headers. Only `@opentelemetry/api` is used: without a
 * registered SDK (no OTLP endpoint) every call here is a no-op, and a message gains no header.
 */
const tracer = trace.getTracer('@switchboard/messaging');

const headerGetter: TextMapGetter<MsgHdrs> = {
  keys: (headers) => headers.keys(),
  get: (headers, key) => headers.get(key) || undefined,
};

const recordGetter: TextMapGetter<Record<string, string>> = {
  keys: (carrier) => Object.keys(carrier),
  get: (carrier, key) => carrier[key],
};

export type MessagingOperation = 'publish' | 'request' | 'process';

const OPERATION_TYPE: Record<MessagingOperation, string> = { publish: 'send', request: 'send', process: 'process' };

/** The conventions' attributes of one NATS operation on `subject`. */
export function messagingAttributes(operation: MessagingOperation, subject: string, extra?: Attributes): Attributes {
  return {
    'messaging.system': 'nats',
    'messaging.operation.name': operation,
    'messaging.operation.type': OPERATION_TYPE[operation],
    'messaging.destination.name': subject,
    ...extra,
  };
}

/** The trace context a message carries, or undefined when it carries none (or no SDK is registered). */
export function contextOfMessage(headers: MsgHdrs | undefined): Context | undefined {
  if (!headers) return undefined;
  const extracted = propagation.extract(ROOT_CONTEXT, headers, headerGetter);
  const parent = trace.getSpanContext(extracted);
  return parent && isSpanContextValid(parent) ? extracted : undefined;
}

/** The trace context stored with a message to be sent (an outbox row's `traceparent`), or undefined. */
export function contextOfHeaders(headers: Record<string, string> | undefined): Context | undefined {
  if (!headers?.['traceparent']) return undefined;
  const extracted = propagation.extract(ROOT_CONTEXT, headers, recordGetter);
  const parent = trace.getSpanContext(extracted);
  return parent && isSpanContextValid(parent) ? extracted : undefined;
}

/** Whether a span is active here: core publishes are traced only inside a trace (see {@link NatsClient.publish}). */
export function insideTrace(): boolean {
  const span = trace.getActiveSpan();
  return span !== undefined && isSpanContextValid(span.spanContext());
}

/** `headers` with the trace context of `ctx` written over any it had; the input is not changed. */
export function withTraceHeaders(ctx: Context, headers: Record<string, string> | undefined): Record<string, string> {
  const out: Record<string, string> = { ...headers };
  propagation.inject(ctx, out);
  return out;
}

/** Starts a span of `kind` under `parent` (the active context by default); the caller ends it. */
export function startMessagingSpan(name: string, kind: SpanKind, attributes: Attributes, parent: Context = context.active()): { span: Span; ctx: Context } {
  const span = tracer.startSpan(name, { kind, attributes }, parent);
  return { span, ctx: trace.setSpan(parent, span) };
}

/** Ends `span` with an error status when `error` is set. */
export function endSpan(span: Span, error?: unknown): void {
  if (error !== undefined) {
    span.recordException(error instanceof Error ? error : String(error));
    span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) });
  }
  span.end();
}

/**
 * Runs `work` in a new span (active inside it) and ends the span when `work` returns or settles, with
 * an error status if it throws or rejects. What `work` returns or throws passes through unchanged.
 */
export function inSpan<T>(name: string, kind: SpanKind, attributes: Attributes, parent: Context, work: (span: Span) => T): T {
  const { span, ctx } = startMessagingSpan(name, kind, attributes, parent);
  let result: T;
  try {
    result = context.with(ctx, work, undefined, span);
  } catch (error) {
    endSpan(span, error);
    throw error;
  }
  if (result instanceof Promise) {
    result.then(
      () => endSpan(span),
      (error: unknown) => endSpan(span, error),
    );
  } else {
    endSpan(span);
  }
  return result;
}

/**
 * The consumer span of a JetStream message pulled by its own loop (the cache-invalidator's durable
 * consumer): a child of the context in its headers, a new trace when it has none.
 */
export function processStreamMessage<T>(stream: string, msg: { subject: string; headers?: MsgHdrs; data: Uint8Array }, work: (span: Span) => T, extra?: Attributes): T {
  const parent = contextOfMessage(msg.headers) ?? ROOT_CONTEXT;
  const attributes = messagingAttributes('process', msg.subject, { 'messaging.message.body.size': msg.data.length, ...extra });
  return inSpan(`process ${stream}`, SpanKind.CONSUMER, attributes, parent, work);
}

/** Runs `work` in an internal child span when a trace is active here (no span, and no cost, otherwise). */
export function inChildSpan<T>(name: string, attributes: Attributes, work: () => T): T {
  return insideTrace() ? inSpan(name, SpanKind.INTERNAL, attributes, context.active(), work) : work();
}

/** The W3C `traceparent` of the span active here, or undefined outside a trace. */
export function activeTraceparent(): string | undefined {
  const span = trace.getActiveSpan();
  if (!span) return undefined;
  const sc = span.spanContext();
  if (!isSpanContextValid(sc)) return undefined;
  return `00-${sc.traceId}-${sc.spanId}-${(sc.traceFlags & 0xff).toString(16).padStart(2, '0')}`;
}

export { SpanKind };

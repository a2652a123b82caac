export * from './lib/nats.client';
export * from './lib/stream-feed';
export * from './lib/trace-context.util';
export * from './lib/untrusted-message.util';
export type { Msg, Subscription, PubAck } from 'nats';
export { activeTraceparent, contextOfMessage, inChildSpan, inSpan, insideTrace, messagingAttributes, processStreamMessage, SpanKind, withTraceHeaders } from './lib/message-tracing.util';

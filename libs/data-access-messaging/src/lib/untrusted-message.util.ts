import { Counter, metricsRegistry } from '@switchboard/observability';

/**
 * Size limits checked before `JSON.parse`, so the parse cost of a message is bounded by its kind.
 * Heartbeats and commands are a few hundred bytes; an event carries one whole instance, whose
 * registration body may be up to registry-api's BODY_LIMIT_BYTES, so events get the NATS default
 * max_payload (1 MiB): the server would refuse anything larger anyway.
 */
export const MAX_HEARTBEAT_BYTES = 64 * 1024;
export const MAX_COMMAND_BYTES = 64 * 1024;
export const MAX_EVENT_BYTES = 1024 * 1024;

/**
 * Why a message was not handled: the four refusals of the payload itself, and `handler_error` for
 * an exception the handler did not expect (a bug, but one message must not deafen the app).
 */
export type MessageRejectReason = 'too_large' | 'not_utf8' | 'not_json' | 'not_object' | 'invalid' | 'handler_error';

/** Thrown by a handler (or {@link decodeJsonObject}) to refuse a message: counted by reason, logged at most once per interval. */
export class MessageRejected extends Error {
  constructor(
    readonly reason: Exclude<MessageRejectReason, 'handler_error'>,
    message: string,
  ) {
    super(message);
    this.name = 'MessageRejected';
  }
}

/** What {@link NatsClient.subscribe} counts into: a prom-client Counter fits. */
export interface RejectionCounter {
  inc(labels: { subject: string; reason: MessageRejectReason }): void;
}

/** `<prefix>_messages_rejected_total{subject,reason}`, registered once per process; `subject` is the subscription's pattern. */
export function messagesRejectedCounter(prefix: string): Counter<'subject' | 'reason'> {
  const name = `${prefix}_messages_rejected_total`;
  return (
    (metricsRegistry.getSingleMetric(name) as Counter<'subject' | 'reason'> | undefined) ??
    new Counter({
      name,
      help: 'NATS messages not handled, by subscription pattern and reason (too_large, not_utf8, not_json, not_object, invalid, handler_error)',
      labelNames: ['subject', 'reason'],
    })
  );
}

// fatal: a replacement character would let a payload that is not UTF-8 through as something else.
const strictDecoder = new TextDecoder('utf-8', { fatal: true });

/**
 * Decodes an untrusted payload that must be a JSON object: size first (before any work), then
 * strict UTF-8, then JSON. Depth and content are the validators' job (contracts' untrusted-input
 * walk runs inside `parseWith` and `parseRegistryEvent`, iteratively, before class-transformer).
 */
export function decodeJsonObject(data: Uint8Array, maxBytes: number): Record<string, unknown> {
  if (data.length > maxBytes) throw new MessageRejected('too_large', `payload of ${data.length} bytes is larger than ${maxBytes}`);
  let text: string;
  try {
    text = strictDecoder.decode(data);
  } catch {
    throw new MessageRejected('not_utf8', 'payload is not UTF-8');
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new MessageRejected('not_json', 'payload is not JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new MessageRejected('not_object', `payload must be a JSON object, not ${value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value}`);
  }
  return value as Record<string, unknown>;
}

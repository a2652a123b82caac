import { randomBytes } from 'node:crypto';
import { activeTraceparent } from './message-tracing.util';

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

/**
 * The W3C `traceparent` a change's events carry (stored in the outbox row, published as a NATS
 * header). With OpenTelemetry running it is the active span's (the request or command that made the
 * change), so the event's spans join that trace. Without it: a child of the incoming `traceparent`
 * (same trace id, new span id), or a new trace.
 */
export function childTraceparent(incoming?: string | string[]): string {
  const active = activeTraceparent();
  if (active) return active;
  const value = Array.isArray(incoming) ? incoming[0] : incoming;
  const match = value ? TRACEPARENT.exec(value.trim()) : null;
  const traceId = match?.[1] ?? randomBytes(16).toString('hex');
  const flags = match?.[3] ?? '01';
  return `00-${traceId}-${randomBytes(8).toString('hex')}-${flags}`;
}

import { randomBytes } from 'node:crypto';

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

/**
 * W3C trace context: keeps an incoming `traceparent`'s trace id and starts a child span id, or
 * starts a new trace. Carried in NATS headers so a trace spans HTTP → registry-api → NATS → router.
 */
export function childTraceparent(incoming?: string | string[]): string {
  const value = Array.isArray(incoming) ? incoming[0] : incoming;
  const match = value ? TRACEPARENT.exec(value.trim()) : null;
  const traceId = match?.[1] ?? randomBytes(16).toString('hex');
  const flags = match?.[3] ?? '01';
  return `00-${traceId}-${randomBytes(8).toString('hex')}-${flags}`;
}

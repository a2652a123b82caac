import { HeartbeatDto, INFLIGHT_MAX, LOAD_MAX } from './service-instance.dto';
import { parseWith, ParseResult } from './validation.util';

const LOAD_KEYS = new Set(['requestsPerMinute', 'averageLatency', 'errorRate', 'inflight']);

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * The common, valid shape, checked by hand: a strict subset of what HeartbeatDto accepts. It holds
 * only known keys and bounded finite numbers (no string, no nesting), so it is also a subset of what
 * the untrusted-input walk accepts; everything else goes through parseWith, which walks first.
 */
function fastAccepts(body: unknown): boolean {
  if (!isPlainObject(body)) return false;
  for (const key in body) if (key !== 'metadata') return false;
  const metadata = body['metadata'];
  if (metadata === undefined) return true;
  if (!isPlainObject(metadata)) return false;
  for (const key in metadata) {
    if (!LOAD_KEYS.has(key)) return false;
    const value = metadata[key];
    if (value === undefined) continue;
    if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value > LOAD_MAX) return false;
    if (key === 'errorRate' && value > 1) return false;
    if (key === 'inflight' && (!Number.isInteger(value) || value > INFLIGHT_MAX)) return false;
  }
  return true;
}

/**
 * Validates a heartbeat payload with HeartbeatDto's rules. Heartbeats arrive by the tens of
 * thousands per second, so the valid common case is checked by hand; anything else goes through
 * the DTO, which gives the verdict and the field errors.
 */
export function parseHeartbeat(body: unknown): ParseResult<HeartbeatDto> {
  if (fastAccepts(body)) return { ok: true, value: body as HeartbeatDto };
  return parseWith(HeartbeatDto, body);
}

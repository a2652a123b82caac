/** Base of every error the SDK throws on purpose (`instanceof SwitchboardError`). */
export class SwitchboardError extends Error {
  override name = 'SwitchboardError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** Why one attempt of a request failed. */
export type AttemptFailureReason = 'connect' | 'timeout' | 'status' | 'stream';

/** One failed attempt: which instance, and what went wrong (the error code or `HTTP 503`; never the backend's body). */
export interface RequestAttempt {
  serviceId: string;
  /** The instance's base URL. */
  url: string;
  reason: AttemptFailureReason;
  /** HTTP status when `reason` is `status`. */
  status?: number;
  /** `ECONNREFUSED`, `UND_ERR_HEADERS_TIMEOUT`, `timeout`, `HTTP 503`, … */
  code: string;
  /** What the backend asked for in `Retry-After`, in ms. */
  retryAfterMs?: number;
  /** How long the attempt took, ms. */
  durationMs: number;
}

/**
 * The instance answered 4xx (other than 408 and 429): the request itself is wrong, so it was not
 * retried anywhere. `status` and `body` are the backend's; `message` holds the body's message when it
 * has one (`{ error: { message } }` as OpenAI-compatible servers answer, or `{ message }`).
 */
export class BadRequestError extends SwitchboardError {
  override name = 'BadRequestError';
  constructor(
    readonly status: number,
    readonly body: unknown,
    readonly serviceId: string,
    message: string,
  ) {
    super(message);
  }
}

/** Every attempt failed (connect error, timeout, 5xx, 429), or a stream was cut before its first byte each time. */
export class RetriesExhaustedError extends SwitchboardError {
  override name = 'RetriesExhaustedError';
  constructor(
    readonly target: string,
    readonly attempts: readonly RequestAttempt[],
  ) {
    super(`${target}: all ${attempts.length} attempt(s) failed: ${attempts.map((a) => `${a.serviceId} ${a.code}`).join('; ')}`);
  }
}

/**
 * Nothing to send the request to: the target is neither a model nor a service in this environment
 * (`known` false), or none of its instances is routable now (message as the router's 503
 * "model not ready", with their statuses).
 */
export class NoInstanceError extends SwitchboardError {
  override name = 'NoInstanceError';
  constructor(
    readonly target: string,
    readonly environment: string,
    /** Whether the table knows the target at all. */
    readonly known: boolean,
    /** The statuses of its instances (`degraded`, `offline`, `draining`, …) when it is known. */
    readonly statuses: readonly string[] = [],
  ) {
    super(known ? `not ready: ${target} (status: ${statuses.join(', ')})` : `unknown target: no model or service "${target}" in environment ${environment}`);
  }
}

/** A stream failed after its first event had been delivered: too late to retry (the caller saw part of it). */
export class StreamCutError extends SwitchboardError {
  override name = 'StreamCutError';
  constructor(
    readonly serviceId: string,
    cause: unknown,
  ) {
    super(`stream from ${serviceId} cut after it began: ${(cause as Error)?.message ?? String(cause)}`, { cause });
  }
}

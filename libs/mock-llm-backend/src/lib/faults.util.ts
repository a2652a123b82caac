import type { IncomingHttpHeaders } from 'node:http';
import { invalidRequest } from './openai.exception';

export type HealthFault = 'unhealthy' | 'degraded' | 'hang';

export interface MockFaults {
  /** Answer with this HTTP status (400..599) and an OpenAI-shaped error body. */
  status?: number;
  /** Seconds, sent as `Retry-After` with an error status. */
  retryAfter?: number;
  /** Accept the request and never answer. */
  hang?: boolean;
  /** Destroy the socket without any response. */
  drop?: boolean;
  /** Destroy the socket after this many response chunks (non-streaming: after half the body). */
  cutAfterChunks?: number;
  /** Replaces the backend's `latencyMs`. */
  latencyMs?: number;
  /** What `GET /health` answers. */
  health?: HealthFault;
  /** How long a `degraded` health check takes (default 500 ms). */
  healthDelayMs?: number;
  /** Fraction (0..1) of requests that fail, spread evenly by a counter: 0.5 fails every 2nd. */
  failRate?: number;
  /** Apply to the next N requests only, then clear. */
  count?: number;
}

export type FaultAction =
  | { kind: 'drop' }
  | { kind: 'hang' }
  | { kind: 'status'; status: number; retryAfter: number | undefined }
  | { kind: 'cut'; afterChunks: number };

export interface RequestFaultPlan {
  latencyMs: number | undefined;
  action: FaultAction | undefined;
}

export interface HealthFaultPlan {
  mode: HealthFault;
  delayMs: number;
}

export const DEFAULT_HEALTH_DELAY_MS = 500;

/** Per-request faults, so one test request can ask for a failure without touching shared state. */
export const MOCK_FAULT_HEADERS = {
  status: 'x-mock-fault-status',
  retryAfter: 'x-mock-fault-retry-after',
  hang: 'x-mock-fault-hang',
  drop: 'x-mock-fault-drop',
  cutAfterChunks: 'x-mock-fault-cut-after-chunks',
  latencyMs: 'x-mock-fault-latency-ms',
  health: 'x-mock-fault-health',
} as const;

type RequestFaultFields = Pick<MockFaults, 'status' | 'retryAfter' | 'hang' | 'drop' | 'cutAfterChunks' | 'latencyMs'>;

const FAILURE_KEYS = ['status', 'retryAfter', 'hang', 'drop', 'cutAfterChunks'] as const;
const REQUEST_KEYS = [...FAILURE_KEYS, 'latencyMs', 'failRate'] as const;
const HEALTH_MODES: readonly HealthFault[] = ['unhealthy', 'degraded', 'hang'];

export class FaultValidationError extends TypeError {
  override name = 'FaultValidationError';
}

type Check = (value: unknown) => string | undefined;

const integerIn = (min: number, max: number): Check => (v) =>
  typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max ? undefined : `an integer in ${min}..${max}`;
const numberIn = (min: number, max: number): Check => (v) =>
  typeof v === 'number' && Number.isFinite(v) && v >= min && v <= max ? undefined : `a number in ${min}..${max}`;
const boolean: Check = (v) => (typeof v === 'boolean' ? undefined : 'a boolean');

const FAULT_CHECKS: Record<keyof MockFaults, Check> = {
  status: integerIn(400, 599),
  retryAfter: integerIn(0, 86_400),
  hang: boolean,
  drop: boolean,
  cutAfterChunks: integerIn(0, 1_000_000),
  latencyMs: numberIn(0, 3_600_000),
  health: (v) => (HEALTH_MODES.includes(v as HealthFault) ? undefined : `one of ${HEALTH_MODES.join(', ')}`),
  healthDelayMs: numberIn(0, 3_600_000),
  failRate: numberIn(0, 1),
  count: integerIn(1, 1_000_000_000),
};

/** Validates faults from an untrusted source (the admin endpoint, a test); unknown keys are refused so a typo cannot pass silently. */
export function parseFaults(input: unknown): MockFaults {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) throw new FaultValidationError('faults must be a JSON object');
  const faults: MockFaults = {};
  for (const [key, value] of Object.entries(input)) {
    if (!Object.hasOwn(FAULT_CHECKS, key)) {
      throw new FaultValidationError(`unknown fault "${key}" (known: ${Object.keys(FAULT_CHECKS).join(', ')})`);
    }
    if (value === undefined || value === null) continue;
    const expected = FAULT_CHECKS[key as keyof MockFaults](value);
    if (expected !== undefined) throw new FaultValidationError(`fault "${key}" must be ${expected}, got ${JSON.stringify(value)}`);
    (faults as Record<string, unknown>)[key] = value;
  }
  return faults;
}

/** Reads `x-mock-fault-*` headers; undefined when there are none (the common case, kept cheap). */
export function faultsFromHeaders(headers: IncomingHttpHeaders): RequestFaultFields | undefined {
  let fields: RequestFaultFields | undefined;
  const set = <K extends keyof RequestFaultFields>(key: K, value: RequestFaultFields[K]): void => {
    (fields ??= {})[key] = value;
  };
  const status = headers[MOCK_FAULT_HEADERS.status];
  if (status !== undefined) set('status', headerNumber(MOCK_FAULT_HEADERS.status, status, FAULT_CHECKS.status));
  const retryAfter = headers[MOCK_FAULT_HEADERS.retryAfter];
  if (retryAfter !== undefined) set('retryAfter', headerNumber(MOCK_FAULT_HEADERS.retryAfter, retryAfter, FAULT_CHECKS.retryAfter));
  const hang = headers[MOCK_FAULT_HEADERS.hang];
  if (hang !== undefined) set('hang', headerBoolean(MOCK_FAULT_HEADERS.hang, hang));
  const drop = headers[MOCK_FAULT_HEADERS.drop];
  if (drop !== undefined) set('drop', headerBoolean(MOCK_FAULT_HEADERS.drop, drop));
  const cut = headers[MOCK_FAULT_HEADERS.cutAfterChunks];
  if (cut !== undefined) set('cutAfterChunks', headerNumber(MOCK_FAULT_HEADERS.cutAfterChunks, cut, FAULT_CHECKS.cutAfterChunks));
  const latency = headers[MOCK_FAULT_HEADERS.latencyMs];
  if (latency !== undefined) set('latencyMs', headerNumber(MOCK_FAULT_HEADERS.latencyMs, latency, FAULT_CHECKS.latencyMs));
  return fields;
}

export function healthFaultFromHeaders(headers: IncomingHttpHeaders): HealthFault | undefined {
  const value = headers[MOCK_FAULT_HEADERS.health];
  if (value === undefined) return undefined;
  if (typeof value === 'string' && HEALTH_MODES.includes(value as HealthFault)) return value as HealthFault;
  throw invalidRequest(`header ${MOCK_FAULT_HEADERS.health} must be one of ${HEALTH_MODES.join(', ')}`, MOCK_FAULT_HEADERS.health);
}

function headerNumber(header: string, raw: string | string[], check: Check): number {
  const value = typeof raw === 'string' && raw.trim() !== '' ? Number(raw) : Number.NaN;
  const expected = check(value);
  if (expected !== undefined) throw invalidRequest(`header ${header} must be ${expected}, got ${JSON.stringify(raw)}`, header);
  return value;
}

function headerBoolean(header: string, raw: string | string[]): boolean {
  if (raw === '1' || raw === 'true' || raw === '') return true;
  if (raw === '0' || raw === 'false') return false;
  throw invalidRequest(`header ${header} must be 1, true, 0 or false, got ${JSON.stringify(raw)}`, header);
}

/**
 * The faults in force and their bookkeeping. Request faults (status, hang, drop, cutAfterChunks,
 * latencyMs, failRate) act on `/v1/*`; `health` acts on `/health`. `count` counts every request a
 * fault set acts on, failRate's spared requests included.
 */
export class FaultState {
  private faults: MockFaults | undefined;
  private actsOnRequests = false;
  private remaining = Number.POSITIVE_INFINITY;
  private seen = 0;

  current(): MockFaults | undefined {
    return this.faults === undefined ? undefined : { ...this.faults };
  }

  set(faults: MockFaults): void {
    const parsed = parseFaults(faults);
    if (Object.keys(parsed).length === 0) return this.clear();
    this.faults = parsed;
    this.actsOnRequests = REQUEST_KEYS.some((key) => parsed[key] !== undefined);
    this.remaining = parsed.count ?? Number.POSITIVE_INFINITY;
    this.seen = 0;
  }

  clear(): void {
    this.faults = undefined;
    this.actsOnRequests = false;
  }

  /** The plan for one `/v1/*` request; undefined on the hot path (no faults anywhere). Throws a 400 for a malformed fault header. */
  forRequest(headers: IncomingHttpHeaders): RequestFaultPlan | undefined {
    const fromHeaders = faultsFromHeaders(headers);
    let fields: RequestFaultFields | undefined;
    const faults = this.faults;
    if (faults !== undefined && this.actsOnRequests) {
      fields = this.selected(faults) ? failureFields(faults) : { latencyMs: faults.latencyMs };
      this.consume();
    }
    if (fromHeaders !== undefined) fields = { ...fields, ...fromHeaders };
    return fields === undefined ? undefined : toPlan(fields);
  }

  forHealth(headers: IncomingHttpHeaders): HealthFaultPlan | undefined {
    const fromHeader = healthFaultFromHeaders(headers);
    const faults = this.faults;
    let mode = fromHeader;
    if (faults?.health !== undefined) {
      mode ??= faults.health;
      this.consume();
    }
    return mode === undefined ? undefined : { mode, delayMs: faults?.healthDelayMs ?? DEFAULT_HEALTH_DELAY_MS };
  }

  // Counter-based rather than random so a test knows exactly which request fails: request n fails
  // when floor(n * rate) steps up, which spreads failures evenly (0.25 fails the 4th, 8th, ...).
  private selected(faults: MockFaults): boolean {
    const rate = faults.failRate;
    if (rate === undefined) return true;
    const n = ++this.seen;
    return Math.floor(n * rate + 1e-9) > Math.floor((n - 1) * rate + 1e-9);
  }

  private consume(): void {
    if (--this.remaining <= 0) this.clear();
  }
}

function failureFields(faults: MockFaults): RequestFaultFields {
  const fields: RequestFaultFields = { latencyMs: faults.latencyMs };
  for (const key of FAILURE_KEYS) if (faults[key] !== undefined) (fields as Record<string, unknown>)[key] = faults[key];
  // failRate with no failure named still has to fail somehow.
  if (faults.failRate !== undefined && !FAILURE_KEYS.some((key) => key !== 'retryAfter' && faults[key] !== undefined)) fields.status = 500;
  return fields;
}

// One action per request; the most drastic named wins.
function toPlan(fields: RequestFaultFields): RequestFaultPlan {
  let action: FaultAction | undefined;
  if (fields.drop) action = { kind: 'drop' };
  else if (fields.hang) action = { kind: 'hang' };
  else if (fields.status !== undefined) action = { kind: 'status', status: fields.status, retryAfter: fields.retryAfter };
  else if (fields.cutAfterChunks !== undefined) action = { kind: 'cut', afterChunks: fields.cutAfterChunks };
  return { latencyMs: fields.latencyMs, action };
}

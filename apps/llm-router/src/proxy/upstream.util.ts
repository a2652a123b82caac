import { Agent } from 'undici';

const agents = new Map<number, Agent>();

/** One keep-alive connection pool per connect timeout (undici pools per origin inside it). */
export function agentFor(connectMs: number): Agent {
  let agent = agents.get(connectMs);
  if (!agent) {
    agent = new Agent({ connect: { timeout: connectMs }, keepAliveTimeout: 30_000, keepAliveMaxTimeout: 600_000, connections: 1024, pipelining: 1 });
    agents.set(connectMs, agent);
  }
  return agent;
}

export async function closeAgents(): Promise<void> {
  await Promise.all([...agents.values()].map((a) => a.close()));
  agents.clear();
}

/** `Retry-After` as milliseconds (seconds or an HTTP date), if present and sane. */
export function retryAfterMs(value: string | string[] | undefined, now = Date.now()): number | undefined {
  const raw = Array.isArray(value) ? value[0] : value;
  if (!raw) return undefined;
  const seconds = Number(raw);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const date = Date.parse(raw);
  return Number.isFinite(date) ? Math.max(0, date - now) : undefined;
}

export type FailureKind = 'connect' | 'timeout' | 'status';

export interface AttemptFailure {
  kind: FailureKind;
  instance: string;
  status?: number;
  retryAfterMs?: number;
  /** What an API client may see: an error code, `timeout` or `HTTP 503`; never an address or the backend's words. */
  code: string;
  /** For the log only: may hold the backend's address and what it answered. */
  detail: string;
}

/**
 * An error's code, when it is one of the fixed-format tokens that say what went wrong without saying
 * where: Node's errno names (ECONNREFUSED, ENOTFOUND, …) and undici's codes. Messages are never
 * passed on: undici's name the address (`connect ECONNREFUSED 10.0.0.8:3008`, `attempted address: …`).
 */
export function safeErrorCode(error: unknown): string {
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' && /^(E[A-Z_]{2,30}|UND_ERR_[A-Z_]{1,30})$/.test(code) ? code : 'connection failed';
}

/** Which undici errors mean "never got an answer from this instance". */
export function classify(error: unknown): Exclude<FailureKind, 'status'> {
  const code = (error as { code?: string }).code ?? '';
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT' || (error as Error).name === 'TimeoutError') return 'timeout';
  return 'connect';
}

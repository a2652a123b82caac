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
  message: string;
}

/** Which undici errors mean "never got an answer from this instance". */
export function classify(error: unknown): Exclude<FailureKind, 'status'> {
  const code = (error as { code?: string }).code ?? '';
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT' || (error as Error).name === 'TimeoutError') return 'timeout';
  return 'connect';
}

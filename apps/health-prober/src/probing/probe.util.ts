import { performance } from 'node:perf_hooks';
import { Agent, request } from 'undici';
import type { ProbeOutcome } from './health-evaluator.util';

const agent = new Agent({ keepAliveTimeout: 60_000, connections: 4, pipelining: 1 });
const MAX_BODY_BYTES = 4096;
const DEGRADED_WORDS = new Set(['degraded', 'warn', 'warning']);
const FAILED_WORDS = new Set(['unhealthy', 'fail', 'failed', 'down', 'error']);

export interface ProbeResult {
  outcome: ProbeOutcome;
  latencyMs: number;
  /** For the prober's log: a connection failure names its kind (ECONNREFUSED, timeout, ENOTFOUND, …). */
  detail: string;
  /** Whether the instance answered over HTTP at all. */
  responded: boolean;
}

/**
 * One cheap GET of an instance's health endpoint (never a completion: checking an LLM backend must
 * cost it nothing). 2xx is a pass, unless slow or the body says `status: degraded|warn`; anything
 * else, a timeout or a refused connection is a failure. At most 4 KiB of the body is read. Redirects
 * are never followed (undici's `request` has no redirect handling unless asked): a 3xx is a failure,
 * so a registrant cannot point the prober at a host it did not register.
 */
export async function probe(url: string, timeoutMs: number, degradedLatencyMs: number): Promise<ProbeResult> {
  const started = performance.now();
  // Not AbortSignal.timeout: its timer would outlive the (usually ~1 ms) probe; this one is cleared.
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  try {
    const res = await request(url, {
      method: 'GET',
      dispatcher: agent,
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
      signal: controller.signal,
      headers: { accept: 'application/json', 'user-agent': 'switchboard-health-prober' },
    });
    const body = await readSome(res.body);
    const latencyMs = performance.now() - started;
    if (res.statusCode < 200 || res.statusCode >= 300) return { outcome: 'fail', latencyMs, detail: `HTTP ${res.statusCode}`, responded: true };
    const said = selfReportedStatus(body);
    if (said && FAILED_WORDS.has(said)) return { outcome: 'fail', latencyMs, detail: `reports status ${said}`, responded: true };
    if (said && DEGRADED_WORDS.has(said)) return { outcome: 'warn', latencyMs, detail: `reports status ${said}`, responded: true };
    if (latencyMs > degradedLatencyMs) return { outcome: 'warn', latencyMs, detail: `slow: ${Math.round(latencyMs)} ms`, responded: true };
    return { outcome: 'pass', latencyMs, detail: `HTTP ${res.statusCode}`, responded: true };
  } catch (error) {
    const e = error as { code?: string; name?: string; message: string };
    const timedOut = controller.signal.aborted || e.code === 'UND_ERR_HEADERS_TIMEOUT' || e.code === 'UND_ERR_BODY_TIMEOUT';
    return { outcome: 'fail', latencyMs: performance.now() - started, detail: timedOut ? `timeout after ${timeoutMs} ms` : e.code ?? e.message, responded: false };
  } finally {
    clearTimeout(timer);
  }
}

async function readSome(body: AsyncIterable<Buffer> & { destroy(): void }): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    chunks.push(chunk);
    size += chunk.length;
    if (size >= MAX_BODY_BYTES) {
      body.destroy();
      break;
    }
  }
  return Buffer.concat(chunks).toString('utf8', 0, Math.min(size, MAX_BODY_BYTES));
}

function selfReportedStatus(body: string): string | undefined {
  if (!body.startsWith('{')) return undefined;
  try {
    const status = (JSON.parse(body) as { status?: unknown }).status;
    return typeof status === 'string' ? status.toLowerCase() : undefined;
  } catch {
    return undefined;
  }
}

import { fetchFailure } from './fetch-error.util';

export interface EndpointCheck {
  healthy: boolean;
  /** What was tried and what answered, e.g. `GET /health: 200` or `GET /health: ECONNREFUSED; GET /v1/models: ECONNREFUSED`. */
  detail: string;
}

/** The paths an OpenAI-compatible server answers when it is up (vLLM serves both; some others only the second). */
const PROBES = ['/health', '/v1/models'];

/**
 * Is the model server at `host:port` up? The first 2xx answer of {@link PROBES} says yes. This is the
 * workflow's "verify before registering" where no Kubernetes cluster answers.
 */
export async function checkEndpoint(endpoint: string, timeoutMs: number): Promise<EndpointCheck> {
  const tried: string[] = [];
  for (const path of PROBES) {
    try {
      const response = await fetch(`http://${endpoint}${path}`, { signal: AbortSignal.timeout(timeoutMs), redirect: 'manual' });
      await response.body?.cancel();
      tried.push(`GET ${path}: ${response.status}`);
      if (response.ok) return { healthy: true, detail: tried.join('; ') };
    } catch (error) {
      tried.push(`GET ${path}: ${fetchFailure(error, timeoutMs)}`);
    }
  }
  return { healthy: false, detail: tried.join('; ') };
}

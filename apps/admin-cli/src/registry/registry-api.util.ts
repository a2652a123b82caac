import type { ModelDeploymentView, ServiceInstanceView } from '@switchboard/contracts';
import type { RegistrySettings } from '../cli/cli.config';
import { CliException } from '../cli/cli.exception';
import { printable } from '../output/format.util';
import { fetchFailure } from './fetch-error.util';

const REGISTRY_PATH = '/api/v2/services/registry';
/** health-checks waits for a whole probing round (registry-api's PROBER_REQUEST_TIMEOUT_MS is 30 s). */
const REQUEST_TIMEOUT_MS = 60_000;
/** The API's largest page; lists follow `nextCursor` until the end, like `kubectl get`. */
const PAGE_LIMIT = 1000;
/** An answer bigger than this is not the registry's (a page of 1000 instances is far smaller). */
const MAX_RESPONSE_BYTES = 64 * 1024 * 1024;

type TokenKind = 'none' | 'registry' | 'admin';
type Json = Record<string, unknown>;

export interface ModelRegistration {
  dryRun: boolean;
  created: boolean;
  changed: boolean;
  models: ModelDeploymentView[];
}

/**
 * registry-api's REST API, nothing more: the registry stays the only writer and the only judge of
 * what is valid. Its answers are read defensively (any bytes may come back from a wrong URL).
 */
export class RegistryApiClient {
  constructor(private readonly settings: RegistrySettings) {}

  registerModel(body: { modelName: string; endpoint?: string; environment: string; namespace?: string; dryRun: boolean }): Promise<ModelRegistration> {
    return this.call('POST', '/models', 'registry', body) as Promise<never>;
  }

  async setModelState(action: 'enable' | 'disable', modelName: string, environment: string): Promise<ModelDeploymentView[]> {
    return list<ModelDeploymentView>(await this.call('POST', `/models/${action}`, 'registry', { modelName, environment }), 'models');
  }

  async purgeModel(modelName: string, environment: string): Promise<{ serviceId: string; revision: number }[]> {
    return list(await this.call('POST', '/models/deregister', 'registry', { modelName, environment }), 'deregistered');
  }

  listModels(filters: { environment?: string; status?: string; model?: string }): Promise<ModelDeploymentView[]> {
    return this.allPages<ModelDeploymentView>('/models', filters, 'models');
  }

  registerService(body: Json): Promise<{ created: boolean; changed: boolean; service: ServiceInstanceView }> {
    return this.call('POST', '/register', 'registry', body) as Promise<never>;
  }

  listServices(filters: { environment?: string; serviceName?: string; status?: string; capability?: string }): Promise<ServiceInstanceView[]> {
    return this.allPages<ServiceInstanceView>('/services', filters, 'services');
  }

  async getService(serviceId: string): Promise<ServiceInstanceView> {
    return (await this.call('GET', `/services/${encodeURIComponent(serviceId)}`, 'none')).service as ServiceInstanceView;
  }

  async discover(serviceName: string, environment?: string): Promise<ServiceInstanceView> {
    const query = environment ? `?${new URLSearchParams({ environment })}` : '';
    return (await this.call('GET', `/discover/${encodeURIComponent(serviceName)}${query}`, 'none')).service as ServiceInstanceView;
  }

  async setServiceStatus(serviceId: string, body: { status?: string; adminState?: string; reason?: string }): Promise<{ changed: boolean; service: ServiceInstanceView }> {
    return (await this.call('PUT', `/${encodeURIComponent(serviceId)}/status`, 'registry', body)) as never;
  }

  heartbeat(serviceId: string, metadata: Json): Promise<Json> {
    return this.call('POST', `/${encodeURIComponent(serviceId)}/heartbeat`, 'registry', Object.keys(metadata).length ? { metadata } : {});
  }

  deleteService(serviceId: string): Promise<Json> {
    return this.call('DELETE', `/services/${encodeURIComponent(serviceId)}`, 'registry');
  }

  async runHealthChecks(): Promise<Json> {
    return ((await this.call('POST', '/health-checks', 'admin')).summary ?? {}) as Json;
  }

  private async allPages<T>(path: string, filters: Record<string, string | undefined>, key: string): Promise<T[]> {
    const items: T[] = [];
    let cursor: string | undefined;
    do {
      const query = new URLSearchParams({ limit: String(PAGE_LIMIT) });
      for (const [name, value] of Object.entries(filters)) if (value !== undefined) query.set(name, value);
      if (cursor) query.set('cursor', cursor);
      const page = await this.call('GET', `${path}?${query}`, 'none');
      items.push(...list<T>(page, key));
      cursor = typeof page.nextCursor === 'string' && page.nextCursor ? page.nextCursor : undefined;
    } while (cursor);
    return items;
  }

  private headers(kind: TokenKind, hasBody: boolean): Record<string, string> {
    const { registryToken, adminToken } = this.settings;
    const headers: Record<string, string> = { accept: 'application/json', 'user-agent': 'switchboard-admin-cli' };
    if (hasBody) headers['content-type'] = 'application/json';
    if (kind === 'admin') {
      if (adminToken) headers['x-admin-token'] = adminToken;
    } else if (registryToken) {
      // Reads send it too: a registry with REGISTRY_READ_TOKEN set accepts the write token for reads.
      headers['x-registry-token'] = registryToken;
    } else if (adminToken) {
      headers['x-admin-token'] = adminToken;
    }
    return headers;
  }

  private async call(method: string, path: string, kind: TokenKind, body?: unknown): Promise<Json> {
    const url = `${this.settings.baseUrl}${REGISTRY_PATH}${path}`;
    let response: Response;
    try {
      response = await fetch(url, {
        method,
        headers: this.headers(kind, body !== undefined),
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
        redirect: 'error',
      });
    } catch (error) {
      throw CliException.unavailable(`cannot reach the registry at ${this.settings.baseUrl} (${networkCause(error)}): start registry-api or set SWITCHBOARD_REGISTRY_URL (or --registry-url)`);
    }
    const text = await readText(response, this.settings.baseUrl);
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    const answer = parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed) ? (parsed as Json) : undefined;
    if (response.ok && answer) {
      // Always true on success: noise in the CLI's own JSON.
      delete answer.success;
      return answer;
    }
    throw failure(response.status, answer, kind, this.settings.baseUrl);
  }
}

function list<T>(answer: Json, key: string): T[] {
  const value = answer[key];
  if (!Array.isArray(value)) throw CliException.unavailable(`the registry's answer has no "${key}" list: is SWITCHBOARD_REGISTRY_URL a registry-api?`);
  return value as T[];
}

async function readText(response: Response, where: string): Promise<string> {
  const declared = Number(response.headers.get('content-length') ?? 0);
  if (declared > MAX_RESPONSE_BYTES) throw CliException.unavailable(`the answer from ${where} is too large (${declared} bytes): is SWITCHBOARD_REGISTRY_URL a registry-api?`);
  try {
    return await response.text();
  } catch (error) {
    throw CliException.unavailable(`the registry at ${where} broke off its answer (${networkCause(error)})`);
  }
}

function networkCause(error: unknown): string {
  return fetchFailure(error, REQUEST_TIMEOUT_MS);
}

/** One line naming what to fix: the token variable on 401/403, the registry's own message otherwise. */
function failure(status: number, answer: Json | undefined, kind: TokenKind, where: string): CliException {
  const message = typeof answer?.message === 'string' ? printable(answer.message).slice(0, 2000) : undefined;
  if (status === 401 || status === 403) {
    const variable = kind === 'admin' ? 'SWITCHBOARD_ADMIN_TOKEN (registry-api\'s ADMIN_TOKEN)' : 'SWITCHBOARD_REGISTRY_TOKEN (registry-api\'s REGISTRY_TOKEN)';
    return CliException.unavailable(`the registry refused the token (${status}${message ? `: ${message}` : ''}): set ${variable}`);
  }
  if (!answer || !message) {
    return CliException.unavailable(`unexpected answer from ${where} (HTTP ${status}): is SWITCHBOARD_REGISTRY_URL a registry-api?`);
  }
  return status >= 500 ? CliException.unavailable(`the registry could not do it (${status}): ${message}`) : CliException.usage(message);
}

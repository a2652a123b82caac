const BASE = '/api/v2/services/registry';
const ADMIN_TOKEN_KEY = 'switchboard.console.adminToken';
const READ_TOKEN_KEY = 'switchboard.console.readToken';

/** Tokens live in sessionStorage (gone with the tab), never in a URL. */
export const tokens = {
  admin: (): string | null => sessionStorage.getItem(ADMIN_TOKEN_KEY),
  read: (): string | null => sessionStorage.getItem(READ_TOKEN_KEY) ?? sessionStorage.getItem(ADMIN_TOKEN_KEY),
  setAdmin: (token: string) => sessionStorage.setItem(ADMIN_TOKEN_KEY, token),
  setRead: (token: string) => sessionStorage.setItem(READ_TOKEN_KEY, token),
  forgetAdmin: () => sessionStorage.removeItem(ADMIN_TOKEN_KEY),
};

/** One operator action, named exactly as the confirmation shows it. */
export type Action =
  | { kind: 'instance'; verb: 'enable' | 'disable' | 'drain' | 'deregister'; serviceId: string; serviceName: string; environment: string }
  | { kind: 'model'; verb: 'enable' | 'disable' | 'deregister'; modelName: string; environment: string }
  | { kind: 'health-checks' };

export function describeAction(action: Action): string {
  switch (action.kind) {
    case 'instance':
      return `${capitalise(action.verb)} instance ${action.serviceId} (service ${action.serviceName}, environment ${action.environment})`;
    case 'model':
      return `${capitalise(action.verb)} every deployment of model ${action.modelName} in environment ${action.environment}`;
    case 'health-checks':
      return 'Run a health-check round over every instance now';
  }
}

export function consequence(action: Action): string {
  if (action.kind === 'health-checks') return 'health-prober checks every instance once and reports what changed.';
  switch (action.verb) {
    case 'enable':
      return 'It becomes routable again when healthy.';
    case 'disable':
      return 'Routers stop sending it traffic; it stays registered.';
    case 'drain':
      return 'Routers stop sending it new requests; requests in flight finish.';
    case 'deregister':
      return 'It is removed from the registry; it must register again to come back.';
  }
}

const capitalise = (s: string) => s[0].toUpperCase() + s.slice(1);

export interface ActionResult {
  ok: boolean;
  status: number;
  message: string;
}

/** Calls registry-api's REST API with the admin token; a refusal comes back as the API's own message. */
export async function perform(action: Action, adminToken: string): Promise<ActionResult> {
  const json = { 'content-type': 'application/json' };
  let request: { method: string; path: string; body?: unknown; headers: Record<string, string> };
  if (action.kind === 'instance') {
    const id = encodeURIComponent(action.serviceId);
    const headers = { 'X-Registry-Token': adminToken };
    request =
      action.verb === 'deregister'
        ? { method: 'DELETE', path: `${BASE}/services/${id}`, headers }
        : { method: 'PUT', path: `${BASE}/${id}/status`, body: { adminState: ADMIN_STATE_OF[action.verb], reason: 'console' }, headers: { ...headers, ...json } };
  } else if (action.kind === 'model') {
    request = { method: 'POST', path: `${BASE}/models/${action.verb}`, body: { modelName: action.modelName, environment: action.environment }, headers: { 'X-Registry-Token': adminToken, ...json } };
  } else {
    request = { method: 'POST', path: `${BASE}/health-checks`, body: {}, headers: { 'X-Admin-Token': adminToken, ...json } };
  }
  try {
    const response = await fetch(request.path, { method: request.method, headers: request.headers, body: request.body === undefined ? undefined : JSON.stringify(request.body) });
    const body = (await response.json().catch(() => ({}))) as { message?: string };
    return { ok: response.ok, status: response.status, message: body.message ?? (response.ok ? 'done' : `HTTP ${response.status}`) };
  } catch (error) {
    return { ok: false, status: 0, message: `registry-api not reachable: ${(error as Error).message}` };
  }
}

const ADMIN_STATE_OF = { enable: 'enabled', disable: 'disabled', drain: 'draining' } as const;

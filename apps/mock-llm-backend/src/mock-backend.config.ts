import { MOCK_BACKEND_DEFAULTS, MOCK_NAME_PATTERN } from '@switchboard/mock-llm-backend';

export interface MockBackendAppConfig {
  port: number;
  host: string;
  models: string[];
  latencyMs: number;
  tokensPerSecond: number;
  completionTokens: number;
  name: string | undefined;
  /** Set when `SERVICE_REGISTRY_URL` is: the backend registers itself through @switchboard/client. */
  registration?: MockRegistrationConfig;
}

/** What the SDK does not read itself (it reads the registry guide's variables: token, VM_IP, environment, …). */
export interface MockRegistrationConfig {
  serviceName: string;
  serviceId: string | undefined;
  heartbeatIntervalMs: number | undefined;
  drainDeadlineMs: number;
}

/** Names the variable at fault; main exits 78 (EX_CONFIG) on it. */
export class MockBackendConfigError extends Error {
  override name = 'MockBackendConfigError';
}

type Env = Record<string, string | undefined>;

// An empty variable counts as unset: compose files and CI often pass `NAME=` for "no value".
function read(env: Env, variable: string): string | undefined {
  const value = env[variable]?.trim();
  return value === undefined || value === '' ? undefined : value;
}

function number(env: Env, variable: string, fallback: number, { integer = false, max = Number.MAX_SAFE_INTEGER } = {}): number {
  const raw = read(env, variable);
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < 0 || value > max || (integer && !Number.isInteger(value))) {
    throw new MockBackendConfigError(`${variable} must be ${integer ? 'an integer' : 'a number'} in 0..${max}, got "${raw}"`);
  }
  return value;
}

export function loadMockBackendConfig(env: Env): MockBackendAppConfig {
  const models = read(env, 'MOCK_MODELS')?.split(',').map((model) => model.trim()) ?? [...MOCK_BACKEND_DEFAULTS.models];
  if (models.some((model) => model === '')) throw new MockBackendConfigError(`MOCK_MODELS must be a comma-separated list of model ids, got "${env['MOCK_MODELS']}"`);
  const name = read(env, 'MOCK_NAME');
  if (name !== undefined && !MOCK_NAME_PATTERN.test(name)) throw new MockBackendConfigError(`MOCK_NAME must be printable ASCII, got ${JSON.stringify(name)}`);
  return {
    port: number(env, 'PORT', 8000, { integer: true, max: 65_535 }),
    host: read(env, 'HOST') ?? '0.0.0.0',
    models,
    latencyMs: number(env, 'MOCK_LATENCY_MS', MOCK_BACKEND_DEFAULTS.latencyMs, { max: 3_600_000 }),
    tokensPerSecond: number(env, 'MOCK_TOKENS_PER_SECOND', MOCK_BACKEND_DEFAULTS.tokensPerSecond, { max: 1_000_000 }),
    completionTokens: number(env, 'MOCK_COMPLETION_TOKENS', MOCK_BACKEND_DEFAULTS.completionTokens, { integer: true, max: 1_000_000 }),
    name,
    registration: read(env, 'SERVICE_REGISTRY_URL') === undefined ? undefined : registrationConfig(env),
  };
}

function registrationConfig(env: Env): MockRegistrationConfig {
  const token = /^[A-Za-z0-9_-]{1,128}$/;
  const serviceName = read(env, 'SERVICE_NAME') ?? 'mock-llm-backend';
  if (!token.test(serviceName)) throw new MockBackendConfigError(`SERVICE_NAME must be 1-128 letters, digits, "_" or "-", got ${JSON.stringify(serviceName)}`);
  const serviceId = read(env, 'SERVICE_ID');
  if (serviceId !== undefined && !token.test(serviceId)) throw new MockBackendConfigError(`SERVICE_ID must be 1-128 letters, digits, "_" or "-", got ${JSON.stringify(serviceId)}`);
  const heartbeat = read(env, 'HEARTBEAT_INTERVAL_MS') === undefined ? undefined : number(env, 'HEARTBEAT_INTERVAL_MS', 0, { integer: true, max: 3_600_000 });
  if (heartbeat === 0) throw new MockBackendConfigError('HEARTBEAT_INTERVAL_MS must be an integer in 1..3600000, got "0"');
  return { serviceName, serviceId, heartbeatIntervalMs: heartbeat, drainDeadlineMs: number(env, 'DRAIN_DEADLINE_MS', 30_000, { integer: true, max: 3_600_000 }) };
}

import { MOCK_BACKEND_DEFAULTS, MOCK_NAME_PATTERN } from '@switchboard/mock-llm-backend';

export interface MockBackendAppConfig {
  port: number;
  host: string;
  models: string[];
  latencyMs: number;
  tokensPerSecond: number;
  completionTokens: number;
  name: string | undefined;
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
  };
}

import type { IncomingMessage, ServerResponse } from 'node:http';

export interface MockBackendOptions {
  /** 0 picks a free port. */
  port?: number;
  host?: string;
  /** Model ids served; any other model is answered 404 like OpenAI does. */
  models?: string[];
  /** Delay before the response headers (streaming: before the first token). */
  latencyMs?: number;
  /** Streaming pace; 0 writes every token at once. Non-streaming answers wait the same generation time. */
  tokensPerSecond?: number;
  /** Tokens a completion would produce when `max_tokens` does not cut it short. */
  completionTokens?: number;
  /** Echoed in the `x-mock-backend` header and `system_fingerprint`; default `mock-<port>`. */
  name?: string;
  /** Sees each request (`/_mock/*` excluded) before it is handled, e.g. a request-counting middleware. */
  onRequest?: (req: IncomingMessage, res: ServerResponse) => void;
}

export interface ResolvedMockBackendOptions {
  port: number;
  host: string;
  models: readonly string[];
  latencyMs: number;
  tokensPerSecond: number;
  completionTokens: number;
  name: string | undefined;
  onRequest: ((req: IncomingMessage, res: ServerResponse) => void) | undefined;
}

export const MOCK_BACKEND_DEFAULTS = {
  port: 0,
  host: '127.0.0.1',
  models: ['mock-model'],
  latencyMs: 0,
  tokensPerSecond: 0,
  completionTokens: 16,
} as const;

/** The name goes into a header, so it must be a valid header value. */
export const MOCK_NAME_PATTERN = /^[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?$/;

export function resolveMockBackendOptions(options: MockBackendOptions): ResolvedMockBackendOptions {
  const port = options.port ?? MOCK_BACKEND_DEFAULTS.port;
  if (!Number.isInteger(port) || port < 0 || port > 65_535) throw new RangeError(`port must be an integer in 0..65535, got ${port}`);
  const host = options.host ?? MOCK_BACKEND_DEFAULTS.host;
  if (typeof host !== 'string' || host.length === 0) throw new RangeError('host must be a non-empty string');
  const models = options.models ?? [...MOCK_BACKEND_DEFAULTS.models];
  if (!Array.isArray(models) || models.length === 0 || models.some((m) => typeof m !== 'string' || m.length === 0)) {
    throw new RangeError('models must be a non-empty list of non-empty strings');
  }
  const name = options.name;
  if (name !== undefined && (typeof name !== 'string' || !MOCK_NAME_PATTERN.test(name))) {
    throw new RangeError(`name must be printable ASCII without leading or trailing spaces, got ${JSON.stringify(name)}`);
  }
  return {
    port,
    host,
    models: [...new Set(models)],
    latencyMs: nonNegative('latencyMs', options.latencyMs ?? MOCK_BACKEND_DEFAULTS.latencyMs),
    tokensPerSecond: nonNegative('tokensPerSecond', options.tokensPerSecond ?? MOCK_BACKEND_DEFAULTS.tokensPerSecond),
    completionTokens: nonNegativeInteger('completionTokens', options.completionTokens ?? MOCK_BACKEND_DEFAULTS.completionTokens),
    name,
    onRequest: options.onRequest,
  };
}

function nonNegative(option: string, value: number): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) throw new RangeError(`${option} must be a finite number >= 0, got ${value}`);
  return value;
}

function nonNegativeInteger(option: string, value: number): number {
  if (!Number.isInteger(value) || value < 0) throw new RangeError(`${option} must be an integer >= 0, got ${value}`);
  return value;
}

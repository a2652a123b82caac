import { loadMockBackendConfig, MockBackendConfigError } from './mock-backend.config';

describe('loadMockBackendConfig', () => {
  it('defaults to port 8000 on every interface', () => {
    expect(loadMockBackendConfig({})).toEqual({
      port: 8000,
      host: '0.0.0.0',
      models: ['mock-model'],
      latencyMs: 0,
      tokensPerSecond: 0,
      completionTokens: 16,
      name: undefined,
    });
  });

  it('reads every variable, treating empty ones as unset', () => {
    expect(
      loadMockBackendConfig({
        PORT: '9001',
        HOST: '127.0.0.1',
        MOCK_MODELS: 'llama-3, org/qwen',
        MOCK_LATENCY_MS: '12.5',
        MOCK_TOKENS_PER_SECOND: '40',
        MOCK_COMPLETION_TOKENS: '64',
        MOCK_NAME: '',
      }),
    ).toEqual({ port: 9001, host: '127.0.0.1', models: ['llama-3', 'org/qwen'], latencyMs: 12.5, tokensPerSecond: 40, completionTokens: 64, name: undefined });
  });

  it('registers only when SERVICE_REGISTRY_URL is set, with the service name, id, heartbeat and drain settings', () => {
    expect(loadMockBackendConfig({ SERVICE_NAME: 'x' }).registration).toBeUndefined();
    expect(loadMockBackendConfig({ SERVICE_REGISTRY_URL: 'http://127.0.0.1:3013' }).registration).toEqual({
      serviceName: 'mock-llm-backend',
      serviceId: undefined,
      heartbeatIntervalMs: undefined,
      drainDeadlineMs: 30_000,
    });
    expect(
      loadMockBackendConfig({ SERVICE_REGISTRY_URL: 'http://r', SERVICE_NAME: 'vllm', SERVICE_ID: 'vllm-1', HEARTBEAT_INTERVAL_MS: '200', DRAIN_DEADLINE_MS: '5000' }).registration,
    ).toEqual({ serviceName: 'vllm', serviceId: 'vllm-1', heartbeatIntervalMs: 200, drainDeadlineMs: 5000 });
  });

  it.each([
    ['SERVICE_NAME', 'a.b'],
    ['SERVICE_ID', 'x y'],
    ['HEARTBEAT_INTERVAL_MS', '0'],
    ['DRAIN_DEADLINE_MS', '-5'],
  ])('names %s when it is invalid for the registration (%s)', (variable, value) => {
    expect(() => loadMockBackendConfig({ SERVICE_REGISTRY_URL: 'http://r', [variable]: value })).toThrow(variable);
  });

  it.each([
    ['PORT', '80a'],
    ['PORT', '70000'],
    ['MOCK_LATENCY_MS', '-1'],
    ['MOCK_TOKENS_PER_SECOND', 'fast'],
    ['MOCK_COMPLETION_TOKENS', '1.5'],
    ['MOCK_MODELS', 'a,,b'],
    ['MOCK_NAME', 'café'],
  ])('names %s when it is invalid (%s)', (variable, value) => {
    expect(() => loadMockBackendConfig({ [variable]: value })).toThrow(MockBackendConfigError);
    expect(() => loadMockBackendConfig({ [variable]: value })).toThrow(variable);
  });
});

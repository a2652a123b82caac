import { cacheKeysForEvent, discoveryCacheKey, modelRegistryCacheKey } from './cache-keys';
import { buildRegistryEvent, InvalidEventError, parseRegistryEvent } from './registry.event';

const instance = {
  serviceId: 'vllm-1',
  serviceName: 'vllm',
  environment: 'production',
  status: 'healthy',
  adminState: 'enabled',
  models: ['llama-2-7b', 'qwen2.5:7b'],
  internalUrl: 'http://10.0.0.1:8000',
  revision: 9,
};
const at = new Date('2026-01-01T00:00:00Z');
const parse = (event: unknown) => parseRegistryEvent(JSON.parse(JSON.stringify(event)));

describe('cache keys', () => {
  it('follows the seed layout', () => {
    expect(discoveryCacheKey('production', 'vllm')).toBe('discovery:production:vllm');
    expect(modelRegistryCacheKey('staging', 'qwen2.5:7b')).toBe('model_registry:staging:qwen2.5:7b');
  });

  it('a status change affects the discovery list and every model of the instance, nothing else', () => {
    const event = buildRegistryEvent(
      'statusChanged',
      'vllm-1',
      { revision: 9, instance, from: { status: 'healthy', adminState: 'enabled' }, to: { status: 'degraded', adminState: 'enabled' } } as never,
      at,
    );
    expect(cacheKeysForEvent(parse(event))).toEqual(['discovery:production:vllm', 'model_registry:production:llama-2-7b', 'model_registry:production:qwen2.5:7b']);
  });

  it('a re-registration that moved the instance affects its old place too', () => {
    const event = buildRegistryEvent(
      'registered',
      'vllm-1',
      { revision: 9, instance, previous: { serviceName: 'vllm-old', environment: 'staging', models: ['llama-2-7b', 'mistral-7b'] } } as never,
      at,
    );
    expect(cacheKeysForEvent(parse(event)).sort()).toEqual(
      [
        'discovery:production:vllm',
        'model_registry:production:llama-2-7b',
        'model_registry:production:qwen2.5:7b',
        'discovery:staging:vllm-old',
        'model_registry:staging:llama-2-7b',
        'model_registry:staging:mistral-7b',
      ].sort(),
    );
  });

  it('a model change in place forgets the dropped model and lists each key once', () => {
    const event = buildRegistryEvent(
      'registered',
      'vllm-1',
      { revision: 9, instance, previous: { serviceName: 'vllm', environment: 'production', models: ['llama-2-7b'] } } as never,
      at,
    );
    expect(cacheKeysForEvent(parse(event))).toEqual(['discovery:production:vllm', 'model_registry:production:llama-2-7b', 'model_registry:production:qwen2.5:7b']);
  });

  it('a deregistration affects the discovery list and the models it served; older events without models still name the list', () => {
    const withModels = buildRegistryEvent('deregistered', 'vllm-1', { revision: 9, serviceId: 'vllm-1', serviceName: 'vllm', environment: 'production', models: ['llama-2-7b'] }, at);
    expect(cacheKeysForEvent(parse(withModels))).toEqual(['discovery:production:vllm', 'model_registry:production:llama-2-7b']);
    const older = buildRegistryEvent('deregistered', 'vllm-1', { revision: 9, serviceId: 'vllm-1', serviceName: 'vllm', environment: 'production' }, at);
    expect(cacheKeysForEvent(parse(older))).toEqual(['discovery:production:vllm']);
  });

  it('rejects a previous placement that is not one', () => {
    const event = buildRegistryEvent('registered', 'vllm-1', { revision: 9, instance, previous: { serviceName: 'a.b', environment: 'production', models: [] } } as never, at);
    expect(() => parse(event)).toThrow(InvalidEventError);
    expect(() => parse(event)).toThrow(/data\.previous\.serviceName/);
  });
});

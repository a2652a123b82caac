import { availableParallelism } from 'node:os';
import { loadConfig } from '@switchboard/config';
import { LlmRouterConfig, productionRules } from './llm-router.config';

function config(values: Partial<LlmRouterConfig>): LlmRouterConfig {
  return Object.assign(new LlmRouterConfig(), values);
}

describe('llm-router API keys', () => {
  it('is open without keys in development (the workflow calls it without a key)', () => {
    const open = config({ NODE_ENV: 'development' });
    expect(open.isOpen).toBe(true);
    expect(productionRules(open)).toEqual([]);
  });

  it('refuses to start without keys in production', () => {
    expect(productionRules(config({ NODE_ENV: 'production' }))).toEqual([expect.stringMatching(/^ROUTER_API_KEYS: required in production/)]);
  });

  it('refuses short keys in production and accepts real ones', () => {
    expect(productionRules(config({ NODE_ENV: 'production', ROUTER_API_KEYS: 'sk-short1' }))).toHaveLength(1);
    const real = config({ NODE_ENV: 'production', ROUTER_API_KEYS: 'sk-0123456789abcdef, sk-fedcba9876543210' });
    expect(real.isOpen).toBe(false);
    expect(real.apiKeys).toEqual(['sk-0123456789abcdef', 'sk-fedcba9876543210']);
    expect(productionRules(real)).toEqual([]);
  });
});

describe('llm-router workers', () => {
  it('runs one process in development and one worker per core in production, unless ROUTER_WORKERS says', () => {
    expect(config({ NODE_ENV: 'development' }).workers).toBe(1);
    expect(config({ NODE_ENV: 'production' }).workers).toBe(availableParallelism());
    expect(config({ NODE_ENV: 'production', ROUTER_WORKERS: 3 }).workers).toBe(3);
  });

  it('reads ROUTER_WORKERS from the environment as a number, and refuses 0', () => {
    expect(loadConfig(LlmRouterConfig, { ROUTER_WORKERS: '2' }).workers).toBe(2);
    expect(() => loadConfig(LlmRouterConfig, { ROUTER_WORKERS: '0' })).toThrow(/ROUTER_WORKERS/);
  });
});

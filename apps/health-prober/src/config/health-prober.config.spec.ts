import { loadConfig } from '@switchboard/config';
import { HealthProberConfig } from './health-prober.config';

describe('HealthProberConfig', () => {
  const production = { NODE_ENV: 'production', NATS_TOKEN: 'a-real-nats-token-0123' };

  it('keeps the development registry token outside production', () => {
    expect(loadConfig(HealthProberConfig, {}).REGISTRY_TOKEN).toBe('dev-registry-token');
  });

  it('refuses the development registry token in production, naming the variable', () => {
    expect(() => loadConfig(HealthProberConfig, production)).toThrow(/REGISTRY_TOKEN: set registry-api's real write token/);
    expect(loadConfig(HealthProberConfig, { ...production, REGISTRY_TOKEN: 'a-real-registry-token-0123' }).REGISTRY_TOKEN).toBe('a-real-registry-token-0123');
  });
});

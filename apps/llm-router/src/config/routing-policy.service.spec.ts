import { compilePolicy } from './routing-policy.service';

describe('compilePolicy', () => {
  it('merges defaults into per-model settings', () => {
    const result = compilePolicy({
      defaults: { strategy: 'least-outstanding', timeouts: { connectMs: 500 } },
      models: { big: { timeouts: { firstTokenMs: 90_000 }, strategy: 'affinity', affinityHeader: 'X-Session' } },
      aliases: { 'gpt-4o': 'big' },
      fallbacks: { big: ['small'] },
    });
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.policy.defaults).toMatchObject({ strategy: 'least-outstanding', connectMs: 500 });
    expect(result.policy.models.get('big')).toMatchObject({ strategy: 'affinity', affinityHeader: 'x-session', connectMs: 500, firstTokenMs: 90_000 });
  });

  it('names each bad field', () => {
    const result = compilePolicy({ models: { big: { strategy: 'random' } }, aliases: { a: 1 }, fallbacks: { b: 'c' }, extra: true });
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.errors.map((e) => e.field)).toEqual(['extra']);
    const nested = compilePolicy({ models: { big: { strategy: 'random' } }, aliases: { a: 1 }, fallbacks: { b: 'c' } });
    expect(nested.ok ? [] : nested.errors.map((e) => e.field)).toEqual(['models.big.strategy', 'aliases.a', 'fallbacks.b']);
  });
});

import { ClientBalancer } from './balancer';

// The rules themselves (p2c, score, ejection, best, forgetting) are the shared InstanceScoreboard's and
// tested in libs/data-access-routing-table/src/lib/instance-scoreboard.spec.ts; here only what the
// SDK's wrapper adds: its ejection settings and their defaults.
describe('ClientBalancer', () => {
  let now: number;
  beforeEach(() => {
    now = 1_000_000;
  });

  it('by default ejects after 3 failures in a row for 5 s, doubling, as the router', () => {
    const balancer = new ClientBalancer({ now: () => now });
    balancer.failed('a');
    balancer.failed('a');
    expect(balancer.isEjected('a')).toBe(false);
    balancer.failed('a');
    expect(balancer.statsOf('a').ejectedUntil - now).toBe(5000);
    now += 5000;
    for (let i = 0; i < 3; i++) balancer.failed('a');
    expect(balancer.statsOf('a').ejectedUntil - now).toBe(10_000);
  });

  it('takes its ejection settings from its options, Retry-After capped by maxEjectionMs', () => {
    const balancer = new ClientBalancer({ now: () => now, ejectAfterFailures: 1, ejectBaseMs: 200, maxEjectionMs: 1000 });
    balancer.failed('a');
    expect(balancer.statsOf('a').ejectedUntil - now).toBe(200);
    balancer.failed('b', 30_000);
    expect(balancer.statsOf('b').ejectedUntil - now).toBe(1000);
    expect(balancer.statsOf('b').retryAfterUntil - now).toBe(1000);
  });
});

import type { RoutedInstance } from '@switchboard/routing-table';
import { BUILTIN_POLICY, ResolvedPolicy } from '../config/routing-policy.config';
import { RouterMetricsService } from '../observability/router-metrics.service';
import { routedInstance } from '../testing/proxy-app.util';
import { BalancerService } from './balancer.service';

const instance = (serviceId: string, patch: Partial<RoutedInstance> = {}): RoutedInstance =>
  routedInstance(serviceId, 'm', `http://${serviceId}`, { environment: 'production', ...patch });

// The score, p2c, ejection and forgetting are the shared InstanceScoreboard's (instance-scoreboard.spec.ts
// in the routing-table lib); here what the router adds: per-model policies, strategies, metrics, panic.
describe('BalancerService', () => {
  let balancer: BalancerService;
  let metrics: RouterMetricsService;
  const policy = (patch: Partial<ResolvedPolicy> = {}): ResolvedPolicy => ({ ...BUILTIN_POLICY, ...patch });
  /** How often each serviceId is picked in `n` picks. */
  const tally = (pick: () => RoutedInstance | undefined, n = 400): Record<string, number> =>
    Array.from({ length: n }, () => pick()?.serviceId ?? 'none').reduce<Record<string, number>>((seen, id) => ({ ...seen, [id]: (seen[id] ?? 0) + 1 }), {});
  const counted = async (metric: 'ejections' | 'panics', labels: Record<string, string>) =>
    (await metrics[metric].get()).values.find((v) => Object.entries(labels).every(([k, l]) => (v.labels as Record<string, unknown>)[k] === l))?.value ?? 0;

  beforeEach(() => {
    metrics = new RouterMetricsService();
    balancer = new BalancerService(metrics);
  });

  it('p2c (the default strategy) goes by the scoreboard: less outstanding work and lower latency win', () => {
    const [a, b] = [instance('a'), instance('b')];
    balancer.succeeded('a', 200);
    balancer.succeeded('b', 20);
    expect(tally(() => balancer.pick('m', [a, b], policy()))).toEqual({ b: 400 });
    for (let i = 0; i < 20; i++) balancer.started('b');
    expect(tally(() => balancer.pick('m', [a, b], policy()))).toEqual({ a: 400 });
  });

  it('every strategy prefers healthy over degraded and skips ejected instances', () => {
    const healthy = instance('h');
    const degraded = instance('d', { status: 'degraded' });
    expect(tally(() => balancer.pick('m', [healthy, degraded], policy({ strategy: 'round-robin' })))).toEqual({ h: 400 });
    for (let i = 0; i < 3; i++) balancer.failed('m', 'h', policy());
    expect(balancer.isEjected('h')).toBe(true);
    let session = 0;
    for (const strategy of ['p2c', 'round-robin', 'least-outstanding', 'affinity'] as const) {
      // Many session keys: some of them would hash to the ejected instance if it were in the pool.
      expect([strategy, tally(() => balancer.pick('m', [healthy, degraded], policy({ strategy }), `session-${session++}`), 40)]).toEqual([strategy, { d: 40 }]);
    }
  });

  it("ejects by the model's policy (failures in a row, base cooldown), and counts each ejection", async () => {
    const model = 'm-eject';
    const p = policy({ ejectAfterFailures: 1, ejectBaseMs: 1000 });
    const now = Date.now();
    balancer.failed(model, 'a', p);
    expect(balancer.statsOf('a').ejectedUntil - now).toBeGreaterThanOrEqual(1000);
    expect(balancer.statsOf('a').ejectedUntil - now).toBeLessThan(2000);
    balancer.statsOf('a').ejectedUntil = 0;
    balancer.failed(model, 'a', p);
    expect(balancer.statsOf('a').ejectedUntil - now).toBeGreaterThanOrEqual(2000);
    balancer.failed(model, 'b', policy(), 30_000);
    expect(balancer.statsOf('b').ejectedUntil - now).toBeGreaterThanOrEqual(30_000);
    balancer.failed(model, 'c', policy());
    expect(balancer.isEjected('c')).toBe(false);
    expect(await counted('ejections', { model, instance: 'a' })).toBe(2);
    expect(await counted('ejections', { model, instance: 'b' })).toBe(1);
    expect(await counted('ejections', { model, instance: 'c' })).toBe(0);
  });

  it('in panic (everything ejected) still picks the one whose cooldown ends first, and counts the panic', async () => {
    const model = 'm-panic';
    const before = await counted('panics', { model });
    balancer.failed(model, 'a', policy(), 60_000);
    balancer.failed(model, 'b', policy(), 5_000);
    expect(balancer.pick(model, [instance('a'), instance('b')], policy())?.serviceId).toBe('b');
    expect((await counted('panics', { model })) - before).toBe(1);
  });

  it('round-robin cycles; least-outstanding picks the idlest; affinity keeps a key on one instance', () => {
    const pool = [instance('a'), instance('b'), instance('c')];
    expect(tally(() => balancer.pick('m', pool, policy({ strategy: 'round-robin' })), 300)).toEqual({ a: 100, b: 100, c: 100 });
    balancer.started('a');
    balancer.started('b');
    expect(tally(() => balancer.pick('m', pool, policy({ strategy: 'least-outstanding' })), 50)).toEqual({ c: 50 });
    const affinity = policy({ strategy: 'affinity' });
    const first = balancer.pick('m', pool, affinity, 'session-42')?.serviceId;
    expect(tally(() => balancer.pick('m', pool, affinity, 'session-42'), 50)).toEqual({ [first as string]: 50 });
    const spread = new Set(Array.from({ length: 60 }, (_, i) => balancer.pick('m', pool, affinity, `user-${i}`)?.serviceId));
    expect(spread.size).toBe(3);
  });
});

import type { RoutedInstance } from '@switchboard/routing-table';
import { BUILTIN_POLICY, ResolvedPolicy } from '../config/routing-policy.config';
import { RouterMetricsService } from '../observability/router-metrics.service';
import { BalancerService } from './balancer.service';

const instance = (serviceId: string, patch: Partial<RoutedInstance> = {}): RoutedInstance => ({
  serviceId,
  serviceName: 'vllm',
  environment: 'production',
  models: ['m'],
  internalUrl: `http://${serviceId}`,
  healthCheckEndpoint: '/health',
  healthCheck: {},
  status: 'healthy',
  adminState: 'enabled',
  routable: true,
  revision: 1,
  load: {},
  ...patch,
});

describe('BalancerService', () => {
  let balancer: BalancerService;
  const policy = (patch: Partial<ResolvedPolicy> = {}): ResolvedPolicy => ({ ...BUILTIN_POLICY, ...patch });
  const counts = (pick: () => RoutedInstance | undefined, n = 400) => {
    const seen: Record<string, number> = {};
    for (let i = 0; i < n; i++) {
      const id = pick()?.serviceId ?? 'none';
      seen[id] = (seen[id] ?? 0) + 1;
    }
    return seen;
  };

  beforeEach(() => {
    balancer = new BalancerService(new RouterMetricsService());
  });

  it('p2c prefers the instance with less outstanding work and lower latency', () => {
    const [a, b] = [instance('a'), instance('b')];
    balancer.succeeded('a', 200);
    balancer.succeeded('b', 20);
    expect(counts(() => balancer.pick('m', [a, b], policy()))).toEqual({ b: 400 });
    for (let i = 0; i < 20; i++) balancer.started('b');
    expect(counts(() => balancer.pick('m', [a, b], policy()))).toEqual({ a: 400 });
  });

  it('uses heartbeat figures for instances it has not measured', () => {
    const busy = instance('busy', { load: { averageLatency: 500, inflight: 30 } });
    const idle = instance('idle', { load: { averageLatency: 50, inflight: 0 } });
    expect(counts(() => balancer.pick('m', [busy, idle], policy()))).toEqual({ idle: 400 });
  });

  it('prefers healthy over degraded and skips ejected instances', () => {
    const healthy = instance('h');
    const degraded = instance('d', { status: 'degraded' });
    expect(counts(() => balancer.pick('m', [healthy, degraded], policy({ strategy: 'round-robin' })))).toEqual({ h: 400 });
    for (let i = 0; i < 3; i++) balancer.failed('m', 'h', policy());
    expect(balancer.isEjected('h')).toBe(true);
    expect(counts(() => balancer.pick('m', [healthy, degraded], policy()))).toEqual({ d: 400 });
  });

  it('ejects for longer on each repeat and honours Retry-After at once', () => {
    const p = policy({ ejectAfterFailures: 1, ejectBaseMs: 1000 });
    const now = Date.now();
    balancer.failed('m', 'a', p);
    const first = balancer.statsOf('a').ejectedUntil - now;
    balancer.statsOf('a').ejectedUntil = 0;
    balancer.failed('m', 'a', p);
    const second = balancer.statsOf('a').ejectedUntil - now;
    expect(first).toBeGreaterThanOrEqual(1000);
    expect(second).toBeGreaterThanOrEqual(2000);
    balancer.failed('m', 'b', policy(), 30_000);
    expect(balancer.statsOf('b').ejectedUntil - now).toBeGreaterThanOrEqual(30_000);
  });

  it('in panic (everything ejected) still picks the one whose cooldown ends first', () => {
    balancer.failed('m', 'a', policy(), 60_000);
    balancer.failed('m', 'b', policy(), 5_000);
    expect(balancer.pick('m', [instance('a'), instance('b')], policy())?.serviceId).toBe('b');
  });

  it('round-robin cycles; least-outstanding picks the idlest; affinity keeps a key on one instance', () => {
    const pool = [instance('a'), instance('b'), instance('c')];
    expect(counts(() => balancer.pick('m', pool, policy({ strategy: 'round-robin' })), 300)).toEqual({ a: 100, b: 100, c: 100 });
    balancer.started('a');
    balancer.started('b');
    expect(counts(() => balancer.pick('m', pool, policy({ strategy: 'least-outstanding' })), 50)).toEqual({ c: 50 });
    const affinity = policy({ strategy: 'affinity' });
    const first = balancer.pick('m', pool, affinity, 'session-42')?.serviceId;
    expect(counts(() => balancer.pick('m', pool, affinity, 'session-42'), 50)).toEqual({ [first as string]: 50 });
    const spread = new Set(Array.from({ length: 60 }, (_, i) => balancer.pick('m', pool, affinity, `user-${i}`)?.serviceId));
    expect(spread.size).toBe(3);
  });
});

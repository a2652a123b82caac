import { seededRandom } from '@switchboard/testing';
import { Balanceable, ClientBalancer } from './balancer';

const instance = (serviceId: string, patch: Partial<Balanceable> = {}): Balanceable => ({ serviceId, status: 'healthy', load: {}, ...patch });

describe('ClientBalancer', () => {
  let now: number;
  let balancer: ClientBalancer;
  const counts = (pick: () => Balanceable | undefined, n = 400) => {
    const seen: Record<string, number> = {};
    for (let i = 0; i < n; i++) {
      const id = pick()?.serviceId ?? 'none';
      seen[id] = (seen[id] ?? 0) + 1;
    }
    return seen;
  };

  beforeEach(() => {
    now = 1_000_000;
    balancer = new ClientBalancer({ random: seededRandom(42), now: () => now });
  });

  it('p2c: with two candidates the lower (outstanding + 1) × latency EWMA always wins', () => {
    const [a, b] = [instance('a'), instance('b')];
    balancer.succeeded('a', 200);
    balancer.succeeded('b', 20);
    expect(counts(() => balancer.pick([a, b]))).toEqual({ b: 400 });
    for (let i = 0; i < 20; i++) balancer.started('b');
    expect(counts(() => balancer.pick([a, b]))).toEqual({ a: 400 });
  });

  it('p2c over many: the slow instance is chosen only when both random candidates are it (never, as they differ), the fast one most', () => {
    const pool = ['a', 'b', 'c', 'd'].map((id) => instance(id));
    balancer.succeeded('a', 5);
    for (const id of ['b', 'c']) balancer.succeeded(id, 50);
    balancer.succeeded('d', 500);
    const seen = counts(() => balancer.pick(pool), 1200);
    // d loses every pairing; a wins every pairing it is in (half of them).
    expect(seen['d']).toBeUndefined();
    expect(seen['a']).toBeGreaterThan(500);
    expect(seen['b'] + seen['c']).toBeGreaterThan(0);
  });

  it('scores by heartbeat figures until it has measured an instance, and unmeasured ones get tried', () => {
    const busy = instance('busy', { load: { averageLatency: 500, inflight: 30 } });
    const idle = instance('idle', { load: { averageLatency: 50, inflight: 0 } });
    expect(counts(() => balancer.pick([busy, idle]))).toEqual({ idle: 400 });
    balancer.succeeded('measured', 100);
    expect(counts(() => balancer.pick([instance('measured'), instance('fresh')]))).toEqual({ fresh: 400 });
  });

  it('prefers healthy over degraded, and skips ejected instances until their cooldown ends', () => {
    const healthy = instance('h');
    const degraded = instance('d', { status: 'degraded' });
    balancer.succeeded('h', 1000);
    balancer.succeeded('d', 1);
    expect(counts(() => balancer.pick([healthy, degraded]))).toEqual({ h: 400 });
    for (let i = 0; i < 3; i++) balancer.failed('h');
    expect(balancer.isEjected('h')).toBe(true);
    expect(counts(() => balancer.pick([healthy, degraded]))).toEqual({ d: 400 });
    now += 5000;
    expect(counts(() => balancer.pick([healthy, degraded]))).toEqual({ h: 400 });
  });

  it('ejects for twice as long on each repeat, and for Retry-After at once', () => {
    balancer.failed('a');
    balancer.failed('a');
    expect(balancer.isEjected('a')).toBe(false);
    balancer.failed('a');
    expect(balancer.statsOf('a').ejectedUntil - now).toBe(5000);
    now += 5000;
    for (let i = 0; i < 3; i++) balancer.failed('a');
    expect(balancer.statsOf('a').ejectedUntil - now).toBe(10_000);
    balancer.failed('b', 30_000);
    expect(balancer.statsOf('b').ejectedUntil - now).toBe(30_000);
    // Only the backend's own Retry-After makes a retry wait; a benched instance is simply avoided.
    expect(balancer.statsOf('b').retryAfterUntil - now).toBe(30_000);
    expect(balancer.statsOf('a').retryAfterUntil).toBe(0);
  });

  it('in panic (everything ejected) picks the one whose cooldown ends first', () => {
    balancer.failed('a', 60_000);
    balancer.failed('b', 5_000);
    expect(balancer.pick([instance('a'), instance('b')])?.serviceId).toBe('b');
  });

  it('best(n): measured by latency, then unmeasured, ties and the unmeasured by outstanding', () => {
    const pool = ['slow', 'fast', 'new-busy', 'new-idle', 'mid'].map((id) => instance(id));
    balancer.succeeded('slow', 300);
    balancer.succeeded('fast', 10);
    balancer.succeeded('mid', 50);
    balancer.started('new-busy');
    expect(balancer.best(pool, 10).map((i) => i.serviceId)).toEqual(['fast', 'mid', 'slow', 'new-idle', 'new-busy']);
    expect(balancer.best(pool, 2).map((i) => i.serviceId)).toEqual(['fast', 'mid']);
    expect(balancer.best(pool, 0)).toEqual([]);
  });

  it('latency EWMA moves 30% toward each new measurement; outstanding never goes below 0', () => {
    balancer.succeeded('a', 100);
    balancer.succeeded('a', 200);
    expect(balancer.statsOf('a').ewmaMs).toBeCloseTo(130);
    balancer.finished('a');
    expect(balancer.statsOf('a').outstanding).toBe(0);
  });

  it('forgets instances that left, except while requests to them are in flight', () => {
    balancer.succeeded('gone', 10);
    balancer.succeeded('busy', 10);
    balancer.started('busy');
    balancer.retainKnown(() => false);
    expect(balancer.peek('gone')).toBeUndefined();
    expect(balancer.peek('busy')).toBeDefined();
  });
});

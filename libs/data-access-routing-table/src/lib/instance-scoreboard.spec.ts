import { seededRandom } from '@switchboard/testing';
import { InstanceScoreboard, ScoredInstance } from './instance-scoreboard';

const instance = (serviceId: string, patch: Partial<ScoredInstance> = {}): ScoredInstance => ({ serviceId, status: 'healthy', load: {}, ...patch });

describe('InstanceScoreboard', () => {
  let now: number;
  let board: InstanceScoreboard;
  const counts = (pick: () => ScoredInstance | undefined, n = 400) => {
    const seen: Record<string, number> = {};
    for (let i = 0; i < n; i++) {
      const id = pick()?.serviceId ?? 'none';
      seen[id] = (seen[id] ?? 0) + 1;
    }
    return seen;
  };

  beforeEach(() => {
    now = 1_000_000;
    board = new InstanceScoreboard({ random: seededRandom(42), now: () => now });
  });

  it('p2c: with two candidates the lower (outstanding + 1) × latency EWMA always wins', () => {
    const [a, b] = [instance('a'), instance('b')];
    board.succeeded('a', 200);
    board.succeeded('b', 20);
    expect(counts(() => board.pick([a, b]))).toEqual({ b: 400 });
    for (let i = 0; i < 20; i++) board.started('b');
    expect(counts(() => board.pick([a, b]))).toEqual({ a: 400 });
    expect(counts(() => board.pickTwo([a, b]))).toEqual({ a: 400 });
  });

  it('p2c over many: the slow instance is chosen only when both random candidates are it (never, as they differ), the fast one most', () => {
    const pool = ['a', 'b', 'c', 'd'].map((id) => instance(id));
    board.succeeded('a', 5);
    for (const id of ['b', 'c']) board.succeeded(id, 50);
    board.succeeded('d', 500);
    const seen = counts(() => board.pick(pool), 1200);
    // d loses every pairing; a wins every pairing it is in (half of them).
    expect(seen['d']).toBeUndefined();
    expect(seen['a']).toBeGreaterThan(500);
    expect(seen['b'] + seen['c']).toBeGreaterThan(0);
  });

  it('score: (inflight + 1) × max(latency, 1) × (1 + 10 × errorRate), heartbeat figures until measured', () => {
    expect(board.score(instance('x', { load: { averageLatency: 50, inflight: 3, errorRate: 0.1 } }))).toBeCloseTo(4 * 50 * 2);
    expect(board.score(instance('never'))).toBe(1);
    board.succeeded('x', 20);
    board.started('x');
    // Measured latency replaces the heartbeat's; the larger of own and reported in-flight counts.
    expect(board.score(instance('x', { load: { averageLatency: 50, inflight: 0 } }))).toBe(2 * 20);
    expect(board.score(instance('x', { load: { averageLatency: 50, inflight: 5 } }))).toBe(6 * 20);
  });

  it('scores by heartbeat figures until it has measured an instance, and unmeasured ones get tried', () => {
    const busy = instance('busy', { load: { averageLatency: 500, inflight: 30 } });
    const idle = instance('idle', { load: { averageLatency: 50, inflight: 0 } });
    expect(counts(() => board.pick([busy, idle]))).toEqual({ idle: 400 });
    board.succeeded('measured', 100);
    expect(counts(() => board.pick([instance('measured'), instance('fresh')]))).toEqual({ fresh: 400 });
  });

  it('prefers healthy over degraded, and skips ejected instances until their cooldown ends', () => {
    const healthy = instance('h');
    const degraded = instance('d', { status: 'degraded' });
    board.succeeded('h', 1000);
    board.succeeded('d', 1);
    expect(counts(() => board.pick([healthy, degraded]))).toEqual({ h: 400 });
    for (let i = 0; i < 3; i++) board.failed('h');
    expect(board.isEjected('h')).toBe(true);
    expect(board.pool([healthy, degraded])).toEqual([degraded]);
    expect(counts(() => board.pick([healthy, degraded]))).toEqual({ d: 400 });
    now += 5000;
    expect(counts(() => board.pick([healthy, degraded]))).toEqual({ h: 400 });
  });

  it('ejects for twice as long on each repeat, and for Retry-After at once', () => {
    expect(board.failed('a')).toBe(false);
    expect(board.failed('a')).toBe(false);
    expect(board.isEjected('a')).toBe(false);
    expect(board.failed('a')).toBe(true);
    expect(board.statsOf('a').ejectedUntil - now).toBe(5000);
    now += 5000;
    for (let i = 0; i < 3; i++) board.failed('a');
    expect(board.statsOf('a').ejectedUntil - now).toBe(10_000);
    expect(board.failed('b', 30_000)).toBe(true);
    expect(board.statsOf('b').ejectedUntil - now).toBe(30_000);
    // Only the backend's own Retry-After makes a retry wait; a benched instance is simply avoided.
    expect(board.statsOf('b').retryAfterUntil - now).toBe(30_000);
    expect(board.statsOf('a').retryAfterUntil).toBe(0);
  });

  it('a policy given to failed overrides the default; cooldowns and Retry-After are capped', () => {
    const policy = { ejectAfterFailures: 1, baseEjectionMs: 1000, maxEjectionMs: 3000 };
    board.failed('a', undefined, policy);
    expect(board.statsOf('a').ejectedUntil - now).toBe(1000);
    now += 1000;
    board.failed('a', undefined, policy);
    expect(board.statsOf('a').ejectedUntil - now).toBe(2000);
    now += 2000;
    board.failed('a', undefined, policy);
    expect(board.statsOf('a').ejectedUntil - now).toBe(3000);
    board.failed('b', 60_000, policy);
    expect(board.statsOf('b').ejectedUntil - now).toBe(3000);
    board.failed('c', 10 * 60_000);
    expect(board.statsOf('c').ejectedUntil - now).toBe(5 * 60_000);
  });

  it('a success after the cooldown forgives one ejection, so the next cooldown is shorter again', () => {
    const policy = { ejectAfterFailures: 1, baseEjectionMs: 1000 };
    board.failed('a', undefined, policy);
    now += 1000;
    board.failed('a', undefined, policy);
    expect(board.statsOf('a').ejections).toBe(2);
    now += 2000;
    board.succeeded('a', 10);
    expect(board.statsOf('a').ejections).toBe(1);
    board.failed('a', undefined, policy);
    // The second ejection's 2 s again, not the third's 4 s.
    expect(board.statsOf('a').ejectedUntil - now).toBe(2000);
  });

  it('in panic (everything ejected) pick returns the one whose cooldown ends first', () => {
    const [a, b] = [instance('a'), instance('b')];
    board.failed('a', 60_000);
    board.failed('b', 5_000);
    expect(board.pool([a, b])).toBeUndefined();
    expect(board.leastEjected([a, b])).toBe(b);
    expect(board.pick([a, b])).toBe(b);
  });

  it('best(n): measured by latency, then unmeasured, ties and the unmeasured by outstanding', () => {
    const pool = ['slow', 'fast', 'new-busy', 'new-idle', 'mid'].map((id) => instance(id));
    board.succeeded('slow', 300);
    board.succeeded('fast', 10);
    board.succeeded('mid', 50);
    board.started('new-busy');
    expect(board.best(pool, 10).map((i) => i.serviceId)).toEqual(['fast', 'mid', 'slow', 'new-idle', 'new-busy']);
    expect(board.best(pool, 2).map((i) => i.serviceId)).toEqual(['fast', 'mid']);
    expect(board.best(pool, 0)).toEqual([]);
  });

  it('latency EWMA moves 30% toward each new measurement; outstanding never goes below 0', () => {
    board.succeeded('a', 100);
    board.succeeded('a', 200);
    expect(board.statsOf('a').ewmaMs).toBeCloseTo(130);
    board.finished('a');
    expect(board.statsOf('a').outstanding).toBe(0);
  });

  it('forgets instances that left, except while requests to them are in flight', () => {
    board.succeeded('gone', 10);
    board.succeeded('busy', 10);
    board.started('busy');
    board.retainKnown(() => false);
    expect(board.peek('gone')).toBeUndefined();
    expect(board.peek('busy')).toBeDefined();
  });
});

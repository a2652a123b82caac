/**
 * The SDK's own balancer. The router's BalancerService is a Nest provider bound to its metrics and
 * routing policies (strategies, affinity, panic counters); its p2c core is four lines over that state.
 * Moving it into a lib would mean changing the router's file and its spec for four lines, so the SDK
 * keeps the same rules here, on the same figures:
 * - healthy instances before degraded ones; ejected instances only when every one is ejected (panic),
 *   then the one whose cooldown ends first;
 * - power of two choices: two random candidates, the lower (outstanding + 1) × latency EWMA
 *   (× error-rate penalty) wins; heartbeat figures seed the latency and add the instance's own
 *   in-flight count; an instance never measured scores as 1 ms, so it gets tried instead of starved;
 * - ejection after `ejectAfterFailures` failures in a row, for a cooldown doubling per ejection
 *   (capped); `Retry-After` ejects at once for that long.
 */

/** @internal The part of an instance the balancer reads. */
export interface Balanceable {
  serviceId: string;
  status: string;
  load: { averageLatency?: number; inflight?: number; errorRate?: number };
}

/** @internal What this client has seen of one instance. */
export interface InstanceStats {
  outstanding: number;
  /** Exponentially weighted moving average of time to first byte, ms. */
  ewmaMs?: number;
  consecutiveFailures: number;
  ejections: number;
  ejectedUntil: number;
  /** Until when the instance itself asked to be left alone (`Retry-After`). */
  retryAfterUntil: number;
}

/** @internal */
export interface BalancerOptions {
  /** Uniform in [0, 1); tests pass a seeded one. */
  random?: () => number;
  now?: () => number;
  /** Default 3, as the router. */
  ejectAfterFailures?: number;
  /** Default 5000 ms, as the router; doubles per ejection. */
  ejectBaseMs?: number;
  /** Default 5 min. */
  maxEjectionMs?: number;
}

const EWMA_ALPHA = 0.3;
const UNMEASURED_LATENCY_MS = 1;

/** @internal */
export class ClientBalancer {
  private readonly stats = new Map<string, InstanceStats>();
  private readonly random: () => number;
  private readonly now: () => number;
  private readonly ejectAfterFailures: number;
  private readonly ejectBaseMs: number;
  private readonly maxEjectionMs: number;

  constructor(options: BalancerOptions = {}) {
    this.random = options.random ?? Math.random;
    this.now = options.now ?? Date.now;
    this.ejectAfterFailures = options.ejectAfterFailures ?? 3;
    this.ejectBaseMs = options.ejectBaseMs ?? 5000;
    this.maxEjectionMs = options.maxEjectionMs ?? 5 * 60_000;
  }

  statsOf(serviceId: string): InstanceStats {
    let s = this.stats.get(serviceId);
    if (!s) {
      s = { outstanding: 0, consecutiveFailures: 0, ejections: 0, ejectedUntil: 0, retryAfterUntil: 0 };
      this.stats.set(serviceId, s);
    }
    return s;
  }

  /** Stats if any were kept (no entry is created). */
  peek(serviceId: string): InstanceStats | undefined {
    return this.stats.get(serviceId);
  }

  isEjected(serviceId: string, now = this.now()): boolean {
    return (this.stats.get(serviceId)?.ejectedUntil ?? 0) > now;
  }

  /** One instance among `candidates` (routable ones); undefined when there are none. */
  pick<T extends Balanceable>(candidates: readonly T[]): T | undefined {
    if (candidates.length <= 1) return candidates[0];
    const now = this.now();
    // The usual case, without allocating: every candidate healthy and none benched.
    let usual = true;
    for (const c of candidates) {
      if (c.status !== 'healthy' || this.isEjected(c.serviceId, now)) {
        usual = false;
        break;
      }
    }
    if (usual) return this.p2c(candidates);
    const live: T[] = [];
    const healthy: T[] = [];
    for (const c of candidates) {
      if (this.isEjected(c.serviceId, now)) continue;
      live.push(c);
      if (c.status === 'healthy') healthy.push(c);
    }
    if (!live.length) {
      // Panic: everything is ejected; the least-bad one is better than failing outright.
      let best = candidates[0];
      for (const c of candidates) if (this.statsOf(c.serviceId).ejectedUntil < this.statsOf(best.serviceId).ejectedUntil) best = c;
      return best;
    }
    return this.p2c(healthy.length ? healthy : live);
  }

  private p2c<T extends Balanceable>(pool: readonly T[]): T {
    if (pool.length === 1) return pool[0];
    const a = Math.floor(this.random() * pool.length);
    let b = Math.floor(this.random() * (pool.length - 1));
    if (b >= a) b++;
    return this.score(pool[a]) <= this.score(pool[b]) ? pool[a] : pool[b];
  }

  score(instance: Balanceable): number {
    const s = this.stats.get(instance.serviceId);
    const latency = s?.ewmaMs ?? instance.load.averageLatency ?? UNMEASURED_LATENCY_MS;
    const inflight = Math.max(s?.outstanding ?? 0, instance.load.inflight ?? 0);
    return (inflight + 1) * Math.max(latency, 1) * (1 + 10 * (instance.load.errorRate ?? 0));
  }

  /**
   * The `n` best by measured latency (EWMA, ascending); instances not measured yet after the measured
   * ones; ties (and the unmeasured) by outstanding requests.
   */
  best<T extends Balanceable>(candidates: readonly T[], n: number): T[] {
    const keyed = candidates.map((instance) => {
      const s = this.stats.get(instance.serviceId);
      return { instance, latency: s?.ewmaMs ?? Number.POSITIVE_INFINITY, outstanding: s?.outstanding ?? 0 };
    });
    keyed.sort((x, y) => (x.latency === y.latency ? x.outstanding - y.outstanding : x.latency - y.latency));
    return keyed.slice(0, Math.max(0, n)).map((k) => k.instance);
  }

  started(serviceId: string): void {
    this.statsOf(serviceId).outstanding++;
  }

  finished(serviceId: string): void {
    const s = this.statsOf(serviceId);
    s.outstanding = Math.max(0, s.outstanding - 1);
  }

  /** An answer began: record its latency to first byte, clear the failure streak. */
  succeeded(serviceId: string, firstByteMs: number): void {
    const s = this.statsOf(serviceId);
    s.ewmaMs = s.ewmaMs === undefined ? firstByteMs : s.ewmaMs + EWMA_ALPHA * (firstByteMs - s.ewmaMs);
    s.consecutiveFailures = 0;
    if (s.ejectedUntil <= this.now()) s.ejections = Math.max(0, s.ejections - 1);
  }

  /** A connect error, timeout, 5xx or 429. */
  failed(serviceId: string, retryAfterMs?: number): void {
    const s = this.statsOf(serviceId);
    s.consecutiveFailures++;
    const now = this.now();
    if (retryAfterMs !== undefined && retryAfterMs > 0) {
      s.retryAfterUntil = Math.max(s.retryAfterUntil, now + Math.min(retryAfterMs, this.maxEjectionMs));
      s.ejectedUntil = Math.max(s.ejectedUntil, s.retryAfterUntil);
    } else if (s.consecutiveFailures >= this.ejectAfterFailures && s.ejectedUntil <= now) {
      s.ejections++;
      s.ejectedUntil = now + Math.min(this.ejectBaseMs * 2 ** (s.ejections - 1), this.maxEjectionMs);
      s.consecutiveFailures = 0;
    }
  }

  /** Forgets instances that left the table (and have nothing in flight). */
  retainKnown(known: (serviceId: string) => boolean): void {
    for (const [id, s] of this.stats) if (s.outstanding === 0 && !known(id)) this.stats.delete(id);
  }
}

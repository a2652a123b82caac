/**
 * What a caller has seen of each instance it sends requests to, and the choice made from it. Shared
 * by the router's BalancerService (which adds per-model strategies, metrics and panic counting) and
 * the SDK's client balancer, so both balance by the same rules on the same figures:
 * - healthy instances before degraded ones; ejected instances only when every one is ejected (panic),
 *   then the one whose cooldown ends first;
 * - power of two choices: two random candidates, the lower (outstanding + 1) × latency EWMA
 *   (× error-rate penalty) wins; heartbeat figures seed the latency and add the instance's own
 *   in-flight count; an instance never measured scores as 1 ms, so it gets tried instead of starved;
 * - ejection after `ejectAfterFailures` failures in a row, for a cooldown doubling per ejection
 *   (capped); `Retry-After` from the instance ejects at once for that long.
 * Plain class: no Nest, no metrics; randomness and clock injectable for tests.
 */

/** The part of an instance the scoreboard reads (a RoutedInstance has it). */
export interface ScoredInstance {
  serviceId: string;
  status: string;
  load: { averageLatency?: number; inflight?: number; errorRate?: number };
}

/** What this process has seen of one instance (per process; replicas learn independently). */
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

/** When a failing instance is ejected, and for how long. */
export interface EjectionPolicy {
  /** Failures in a row that eject. */
  ejectAfterFailures: number;
  /** Cooldown of the first ejection, ms; doubles with each further one. */
  baseEjectionMs: number;
  /** Cap on any cooldown, Retry-After included; default 5 min. */
  maxEjectionMs?: number;
}

export interface ScoreboardOptions {
  /** Uniform in [0, 1); tests pass a seeded one. Default Math.random. */
  random?: () => number;
  /** Default Date.now. */
  now?: () => number;
  /** What `failed` judges by when not given a policy of its own. Default: 3 failures, 5 s, 5 min. */
  ejection?: EjectionPolicy;
}

const EWMA_ALPHA = 0.3;
/** Optimistic for an instance not measured yet, so p2c tries it instead of starving it. */
const UNMEASURED_LATENCY_MS = 1;
const MAX_EJECTION_MS = 5 * 60_000;
const DEFAULT_EJECTION: EjectionPolicy = { ejectAfterFailures: 3, baseEjectionMs: 5000, maxEjectionMs: MAX_EJECTION_MS };

export class InstanceScoreboard {
  private readonly stats = new Map<string, InstanceStats>();
  private readonly random: () => number;
  private readonly now: () => number;
  private readonly ejection: EjectionPolicy;

  constructor(options: ScoreboardOptions = {}) {
    this.random = options.random ?? Math.random;
    this.now = options.now ?? Date.now;
    this.ejection = options.ejection ?? DEFAULT_EJECTION;
  }

  /** The stats of `serviceId`, created (empty) when none were kept. */
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

  /**
   * The instances to choose among: the healthy ones not ejected, else every one not ejected;
   * undefined when all are ejected (panic: see {@link leastEjected}). `candidates` itself in the usual
   * case (all healthy, none ejected), without allocating.
   */
  pool<T extends ScoredInstance>(candidates: readonly T[]): readonly T[] | undefined {
    const now = this.now();
    let usual = true;
    for (const c of candidates) {
      if (c.status !== 'healthy' || this.isEjected(c.serviceId, now)) {
        usual = false;
        break;
      }
    }
    if (usual) return candidates;
    const live: T[] = [];
    const healthy: T[] = [];
    for (const c of candidates) {
      if (this.isEjected(c.serviceId, now)) continue;
      live.push(c);
      if (c.status === 'healthy') healthy.push(c);
    }
    if (!live.length) return undefined;
    return healthy.length ? healthy : live;
  }

  /** The candidate whose cooldown ends first (the first of equals): the least-bad one in panic. */
  leastEjected<T extends ScoredInstance>(candidates: readonly T[]): T | undefined {
    let best = candidates[0];
    let bestUntil = best === undefined ? 0 : (this.stats.get(best.serviceId)?.ejectedUntil ?? 0);
    for (let i = 1; i < candidates.length; i++) {
      const until = this.stats.get(candidates[i].serviceId)?.ejectedUntil ?? 0;
      if (until < bestUntil) {
        best = candidates[i];
        bestUntil = until;
      }
    }
    return best;
  }

  /** One instance among `candidates` by p2c over {@link pool}, or {@link leastEjected} in panic; undefined when there are none. */
  pick<T extends ScoredInstance>(candidates: readonly T[]): T | undefined {
    if (candidates.length <= 1) return candidates[0];
    const pool = this.pool(candidates);
    return pool ? this.pickTwo(pool) : this.leastEjected(candidates);
  }

  /** Power of two choices: two distinct random members of `pool` (non-empty), the lower score wins. */
  pickTwo<T extends ScoredInstance>(pool: readonly T[]): T {
    if (pool.length === 1) return pool[0];
    const a = Math.floor(this.random() * pool.length);
    let b = Math.floor(this.random() * (pool.length - 1));
    if (b >= a) b++;
    return this.score(pool[a]) <= this.score(pool[b]) ? pool[a] : pool[b];
  }

  /** (inflight + 1) × max(latency, 1) × (1 + 10 × errorRate); heartbeat figures fill in until measured. */
  score(instance: ScoredInstance): number {
    const s = this.stats.get(instance.serviceId);
    const latency = s?.ewmaMs ?? instance.load.averageLatency ?? UNMEASURED_LATENCY_MS;
    const inflight = Math.max(s?.outstanding ?? 0, instance.load.inflight ?? 0);
    return (inflight + 1) * Math.max(latency, 1) * (1 + 10 * (instance.load.errorRate ?? 0));
  }

  /**
   * The `n` best by measured latency (EWMA, ascending); instances not measured yet after the measured
   * ones; ties (and the unmeasured) by outstanding requests.
   */
  best<T extends ScoredInstance>(candidates: readonly T[], n: number): T[] {
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

  /** A response began: record its latency to first byte, clear the failure streak. */
  succeeded(serviceId: string, firstByteMs: number): void {
    const s = this.statsOf(serviceId);
    s.ewmaMs = s.ewmaMs === undefined ? firstByteMs : s.ewmaMs + EWMA_ALPHA * (firstByteMs - s.ewmaMs);
    s.consecutiveFailures = 0;
    if (s.ejectedUntil <= this.now()) s.ejections = Math.max(0, s.ejections - 1);
  }

  /**
   * A connect error, timeout or 5xx (or 429). Ejects after `ejectAfterFailures` in a row, for a
   * cooldown that doubles with each ejection; `retryAfterMs` (the instance's `Retry-After`) ejects at
   * once for that long. Returns whether this failure ejected (or extended an ejection by Retry-After).
   * @param policy default: the one this scoreboard was made with
   */
  failed(serviceId: string, retryAfterMs?: number, policy: EjectionPolicy = this.ejection): boolean {
    const s = this.statsOf(serviceId);
    const maxMs = policy.maxEjectionMs ?? MAX_EJECTION_MS;
    s.consecutiveFailures++;
    const now = this.now();
    if (retryAfterMs !== undefined && retryAfterMs > 0) {
      s.retryAfterUntil = Math.max(s.retryAfterUntil, now + Math.min(retryAfterMs, maxMs));
      s.ejectedUntil = Math.max(s.ejectedUntil, s.retryAfterUntil);
      return true;
    }
    if (s.consecutiveFailures >= policy.ejectAfterFailures && s.ejectedUntil <= now) {
      s.ejections++;
      s.ejectedUntil = now + Math.min(policy.baseEjectionMs * 2 ** (s.ejections - 1), maxMs);
      s.consecutiveFailures = 0;
      return true;
    }
    return false;
  }

  /** Forgets instances that left the table (and have nothing in flight). */
  retainKnown(known: (serviceId: string) => boolean): void {
    for (const [id, s] of this.stats) if (s.outstanding === 0 && !known(id)) this.stats.delete(id);
  }
}

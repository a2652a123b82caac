import { Injectable } from '@nestjs/common';
import { createHash } from 'node:crypto';
import type { RoutedInstance } from '@switchboard/routing-table';
import type { ResolvedPolicy } from '../config/routing-policy.config';
import { RouterMetricsService } from '../observability/router-metrics.service';

/** What this router has seen of one instance (per process; replicas learn independently). */
export interface InstanceStats {
  outstanding: number;
  /** Exponentially weighted moving average of time to first byte, ms. */
  ewmaMs?: number;
  consecutiveFailures: number;
  ejections: number;
  ejectedUntil: number;
}

const EWMA_ALPHA = 0.3;
/** Optimistic for an instance not measured yet, so p2c tries it instead of starving it. */
const UNMEASURED_LATENCY_MS = 1;
const MAX_EJECTION_MS = 5 * 60_000;

/**
 * Chooses an instance among the routable ones of a model, by the model's strategy, and keeps the
 * per-instance statistics the strategies and passive ejection need.
 * - Healthy instances before degraded ones; ejected instances only in panic (all ejected), then the
 *   one whose cooldown ends first.
 * - p2c: two random candidates, the lower (outstanding + 1) × latency EWMA (× error-rate penalty) wins;
 *   heartbeat figures seed the latency and add the instance's own in-flight count.
 */
@Injectable()
export class BalancerService {
  private readonly stats = new Map<string, InstanceStats>();
  private readonly cursors = new Map<string, number>();

  constructor(private readonly metrics: RouterMetricsService) {}

  statsOf(serviceId: string): InstanceStats {
    let s = this.stats.get(serviceId);
    if (!s) {
      s = { outstanding: 0, consecutiveFailures: 0, ejections: 0, ejectedUntil: 0 };
      this.stats.set(serviceId, s);
    }
    return s;
  }

  isEjected(serviceId: string, now = Date.now()): boolean {
    return this.statsOf(serviceId).ejectedUntil > now;
  }

  /**
   * @param candidates routable instances not yet tried for this request
   * @param affinityKey session key, for the affinity strategy
   */
  pick(model: string, candidates: readonly RoutedInstance[], policy: ResolvedPolicy, affinityKey?: string): RoutedInstance | undefined {
    if (!candidates.length) return undefined;
    const now = Date.now();
    const live = candidates.filter((i) => !this.isEjected(i.serviceId, now));
    if (!live.length) {
      // Panic: everything is ejected; the least-bad one is better than failing outright.
      this.metrics.panics.inc({ model });
      return [...candidates].sort((a, b) => this.statsOf(a.serviceId).ejectedUntil - this.statsOf(b.serviceId).ejectedUntil)[0];
    }
    const healthy = live.filter((i) => i.status === 'healthy');
    const pool = healthy.length ? healthy : live;
    switch (policy.strategy) {
      case 'round-robin': {
        const n = this.cursors.get(model) ?? 0;
        this.cursors.set(model, n + 1);
        return pool[n % pool.length];
      }
      case 'least-outstanding':
        return minBy(pool, (i) => this.statsOf(i.serviceId).outstanding + Math.random() * 0.01);
      case 'affinity':
        return affinityKey ? rendezvous(pool, affinityKey) : this.p2c(pool);
      default:
        return this.p2c(pool);
    }
  }

  private p2c(pool: readonly RoutedInstance[]): RoutedInstance {
    if (pool.length === 1) return pool[0];
    const a = Math.floor(Math.random() * pool.length);
    let b = Math.floor(Math.random() * (pool.length - 1));
    if (b >= a) b++;
    return this.score(pool[a]) <= this.score(pool[b]) ? pool[a] : pool[b];
  }

  private score(instance: RoutedInstance): number {
    const s = this.statsOf(instance.serviceId);
    const latency = s.ewmaMs ?? instance.load.averageLatency ?? UNMEASURED_LATENCY_MS;
    const inflight = Math.max(s.outstanding, instance.load.inflight ?? 0);
    return (inflight + 1) * Math.max(latency, 1) * (1 + 10 * (instance.load.errorRate ?? 0));
  }

  started(serviceId: string): void {
    this.statsOf(serviceId).outstanding++;
  }

  finished(serviceId: string): void {
    const s = this.statsOf(serviceId);
    s.outstanding = Math.max(0, s.outstanding - 1);
  }

  /** A response began: record latency to first byte, clear the failure streak. */
  succeeded(serviceId: string, firstByteMs: number): void {
    const s = this.statsOf(serviceId);
    s.ewmaMs = s.ewmaMs === undefined ? firstByteMs : s.ewmaMs + EWMA_ALPHA * (firstByteMs - s.ewmaMs);
    s.consecutiveFailures = 0;
    if (s.ejectedUntil <= Date.now()) s.ejections = Math.max(0, s.ejections - 1);
  }

  /**
   * A connect error, timeout or 5xx. Ejects after `ejectAfterFailures` in a row, for a cooldown
   * that doubles with each ejection; `Retry-After` from the backend ejects at once for that long.
   */
  failed(model: string, serviceId: string, policy: ResolvedPolicy, retryAfterMs?: number): void {
    const s = this.statsOf(serviceId);
    s.consecutiveFailures++;
    const now = Date.now();
    if (retryAfterMs !== undefined && retryAfterMs > 0) {
      s.ejectedUntil = Math.max(s.ejectedUntil, now + Math.min(retryAfterMs, MAX_EJECTION_MS));
      this.metrics.ejections.inc({ model, instance: serviceId });
    } else if (s.consecutiveFailures >= policy.ejectAfterFailures && s.ejectedUntil <= now) {
      s.ejections++;
      s.ejectedUntil = now + Math.min(policy.ejectBaseMs * 2 ** (s.ejections - 1), MAX_EJECTION_MS);
      s.consecutiveFailures = 0;
      this.metrics.ejections.inc({ model, instance: serviceId });
    }
  }

  /** Forgets instances that left the table (and have nothing in flight). */
  retainKnown(known: (serviceId: string) => boolean): void {
    for (const [id, s] of this.stats) if (s.outstanding === 0 && !known(id)) this.stats.delete(id);
  }
}

function minBy<T>(items: readonly T[], f: (t: T) => number): T {
  let best = items[0];
  let bestScore = f(best);
  for (let i = 1; i < items.length; i++) {
    const score = f(items[i]);
    if (score < bestScore) {
      best = items[i];
      bestScore = score;
    }
  }
  return best;
}

/** Rendezvous (highest random weight) hashing: a key keeps its instance while that instance stays, and only its sessions move when it goes. */
function rendezvous(pool: readonly RoutedInstance[], key: string): RoutedInstance {
  return minBy(pool, (i) => -createHash('sha1').update(`${key}\u0000${i.serviceId}`).digest().readUInt32BE(0));
}

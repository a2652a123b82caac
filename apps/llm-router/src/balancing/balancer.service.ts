import { Injectable } from '@nestjs/common';
import { createHash } from 'node:crypto';
import { InstanceScoreboard, InstanceStats, RoutedInstance } from '@switchboard/routing-table';
import type { ResolvedPolicy } from '../config/routing-policy.config';
import { RouterMetricsService } from '../observability/router-metrics.service';

export type { InstanceStats };

/**
 * Chooses an instance among the routable ones of a model, by the model's strategy. The per-instance
 * statistics, the p2c score and passive ejection are the shared InstanceScoreboard's (the SDK's client
 * balances by the same one); this adds the per-model policies, strategies, metrics and panic counting.
 * - Healthy instances before degraded ones; ejected instances only in panic (all ejected), then the
 *   one whose cooldown ends first.
 * - p2c: two random candidates, the lower (outstanding + 1) × latency EWMA (× error-rate penalty) wins;
 *   heartbeat figures seed the latency and add the instance's own in-flight count.
 */
@Injectable()
export class BalancerService {
  private readonly board = new InstanceScoreboard();
  private readonly cursors = new Map<string, number>();

  constructor(private readonly metrics: RouterMetricsService) {}

  statsOf(serviceId: string): InstanceStats {
    return this.board.statsOf(serviceId);
  }

  isEjected(serviceId: string, now = Date.now()): boolean {
    return this.board.isEjected(serviceId, now);
  }

  /**
   * @param candidates routable instances not yet tried for this request
   * @param affinityKey session key, for the affinity strategy
   */
  pick(model: string, candidates: readonly RoutedInstance[], policy: ResolvedPolicy, affinityKey?: string): RoutedInstance | undefined {
    if (!candidates.length) return undefined;
    const pool = this.board.pool(candidates);
    if (!pool) {
      // Panic: everything is ejected; the least-bad one is better than failing outright.
      this.metrics.panics.inc({ model });
      return this.board.leastEjected(candidates);
    }
    switch (policy.strategy) {
      case 'round-robin': {
        const n = this.cursors.get(model) ?? 0;
        this.cursors.set(model, n + 1);
        return pool[n % pool.length];
      }
      case 'least-outstanding':
        return minBy(pool, (i) => (this.board.peek(i.serviceId)?.outstanding ?? 0) + Math.random() * 0.01);
      case 'affinity':
        return affinityKey ? rendezvous(pool, affinityKey) : this.board.pickTwo(pool);
      default:
        return this.board.pickTwo(pool);
    }
  }

  started(serviceId: string): void {
    this.board.started(serviceId);
  }

  finished(serviceId: string): void {
    this.board.finished(serviceId);
  }

  /** A response began: record latency to first byte, clear the failure streak. */
  succeeded(serviceId: string, firstByteMs: number): void {
    this.board.succeeded(serviceId, firstByteMs);
  }

  /**
   * A connect error, timeout or 5xx. Ejects after the model's `ejectAfterFailures` in a row, for a
   * cooldown from its `ejectBaseMs` that doubles with each ejection; `Retry-After` from the backend
   * ejects at once for that long. Each ejection is counted.
   */
  failed(model: string, serviceId: string, policy: ResolvedPolicy, retryAfterMs?: number): void {
    if (this.board.failed(serviceId, retryAfterMs, { ejectAfterFailures: policy.ejectAfterFailures, baseEjectionMs: policy.ejectBaseMs })) {
      this.metrics.ejections.inc({ model, instance: serviceId });
    }
  }

  /** Forgets instances that left the table (and have nothing in flight). */
  retainKnown(known: (serviceId: string) => boolean): void {
    this.board.retainKnown(known);
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

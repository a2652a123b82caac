/**
 * The SDK's client balancer: the shared InstanceScoreboard (the router balances by the same one) with
 * this client's ejection settings. The rules, on the same figures as the router:
 * - healthy instances before degraded ones; ejected instances only when every one is ejected (panic),
 *   then the one whose cooldown ends first;
 * - power of two choices: two random candidates, the lower (outstanding + 1) × latency EWMA
 *   (× error-rate penalty) wins; heartbeat figures seed the latency and add the instance's own
 *   in-flight count; an instance never measured scores as 1 ms, so it gets tried instead of starved;
 * - ejection after `ejectAfterFailures` failures in a row, for a cooldown doubling per ejection
 *   (capped); `Retry-After` ejects at once for that long.
 * Everything here is @internal: the SDK's public types (SwitchboardInstance.measured) are its own and
 * never name the routing-table lib's.
 */
import { InstanceScoreboard } from '@switchboard/routing-table';

/** @internal The part of an instance the balancer reads. */
export interface Balanceable {
  serviceId: string;
  status: string;
  load: { averageLatency?: number; inflight?: number; errorRate?: number };
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

/** @internal The scoreboard with this client's ejection settings (`failed(serviceId, retryAfterMs?)`). */
export class ClientBalancer extends InstanceScoreboard {
  constructor(options: BalancerOptions = {}) {
    super({
      random: options.random,
      now: options.now,
      ejection: {
        ejectAfterFailures: options.ejectAfterFailures ?? 3,
        baseEjectionMs: options.ejectBaseMs ?? 5000,
        maxEjectionMs: options.maxEjectionMs ?? 5 * 60_000,
      },
    });
  }
}

import { Inject, Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { HealthCheckRoundSummary, HealthStatus } from '@switchboard/contracts';
import { RoutedInstance, RoutingTable, TableChange } from '@switchboard/routing-table';
import type { HealthProberConfig } from '../config/health-prober.config';
import { HEALTH_PROBER_CONFIG } from '../health-prober.tokens';
import { MembershipService } from '../membership/membership.service';
import { ProberMetricsService } from '../observability/prober-metrics.service';
import { checkSettings, CheckSettings } from './check-settings.util';
import { DueItem, DueQueue } from './due-queue.util';
import { CheckState, heartbeatVerdict, isDowngrade, newCheckState, ProbeOutcome, probeVerdict, record, worst } from './health-evaluator.util';
import { checkReason, transitionReason } from './probe-reason.util';
import { probe, ProbeResult } from './probe.util';
import { RegistryCommandsClient } from './registry-commands-client.service';
import { PreservationChange, SelfPreservationService } from './self-preservation.service';

/** One instance as this replica tracks it; queued (DueItem) at its next wake while it is ours. */
interface Tracked extends DueItem {
  serviceId: string;
  environment: string;
  state: CheckState;
  /** The instance's slot: checks are due at slot, slot + interval, … (jittered around it, never drifting). */
  slot: number;
  nextAt: number;
  settings?: CheckSettings;
  settingsRevision?: number;
  inFlight: boolean;
  owned: boolean;
  /** Ownership was decided for the current membership (a manual round may track an instance before a tick has). */
  ownershipKnown: boolean;
  lastOutcome?: ProbeOutcome;
  /** The last check's detail (refused, timeout, …): for our log only, never reported. */
  lastDetail?: string;
  /** The status we last asked registry-api for, until the table shows it. */
  reported?: { status: HealthStatus; at: number };
  pruneRequested?: boolean;
  /** A downgrade is being held by self-preservation (counted once). */
  held?: boolean;
  /** Its heartbeat had expired at the last evaluation: a heartbeat now must be judged at once. */
  silent?: boolean;
  /** Its wake was planned knowing a heartbeat (so it comes by the TTL's end); the first heartbeat otherwise re-plans it. */
  heartbeatPlanned?: boolean;
}

const TICK_MS = 100;
const PRESERVATION_REFRESH_MS = 50;
const REPORT_RETRY_MS = 5000;
/**
 * `prober.cmd.runChecks` requests that may wait for the next round while one runs; more are refused
 * at once ({@link RoundQueueFullError}). The subject is anyone's to publish on: without this, every
 * request would start its own round over every instance, and a flood would queue probes without end.
 */
export const MAX_WAITING_ROUND_REQUESTS = 100;

/** A run-now request refused because {@link MAX_WAITING_ROUND_REQUESTS} already wait for the next round. */
export class RoundQueueFullError extends Error {
  constructor() {
    super(`${MAX_WAITING_ROUND_REQUESTS} requests already wait for the next round; try again when it is done`);
    this.name = 'RoundQueueFullError';
  }
}

/**
 * Judges the health of every instance this replica owns: active checks on an interval with jitter,
 * heartbeat expiry, thresholds against flapping, mass-failure protection; reports each transition
 * to registry-api (the only writer) and prunes instances silent or failing for too long.
 */
@Injectable()
export class ProberService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(ProberService.name);
  private readonly tracked = new Map<string, Tracked>();
  private readonly preservationAt = new Map<string, number>();
  /** Owned instances by their next wake: a check due, or a time at which a verdict may change. */
  private readonly due = new DueQueue<Tracked>();
  /** Instances an event changed since the last tick; `replanAll` after a snapshot or a membership change. */
  private readonly changed = new Set<string>();
  private replanAll = true;
  private plannedVersion = -1;
  private ownedCount = 0;
  /** Per environment, the instances whose downgrade self-preservation holds (judged again when it ends). */
  private readonly heldByEnvironment = new Map<string, Set<Tracked>>();
  private unwatch: (() => void)[] = [];
  private timer?: NodeJS.Timeout;
  private active = 0;
  private readonly waiting: (() => void)[] = [];
  private stopped = false;
  /** The manual round running now, and the one queued after it with how many requests wait for it. */
  private currentRound?: Promise<HealthCheckRoundSummary>;
  private nextRound?: { summary: Promise<HealthCheckRoundSummary>; waiters: number };

  constructor(
    private readonly table: RoutingTable,
    private readonly membership: MembershipService,
    private readonly registry: RegistryCommandsClient,
    private readonly metrics: ProberMetricsService,
    private readonly preservation: SelfPreservationService,
    @Inject(HEALTH_PROBER_CONFIG) private readonly config: HealthProberConfig,
  ) {}

  onApplicationBootstrap(): void {
    this.unwatch = [
      this.table.onChange((change?: TableChange) => {
        if (change) this.changed.add(change.serviceId);
        else this.replanAll = true;
      }),
      // Most heartbeats change nothing here: the wake planned from an earlier one re-plans from the
      // latest when it comes. Only a silent instance, or one planned before it ever heartbeated, needs a look.
      this.table.watchHeartbeats((instance) => {
        const t = this.tracked.get(instance.serviceId);
        if (t?.owned && (t.silent || !t.heartbeatPlanned)) this.changed.add(instance.serviceId);
      }),
    ];
    this.timer = setInterval(() => this.tick(), TICK_MS);
  }

  onApplicationShutdown(): void {
    this.stopped = true;
    clearInterval(this.timer);
    for (const unwatch of this.unwatch) unwatch();
  }

  /**
   * `prober.cmd.runChecks`: check every instance now (whoever owns it), apply the results, summarise.
   * At most one round runs and one waits: a request arriving during a round shares the next one
   * (which starts after it, so its checks are newer than the request), up to
   * {@link MAX_WAITING_ROUND_REQUESTS}; beyond that it is refused ({@link RoundQueueFullError}).
   * Counted in `prober_round_requests_total{outcome="ran"|"coalesced"|"shed"}`.
   */
  runRound(): Promise<HealthCheckRoundSummary> {
    if (!this.currentRound && !this.nextRound) {
      this.metrics.roundRequests.inc({ outcome: 'ran' });
      return this.startRound();
    }
    if (this.nextRound) {
      if (this.nextRound.waiters >= MAX_WAITING_ROUND_REQUESTS) {
        this.metrics.roundRequests.inc({ outcome: 'shed' });
        return Promise.reject(new RoundQueueFullError());
      }
      this.nextRound.waiters++;
      this.metrics.roundRequests.inc({ outcome: 'coalesced' });
      return this.nextRound.summary;
    }
    this.metrics.roundRequests.inc({ outcome: 'ran' });
    const summary = (this.currentRound as Promise<HealthCheckRoundSummary>)
      .then(
        () => undefined,
        () => undefined,
      )
      .then(() => {
        this.nextRound = undefined;
        return this.startRound();
      });
    this.nextRound = { summary, waiters: 1 };
    return summary;
  }

  private startRound(): Promise<HealthCheckRoundSummary> {
    const round = this.checkAll().finally(() => {
      if (this.currentRound === round) this.currentRound = undefined;
    });
    this.currentRound = round;
    return round;
  }

  private async checkAll(): Promise<HealthCheckRoundSummary> {
    const started = Date.now();
    const instances = [...this.table.all()].filter((i) => this.settingsOf(i).enabled);
    const outcomes = await Promise.all(instances.map((i) => this.check(i, this.trackedOf(i, started))));
    const count = (o: ProbeOutcome) => outcomes.filter((x) => x === o).length;
    return { checked: instances.length, healthy: count('pass'), degraded: count('warn'), unhealthy: count('fail'), tookMs: Date.now() - started };
  }

  /**
   * Every TICK_MS: only what is due. Owned instances sit in a min-heap by their next wake (a check's
   * slot, or the next time a verdict can change without news: a heartbeat's TTL, offline, pruning, a
   * report retry); events, heartbeats of silent instances and the end of a hold wake them early. A
   * tick therefore costs O(due · log n), not O(n); only a snapshot or a membership change re-plans
   * every instance.
   */
  tick(): void {
    if (this.stopped) return;
    const now = Date.now();
    if (this.replanAll || this.plannedVersion !== this.membership.version) this.replanEverything(now);
    for (const id of this.changed) this.sync(id, now);
    this.changed.clear();
    this.applyPreservation(this.preservation.judge(), now);
    this.metrics.owned.set(this.ownedCount);

    for (let t = this.due.popDue(now); t; t = this.due.popDue(now)) {
      const instance = this.table.get(t.serviceId);
      if (!instance) {
        this.forget(t);
        continue;
      }
      const settings = this.settingsOf(instance, t);
      if (settings.enabled && !t.inFlight && t.nextAt <= now) {
        // The next slot follows the previous one, not the (late) tick: load stays spread over the
        // interval and the mean interval stays exact.
        t.slot = Math.max(t.slot + settings.intervalMs, now);
        t.nextAt = t.slot + (Math.random() * 2 - 1) * this.config.CHECK_JITTER * settings.intervalMs;
        void this.check(instance, t);
      } else {
        this.evaluate(instance, t, now);
      }
      this.plan(instance, t, now);
    }
  }

  /** After a snapshot or a membership change: ownership, samples and wakes of every instance, once. */
  private replanEverything(now: number): void {
    this.replanAll = false;
    this.plannedVersion = this.membership.version;
    this.changed.clear();
    const seen = new Set<string>();
    for (const instance of this.table.all()) {
      seen.add(instance.serviceId);
      const t = this.trackedOf(instance, now);
      this.setOwned(t, this.membership.owns(instance.serviceId));
      if (!t.owned) continue;
      this.resample(instance, t, now);
      // One we have judged before is judged at once (the snapshot may show another status); a new one waits for its first check.
      if (t.lastOutcome !== undefined || t.reported || instance.lastHeartbeatAt !== undefined) this.due.schedule(t, now);
      else this.plan(instance, t, now);
    }
    for (const t of [...this.tracked.values()]) if (!seen.has(t.serviceId)) this.forget(t);
  }

  /** An event changed this instance (or a silent one heartbeats again): judge it at once. */
  private sync(serviceId: string, now: number): void {
    const instance = this.table.get(serviceId);
    const known = this.tracked.get(serviceId);
    if (!instance) {
      if (known) this.forget(known);
      return;
    }
    const t = this.trackedOf(instance, now);
    if (!t.ownershipKnown) this.setOwned(t, this.membership.owns(serviceId));
    if (t.environment !== instance.environment) {
      this.preservation.track(serviceId, instance.environment, undefined);
      this.unhold(t);
      t.environment = instance.environment;
    }
    if (!t.owned) return;
    this.resample(instance, t, now);
    this.due.schedule(t, Math.min(t.heapIndex >= 0 ? t.dueAt : Infinity, now));
  }

  private setOwned(t: Tracked, owned: boolean): void {
    t.ownershipKnown = true;
    if (t.owned === owned) return;
    t.owned = owned;
    this.ownedCount += owned ? 1 : -1;
    if (!owned) {
      this.due.remove(t);
      this.preservation.track(t.serviceId, t.environment, undefined);
      this.unhold(t);
    }
  }

  private forget(t: Tracked): void {
    this.setOwned(t, false);
    this.tracked.delete(t.serviceId);
  }

  /**
   * Queues the instance at its next wake: its check's slot, or the first moment a verdict can change
   * with no news (heartbeat TTL and offline, failing long enough for offline, pruning, a report
   * retry). Whatever happens before that (a check's result, an event, a heartbeat of a silent
   * instance, a hold's end) wakes it itself.
   */
  private plan(instance: RoutedInstance, t: Tracked, now: number): void {
    if (!t.owned) return;
    const settings = this.settingsOf(instance, t);
    let wake = settings.enabled && !t.inFlight ? t.nextAt : Infinity;
    const at = (time: number) => {
      if (time > now && time < wake) wake = time;
    };
    const last = instance.lastHeartbeatAt;
    t.heartbeatPlanned = last !== undefined;
    if (last !== undefined) {
      // heartbeatVerdict: silent for more than the TTL, then more than max(TTL, OFFLINE_AFTER_MS).
      at(last + settings.heartbeatTtlMs + 1);
      at(last + Math.max(settings.heartbeatTtlMs, this.config.OFFLINE_AFTER_MS) + 1);
    }
    const failingSince = t.state.failingSince;
    if (failingSince !== undefined) at(failingSince + settings.offlineAfterMs);
    const silentOrFailingSince = Math.min(last ?? Infinity, failingSince ?? Infinity);
    if (Number.isFinite(silentOrFailingSince) && !t.pruneRequested) at(silentOrFailingSince + this.config.PRUNE_AFTER_MS);
    if (t.reported) at(t.reported.at + REPORT_RETRY_MS);
    if (Number.isFinite(wake)) this.due.schedule(t, wake);
    else this.due.remove(t);
  }

  /** Keeps self-preservation's counts of this instance current (owned, judged instances only). */
  private resample(instance: RoutedInstance, t: Tracked, now: number): void {
    if (!t.owned) return;
    const failingSince = this.failingSince(instance, t, now);
    const judged = t.lastOutcome !== undefined || failingSince !== undefined;
    this.preservation.track(instance.serviceId, instance.environment, judged ? { status: instance.status, failingSince } : undefined);
  }

  private trackedOf(instance: RoutedInstance, now: number): Tracked {
    let t = this.tracked.get(instance.serviceId);
    if (!t) {
      // First checks are spread over one interval, so a restart doesn't probe everything at once.
      const slot = now + Math.random() * this.settingsOf(instance).intervalMs;
      t = { serviceId: instance.serviceId, environment: instance.environment, state: newCheckState(), slot, nextAt: slot, inFlight: false, owned: false, ownershipKnown: false, dueAt: 0, heapIndex: -1 };
      this.tracked.set(instance.serviceId, t);
    }
    return t;
  }

  private async check(instance: RoutedInstance, t: Tracked): Promise<ProbeOutcome> {
    const settings = this.settingsOf(instance, t);
    t.inFlight = true;
    let result: ProbeResult;
    try {
      await this.acquire();
      try {
        result = await probe(`${instance.internalUrl}${instance.healthCheckEndpoint}`, settings.timeoutMs, settings.degradedLatencyMs);
      } finally {
        this.release();
      }
    } finally {
      t.inFlight = false;
    }
    this.metrics.probes.inc({ outcome: result.outcome });
    this.metrics.probeDuration.observe(result.latencyMs / 1000);
    record(t.state, result.outcome, Date.now(), checkReason(result));
    t.lastOutcome = result.outcome;
    t.lastDetail = result.detail;
    const current = this.table.get(instance.serviceId);
    if (current) {
      const now = Date.now();
      this.evaluate(current, t, now, true);
      this.plan(current, t, now);
    }
    return result.outcome;
  }

  /** `afterCheck`: a check just finished, so a downgrade is judged against the environment as of now. */
  private evaluate(instance: RoutedInstance, t: Tracked, now: number, afterCheck = false): void {
    const settings = this.settingsOf(instance, t);
    const fromChecks = settings.enabled ? probeVerdict(t.state, instance.status, settings, now) : undefined;
    const fromHeartbeat = heartbeatVerdict(instance.lastHeartbeatAt, settings.heartbeatTtlMs, this.config.OFFLINE_AFTER_MS, now);
    t.silent = fromHeartbeat !== undefined;
    this.resample(instance, t, now);
    // A passing check does not cure an expired heartbeat: the worse verdict wins.
    const target = fromHeartbeat && fromChecks === 'healthy' ? fromHeartbeat : worst(fromChecks, fromHeartbeat);
    const silentOrFailingSince = Math.min(instance.lastHeartbeatAt ?? Infinity, t.state.failingSince ?? Infinity);
    const prune = target === 'offline' && Number.isFinite(silentOrFailingSince) && now - silentOrFailingSince >= this.config.PRUNE_AFTER_MS;

    const downgrade = target !== undefined && (isDowngrade(instance.status, target) || prune);
    // Checks are spread over the interval: before acting on a downgrade, look at the environment as
    // it is now, not as the last tick saw it (a mass failure shows up a few checks at a time). Its
    // counts are kept current instance by instance, so this costs no walk.
    if (downgrade && (afterCheck || now - (this.preservationAt.get(instance.environment) ?? 0) > PRESERVATION_REFRESH_MS)) {
      this.preservationAt.set(instance.environment, now);
      this.applyPreservation(this.preservation.judge(instance.environment), now);
    }
    if (downgrade && this.preservation.mustHold(instance.environment, instance.serviceId, this.failingSince(instance, t, now))) {
      if (!t.held) this.metrics.held.inc({ environment: instance.environment });
      t.held = true;
      let held = this.heldByEnvironment.get(instance.environment);
      if (!held) this.heldByEnvironment.set(instance.environment, (held = new Set()));
      held.add(t);
      return;
    }
    this.unhold(t);
    if (prune && !t.pruneRequested) {
      t.pruneRequested = true;
      void this.registry.deregister(instance.serviceId, `inactive for ${Math.round((now - silentOrFailingSince) / 1000)} s`).then((ok) => {
        if (ok) this.metrics.pruned.inc();
        else {
          t.pruneRequested = false;
          this.changed.add(t.serviceId); // tried again next tick
        }
      });
      return;
    }
    if (!target || target === instance.status) return;
    if (t.reported && t.reported.status === target && now - t.reported.at < REPORT_RETRY_MS) return;
    t.reported = { status: target, at: now };
    const reason = fromHeartbeat === target ? `no heartbeat for ${Math.round((now - (instance.lastHeartbeatAt ?? now)) / 1000)} s` : transitionReason(target, t.state, settings);
    void this.registry.reportHealth(instance.serviceId, target, reason).then((ok) => {
      if (ok) {
        this.metrics.reports.inc({ status: target });
        const detail = t.lastOutcome === 'fail' && fromHeartbeat !== target ? `; last check: ${t.lastDetail}` : '';
        this.logger.log(`${instance.serviceId}: ${instance.status} → ${target} (${reason}${detail})`);
      } else {
        t.reported = undefined;
        this.changed.add(t.serviceId); // tried again next tick
      }
    });
  }

  /** When the instance's current failure began (failed checks, or the heartbeat's expiry); undefined while it passes. */
  private failingSince(instance: RoutedInstance, t: Tracked, now: number): number | undefined {
    const settings = this.settingsOf(instance, t);
    const expired = heartbeatVerdict(instance.lastHeartbeatAt, settings.heartbeatTtlMs, this.config.OFFLINE_AFTER_MS, now) !== undefined;
    const fromHeartbeat = expired && instance.lastHeartbeatAt !== undefined ? instance.lastHeartbeatAt + settings.heartbeatTtlMs : undefined;
    const fromChecks = t.lastOutcome === 'fail' ? (t.state.failingSince ?? now) : undefined;
    if (fromHeartbeat === undefined) return fromChecks;
    return fromChecks === undefined ? fromHeartbeat : Math.min(fromChecks, fromHeartbeat);
  }

  /** Logs and counts each change; when a hold ends, its held instances are judged at once (their transitions apply). */
  private applyPreservation(changes: PreservationChange[], now: number): void {
    for (const change of changes) {
      this.reportPreservation(change);
      if (change.cause === 'wave') continue;
      for (const t of this.heldByEnvironment.get(change.environment) ?? []) if (t.owned) this.due.schedule(t, now);
    }
  }

  private unhold(t: Tracked): void {
    if (!t.held) return;
    t.held = false;
    const held = this.heldByEnvironment.get(t.environment);
    held?.delete(t);
    if (held?.size === 0) this.heldByEnvironment.delete(t.environment);
  }

  private reportPreservation({ environment, cause, failing, judged, held, heldForMs }: PreservationChange): void {
    if (cause === 'wave') {
      this.logger.error(
        `SELF-PRESERVATION in ${environment}: ${failing} of ${judged} instances started failing at once; holding their state (likely our own network) for at most ${this.config.MASS_FAILURE_MAX_HOLD_MS} ms, still checking`,
      );
    } else if (cause === 'expired') {
      this.logger.error(
        `self-preservation in ${environment} expired after ${Math.round(heldForMs / 1000)} s with ${failing} of ${judged} still failing: the failures are real; applying ${held} held transitions`,
      );
    } else {
      this.logger.warn(`self-preservation in ${environment} ended after ${Math.round(heldForMs / 1000)} s (${failing} of ${judged} failing); applying ${held} held transitions`);
    }
    this.metrics.selfPreservation.set({ environment }, cause === 'wave' ? 1 : 0);
  }

  /** The instance's effective settings, cached until its registration changes (new revision). */
  private settingsOf(instance: RoutedInstance, t?: Tracked): CheckSettings {
    if (t?.settings && t.settingsRevision === instance.revision) return t.settings;
    const settings = checkSettings(instance.healthCheck, this.config);
    if (t) {
      t.settings = settings;
      t.settingsRevision = instance.revision;
    }
    return settings;
  }

  private acquire(): Promise<void> {
    if (this.active < this.config.MAX_CONCURRENT_PROBES) {
      this.active++;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  private release(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.active--;
  }
}

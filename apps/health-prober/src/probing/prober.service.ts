import { Inject, Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { HealthCheckRoundSummary, HealthStatus } from '@switchboard/contracts';
import { RoutedInstance, RoutingTable } from '@switchboard/routing-table';
import type { HealthProberConfig } from '../config/health-prober.config';
import { HEALTH_PROBER_CONFIG } from '../health-prober.tokens';
import { MembershipService } from '../membership/membership.service';
import { ProberMetricsService } from '../observability/prober-metrics.service';
import { checkSettings, CheckSettings } from './check-settings.util';
import { CheckState, heartbeatVerdict, isDowngrade, newCheckState, ProbeOutcome, probeVerdict, record, worst } from './health-evaluator.util';
import { checkReason, transitionReason } from './probe-reason.util';
import { probe, ProbeResult } from './probe.util';
import { RegistryCommandsClient } from './registry-commands-client.service';
import { PreservationChange, PreservationSample, SelfPreservationService } from './self-preservation.service';

interface Tracked {
  state: CheckState;
  /** The instance's slot: checks are due at slot, slot + interval, … (jittered around it, never drifting). */
  slot: number;
  nextAt: number;
  settings?: CheckSettings;
  settingsRevision?: number;
  inFlight: boolean;
  ownerVersion: number;
  owned: boolean;
  lastOutcome?: ProbeOutcome;
  /** The last check's detail (refused, timeout, …): for our log only, never reported. */
  lastDetail?: string;
  /** The status we last asked registry-api for, until the table shows it. */
  reported?: { status: HealthStatus; at: number };
  pruneRequested?: boolean;
  /** A downgrade is being held by self-preservation (counted once). */
  held?: boolean;
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
    this.timer = setInterval(() => this.tick(), TICK_MS);
  }

  onApplicationShutdown(): void {
    this.stopped = true;
    clearInterval(this.timer);
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

  private tick(): void {
    if (this.stopped) return;
    const now = Date.now();
    const seen = new Set<string>();
    const mine: [RoutedInstance, Tracked][] = [];
    for (const instance of this.table.all()) {
      seen.add(instance.serviceId);
      const t = this.trackedOf(instance, now);
      if (t.ownerVersion !== this.membership.version) {
        t.owned = this.membership.owns(instance.serviceId);
        t.ownerVersion = this.membership.version;
      }
      if (t.owned) mine.push([instance, t]);
    }
    for (const id of this.tracked.keys()) if (!seen.has(id)) this.tracked.delete(id);
    this.updateSelfPreservation(this.environmentSamples(now), now, true);
    this.metrics.owned.set(mine.length);

    for (const [instance, t] of mine) {
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
    }
  }

  private trackedOf(instance: RoutedInstance, now: number): Tracked {
    let t = this.tracked.get(instance.serviceId);
    if (!t) {
      // First checks are spread over one interval, so a restart doesn't probe everything at once.
      const slot = now + Math.random() * this.settingsOf(instance).intervalMs;
      t = { state: newCheckState(), slot, nextAt: slot, inFlight: false, ownerVersion: -1, owned: false };
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
    if (current) this.evaluate(current, t, Date.now(), true);
    return result.outcome;
  }

  /** `afterCheck`: a check just finished, so a downgrade is judged against the environment as of now. */
  private evaluate(instance: RoutedInstance, t: Tracked, now: number, afterCheck = false): void {
    const settings = this.settingsOf(instance, t);
    const fromChecks = settings.enabled ? probeVerdict(t.state, instance.status, settings, now) : undefined;
    const fromHeartbeat = heartbeatVerdict(instance.lastHeartbeatAt, settings.heartbeatTtlMs, this.config.OFFLINE_AFTER_MS, now);
    // A passing check does not cure an expired heartbeat: the worse verdict wins.
    const target = fromHeartbeat && fromChecks === 'healthy' ? fromHeartbeat : worst(fromChecks, fromHeartbeat);
    const silentOrFailingSince = Math.min(instance.lastHeartbeatAt ?? Infinity, t.state.failingSince ?? Infinity);
    const prune = target === 'offline' && Number.isFinite(silentOrFailingSince) && now - silentOrFailingSince >= this.config.PRUNE_AFTER_MS;

    const downgrade = target !== undefined && (isDowngrade(instance.status, target) || prune);
    // Checks are spread over the interval: before acting on a downgrade, look at the environment as
    // it is now, not as the last tick saw it (a mass failure shows up a few checks at a time).
    if (downgrade && (afterCheck || now - (this.preservationAt.get(instance.environment) ?? 0) > PRESERVATION_REFRESH_MS)) {
      this.updateSelfPreservation(this.environmentSamples(now, instance.environment), now, false);
    }
    if (downgrade && this.preservation.mustHold(instance.environment, instance.serviceId, this.failingSince(instance, t, now))) {
      if (!t.held) this.metrics.held.inc({ environment: instance.environment });
      t.held = true;
      return;
    }
    t.held = false;
    if (prune && !t.pruneRequested) {
      t.pruneRequested = true;
      void this.registry.deregister(instance.serviceId, `inactive for ${Math.round((now - silentOrFailingSince) / 1000)} s`).then((ok) => {
        if (ok) this.metrics.pruned.inc();
        else t.pruneRequested = false;
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

  /** The owned, judged instances per environment (or of one), as self-preservation weighs them. */
  private environmentSamples(now: number, only?: string): Map<string, PreservationSample[]> {
    const samples = new Map<string, PreservationSample[]>();
    if (only) samples.set(only, []);
    for (const instance of this.table.all()) {
      if (only && instance.environment !== only) continue;
      const t = this.tracked.get(instance.serviceId);
      if (!t?.owned) continue;
      const failingSince = this.failingSince(instance, t, now);
      if (t.lastOutcome === undefined && failingSince === undefined) continue;
      let env = samples.get(instance.environment);
      if (!env) samples.set(instance.environment, (env = []));
      env.push({ status: instance.status, failingSince });
    }
    return samples;
  }

  /** `complete`: the samples cover every environment, so one held but absent has recovered. */
  private updateSelfPreservation(samples: Map<string, PreservationSample[]>, now: number, complete: boolean): void {
    for (const environment of samples.keys()) this.preservationAt.set(environment, now);
    for (const change of this.preservation.update(samples, complete)) this.reportPreservation(change);
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

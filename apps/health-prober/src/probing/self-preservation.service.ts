import { Inject, Injectable } from '@nestjs/common';
import type { HealthStatus } from '@switchboard/contracts';
import type { HealthProberConfig } from '../config/health-prober.config';
import { HEALTH_PROBER_CONFIG, PROBER_CLOCK, ProberClock } from '../health-prober.tokens';
import { DueQueue, DueItem } from './due-queue.util';

/** One judged instance as self-preservation sees it. */
export interface PreservationSample {
  /** Its health as the registry holds it. */
  status: HealthStatus;
  /** When its current failure (failed checks or an expired heartbeat) began; undefined while it is not failing. */
  failingSince?: number;
}

export type PreservationSettings = Pick<HealthProberConfig, 'MASS_FAILURE_THRESHOLD' | 'MASS_FAILURE_MIN_INSTANCES' | 'MASS_FAILURE_WINDOW_MS' | 'MASS_FAILURE_MAX_HOLD_MS'>;

/** A hold began (`wave`) or ended (`recovered`: the share dropped; `expired`: held for MASS_FAILURE_MAX_HOLD_MS). */
export interface PreservationChange {
  environment: string;
  cause: 'wave' | 'recovered' | 'expired';
  failing: number;
  judged: number;
  /** Instances whose downgrade the hold kept back (on an end: now applied). */
  held: number;
  heldForMs: number;
}

interface Hold {
  since: number;
  /** Failures that began before this are not part of the wave. */
  waveFrom: number;
  held: Set<string>;
}

/** A tracked instance: counted as not failing (`ok`), in its environment's wave (by failingSince), or not at all. */
interface Tallied extends DueItem {
  environment: string;
  kind: 'none' | 'ok' | 'wave';
}

/** Per environment: judged instances not failing, and the failing ones whose failure is not (yet) standing, earliest first. */
interface Tally {
  ok: number;
  wave: DueQueue<Tallied>;
}

const DOWN: ReadonlySet<HealthStatus> = new Set(['unhealthy', 'offline']);

/**
 * Self-preservation (Eureka's, Envoy's panic threshold): when a large share of an environment's live
 * instances starts failing at once, the likelier fault is our own network, so their downgrades are
 * held. Only a sudden wave counts: failures that began within MASS_FAILURE_WINDOW_MS, among instances
 * not already unhealthy/offline; a fleet that died long ago is judged like any instance. A hold lasts
 * at most MASS_FAILURE_MAX_HOLD_MS; then the held failures are accepted as real (like Eureka
 * re-learning its expected renewals) and never count towards a hold again.
 */
@Injectable()
export class SelfPreservationService {
  private readonly holds = new Map<string, Hold>();
  /** Per environment: failures that began at or before this were released by an expired hold. */
  private readonly acceptedUntil = new Map<string, number>();
  private readonly tallies = new Map<string, Tally>();
  private readonly tracked = new Map<string, Tallied>();

  constructor(
    @Inject(HEALTH_PROBER_CONFIG) private readonly settings: PreservationSettings,
    @Inject(PROBER_CLOCK) private readonly clock: ProberClock,
  ) {}

  holding(environment: string): boolean {
    return this.holds.has(environment);
  }

  /**
   * Judges the environments in `samples` (all judged instances of each). `complete`: the map covers
   * every environment, so one held but absent has no failing instances left. Returns the changes.
   */
  update(samples: ReadonlyMap<string, Iterable<PreservationSample>>, complete: boolean): PreservationChange[] {
    const now = this.clock();
    const changes: PreservationChange[] = [];
    for (const environment of new Set([...samples.keys(), ...(complete ? this.holds.keys() : [])])) {
      const hold = this.holds.get(environment);
      this.decide(environment, this.count(environment, samples.get(environment) ?? [], now, hold), now, changes);
    }
    return changes;
  }

  /**
   * The incremental form of {@link update}: the prober reports each owned instance's sample when it
   * changes (`undefined`: not judged, not owned or gone), in O(log n), and {@link judge} weighs the
   * environments from the counts kept, without walking the instances.
   */
  track(serviceId: string, environment: string, sample: PreservationSample | undefined): void {
    let entry = this.tracked.get(serviceId);
    if (entry) this.untally(entry);
    if (!sample) {
      this.tracked.delete(serviceId);
      return;
    }
    if (!entry) this.tracked.set(serviceId, (entry = { environment, kind: 'none', dueAt: 0, heapIndex: -1 }));
    entry.environment = environment;
    if (DOWN.has(sample.status)) return;
    const tally = this.tallyOf(environment);
    if (sample.failingSince === undefined) {
      entry.kind = 'ok';
      tally.ok++;
      return;
    }
    const now = this.clock();
    if (this.standing(environment, sample.failingSince, this.holds.get(environment)?.waveFrom ?? now - this.settings.MASS_FAILURE_WINDOW_MS)) return;
    entry.kind = 'wave';
    tally.wave.schedule(entry, sample.failingSince);
  }

  /** Judges one environment, or every one tracked or held, from the counts {@link track} keeps. Returns the changes. */
  judge(environment?: string): PreservationChange[] {
    const now = this.clock();
    const changes: PreservationChange[] = [];
    for (const env of environment === undefined ? new Set([...this.tallies.keys(), ...this.holds.keys()]) : [environment]) {
      this.decide(env, this.tallied(env, now, this.holds.get(env)), now, changes);
    }
    return changes;
  }

  private decide(environment: string, { judged, failing }: { judged: number; failing: number }, now: number, changes: PreservationChange[]): void {
    const hold = this.holds.get(environment);
    const change = (cause: PreservationChange['cause']) =>
      changes.push({ environment, cause, failing, judged, held: hold?.held.size ?? 0, heldForMs: hold ? now - hold.since : 0 });
    if (hold && now - hold.since >= this.settings.MASS_FAILURE_MAX_HOLD_MS) {
      this.holds.delete(environment);
      this.acceptedUntil.set(environment, now);
      change('expired');
      return;
    }
    const wave = judged >= this.settings.MASS_FAILURE_MIN_INSTANCES && failing / judged >= this.settings.MASS_FAILURE_THRESHOLD;
    if (wave && !hold) {
      this.holds.set(environment, { since: now, waveFrom: now - this.settings.MASS_FAILURE_WINDOW_MS, held: new Set() });
      change('wave');
    } else if (!wave && hold) {
      this.holds.delete(environment);
      change('recovered');
    }
  }

  /**
   * Whether the downgrade of `serviceId` must be held now: its environment is held and its failure is
   * not a standing one (begun before the wave, or accepted when an earlier hold expired).
   */
  mustHold(environment: string, serviceId: string, failingSince: number | undefined): boolean {
    const hold = this.holds.get(environment);
    if (!hold || this.clock() - hold.since >= this.settings.MASS_FAILURE_MAX_HOLD_MS) return false;
    if (failingSince !== undefined && this.standing(environment, failingSince, hold.waveFrom)) return false;
    hold.held.add(serviceId);
    return true;
  }

  private count(environment: string, samples: Iterable<PreservationSample>, now: number, hold: Hold | undefined): { judged: number; failing: number } {
    const waveFrom = hold?.waveFrom ?? now - this.settings.MASS_FAILURE_WINDOW_MS;
    let judged = 0;
    let failing = 0;
    for (const { status, failingSince } of samples) {
      // Already down, or dead since before the wave: not part of what a wave is measured against.
      if (DOWN.has(status)) continue;
      if (failingSince !== undefined && this.standing(environment, failingSince, waveFrom)) continue;
      judged++;
      if (failingSince !== undefined) failing++;
    }
    return { judged, failing };
  }

  /**
   * The counts of {@link count} from the tally. A failure older than the wave window (or accepted by an
   * expired hold) is standing for good: both bounds only ever move forward, so the wave's earliest
   * entries are dropped once and the rest is counted by size.
   */
  private tallied(environment: string, now: number, hold: Hold | undefined): { judged: number; failing: number } {
    const tally = this.tallies.get(environment);
    if (!tally) return { judged: 0, failing: 0 };
    const waveFrom = hold?.waveFrom ?? now - this.settings.MASS_FAILURE_WINDOW_MS;
    for (let first = tally.wave.peek(); first && this.standing(environment, first.dueAt, waveFrom); first = tally.wave.peek()) {
      tally.wave.remove(first);
      first.kind = 'none';
    }
    if (!tally.ok && !tally.wave.size) this.tallies.delete(environment);
    return { judged: tally.ok + tally.wave.size, failing: tally.wave.size };
  }

  private tallyOf(environment: string): Tally {
    let tally = this.tallies.get(environment);
    if (!tally) this.tallies.set(environment, (tally = { ok: 0, wave: new DueQueue() }));
    return tally;
  }

  private untally(entry: Tallied): void {
    const tally = this.tallies.get(entry.environment);
    if (tally && entry.kind === 'ok') tally.ok--;
    else if (tally && entry.kind === 'wave') tally.wave.remove(entry);
    entry.kind = 'none';
  }

  private standing(environment: string, failingSince: number, waveFrom: number): boolean {
    return failingSince < waveFrom || failingSince <= (this.acceptedUntil.get(environment) ?? -Infinity);
  }
}

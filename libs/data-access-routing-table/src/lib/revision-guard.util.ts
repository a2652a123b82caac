import { LogThrottle } from '@switchboard/observability';

/**
 * Why an event was not applied: the registry answered and has not reached its revision
 * (`ahead_of_registry`), the registry did not answer (`unverifiable`), too many events were already
 * waiting for an answer (`backlog`), or a drift check found the consumer holding a revision the
 * registry never issued and replaced its state (`table_ahead_of_registry`).
 */
export type RevisionRejectReason = 'ahead_of_registry' | 'unverifiable' | 'backlog' | 'table_ahead_of_registry';

export type RevisionVerdict = { ok: true } | { ok: false; reason: Exclude<RevisionRejectReason, 'table_ahead_of_registry'> };

export interface RevisionGuardLogger {
  warn(message: string): void;
}

export interface RevisionGuardOptions {
  /** How far past the highest revision known to be real an event may be and still apply at once. */
  maxAhead: number;
  /** The registry's highest revision (`registry.cmd.revision`). */
  askRegistry: () => Promise<number>;
  /** Least time between two requests, so a flood of forged events costs the registry ≤ 1000 / this requests per second. */
  minSpacingMs?: number;
  /** Events waiting for an answer at once; beyond that they are rejected without asking. */
  maxPending?: number;
  /** Rejections are logged at most once per this interval (a flood must not flood the log). */
  logIntervalMs?: number;
  logger?: RevisionGuardLogger;
  onReject?: (reason: RevisionRejectReason) => void;
}

export const DEFAULT_EVENT_REVISION_MAX_AHEAD = 1000;

/**
 * Defence in depth against forged registry events (NATS authorization is the first line). A revision
 * is only plausible up to `maxAhead` past the highest one known to be real: a snapshot's, an answer of
 * the registry, or an event the registry has confirmed. Anything further is held until one coalesced
 * `registry.cmd.revision` request shows the registry has reached it; otherwise it is rejected,
 * counted and logged. Without this, one forged event with a huge revision would make every real
 * update of its instance look older, so ignored, for good.
 */
export class RevisionGuard {
  private known = 0;
  private current?: Promise<number>;
  private queued?: Promise<number>;
  private lastSentAt = -Infinity;
  private pending = 0;

  private readonly rejectionLog: LogThrottle;

  constructor(private readonly options: RevisionGuardOptions) {
    this.rejectionLog = new LogThrottle(options.logIntervalMs ?? 10_000);
  }

  /** The highest revision known to be real. */
  get verified(): number {
    return this.known;
  }

  /** A revision known to be real (a snapshot's, a registry answer). */
  observe(revision: number): void {
    if (revision > this.known) this.known = revision;
  }

  /** Applies at once: no request needed. */
  plausible(revision: number): boolean {
    return revision <= this.known + this.options.maxAhead;
  }

  /** For an implausible revision: asks the registry (coalesced) whether it has reached it. */
  async verify(revision: number): Promise<RevisionVerdict> {
    if (this.pending >= (this.options.maxPending ?? 10_000)) return this.reject('backlog', revision);
    this.pending++;
    try {
      // A request in flight was sent before this event arrived, so its answer may predate the event's
      // commit: it can confirm the event, never refute it. Only a request sent afterwards decides.
      const earlier = await this.current?.catch(() => undefined);
      if ((earlier !== undefined && earlier >= revision) || this.plausible(revision)) return { ok: true };
      const remote = await this.registryRevision();
      return remote >= revision ? { ok: true } : this.reject('ahead_of_registry', revision);
    } catch {
      return this.reject('unverifiable', revision);
    } finally {
      this.pending--;
    }
  }

  /**
   * The registry's highest revision from a request sent after this call (joining one already queued),
   * so every event received before the call is covered by the answer.
   */
  registryRevision(): Promise<number> {
    if (this.queued) return this.queued;
    const queued = this.turn().then(() => {
      if (this.queued === queued) this.queued = undefined;
      return this.send();
    });
    this.queued = queued;
    return queued;
  }

  /** Counts and logs a rejection (at most one line per interval, with how many were folded into it). */
  reject<R extends RevisionRejectReason>(reason: R, revision: number): { ok: false; reason: R } {
    this.options.onReject?.(reason);
    const suppressed = this.rejectionLog.take();
    if (suppressed !== undefined) {
      this.options.logger?.warn(
        `rejected ${suppressed + 1} registry event(s) not confirmed by the registry (latest: revision ${revision}, ${reason}; highest known real revision ${this.known}); forged or from a foreign registry?`,
      );
    }
    return { ok: false, reason };
  }

  private async turn(): Promise<void> {
    await this.current?.catch(() => undefined);
    const wait = this.lastSentAt + (this.options.minSpacingMs ?? 100) - Date.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
  }

  private async send(): Promise<number> {
    this.lastSentAt = Date.now();
    const request = this.options.askRegistry();
    this.current = request;
    try {
      const revision = await request;
      this.observe(revision);
      return revision;
    } finally {
      if (this.current === request) this.current = undefined;
    }
  }
}

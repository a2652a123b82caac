import type { ConsoleInstance, ConsoleLoad, ConsoleMetrics } from './feed.types';

export type FeedState = 'connecting' | 'live' | 'reconnecting' | 'unauthorized' | 'busy';

/** How many metric summaries the sparklines keep (2 s apart: two minutes). */
export const HISTORY = 60;

export interface MetricsHistory {
  at: number[];
  /** Per model: requests/s and p99 latency, aligned with `at` (null where the model had no figure). */
  rps: Map<string, (number | null)[]>;
  p99: Map<string, (number | null)[]>;
  outbox: (number | null)[];
}

/**
 * The fleet as the feed last described it, outside React: events mutate it, and views subscribe to
 * a version number (useSyncExternalStore), notified at most once per animation frame so a burst of
 * events or a 10,000-instance snapshot renders once.
 */
export class FleetStore {
  readonly instances = new Map<string, ConsoleInstance>();
  revision = 0;
  state: FeedState = 'connecting';
  detail = '';
  metrics?: ConsoleMetrics;
  history: MetricsHistory = { at: [], rps: new Map(), p99: new Map(), outbox: [] };
  version = 0;
  private readonly listeners = new Set<() => void>();
  private scheduled = false;

  subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };

  getVersion = (): number => this.version;

  setState(state: FeedState, detail = ''): void {
    this.state = state;
    this.detail = detail;
    this.changed();
  }

  snapshot(revision: number, instances: ConsoleInstance[]): void {
    this.instances.clear();
    for (const instance of instances) this.instances.set(instance.id, instance);
    this.revision = revision;
    this.changed();
  }

  upsert(revision: number, instance: ConsoleInstance): void {
    const current = this.instances.get(instance.id);
    if (current && current.revision >= instance.revision) return;
    this.instances.set(instance.id, instance);
    this.revision = Math.max(this.revision, revision);
    this.changed();
  }

  remove(revision: number, id: string): void {
    this.instances.delete(id);
    this.revision = Math.max(this.revision, revision);
    this.changed();
  }

  load(updates: { id: string; lastSeen: number | null; load: ConsoleLoad }[]): void {
    for (const { id, lastSeen, load } of updates) {
      const current = this.instances.get(id);
      if (current) this.instances.set(id, { ...current, lastSeen, load });
    }
    this.changed();
  }

  addMetrics(metrics: ConsoleMetrics): void {
    this.metrics = metrics;
    const h = this.history;
    const push = <T,>(list: T[], value: T) => {
      list.push(value);
      if (list.length > HISTORY) list.shift();
    };
    const length = h.at.length;
    push(h.at, metrics.at);
    push(h.outbox, metrics.registry.outboxDepth);
    const seen = new Set<string>();
    for (const m of metrics.models) {
      seen.add(m.model);
      for (const [series, value] of [
        [h.rps, m.requestsPerSecond],
        [h.p99, m.latencyP99Ms],
      ] as const) {
        const list = series.get(m.model) ?? new Array<number | null>(length).fill(null);
        push(list, value);
        series.set(m.model, list);
      }
    }
    for (const series of [h.rps, h.p99]) for (const [model, list] of series) if (!seen.has(model)) push(list, null);
    this.changed();
  }

  private changed(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    const flush = () => {
      this.scheduled = false;
      this.version++;
      for (const listener of this.listeners) listener();
    };
    if (typeof requestAnimationFrame === 'function' && typeof document !== 'undefined' && document.visibilityState === 'visible') requestAnimationFrame(flush);
    else setTimeout(flush, 16);
  }
}

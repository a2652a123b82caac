import type { Sample } from './prometheus-text.util';

/** The router and prober series the console reads; everything else in a scrape is skipped unparsed. */
export const SCRAPED_METRICS: ReadonlySet<string> = new Set([
  'router_requests_total',
  'router_request_duration_seconds',
  'router_time_to_first_token_seconds',
  'router_ejections_total',
  'router_panic_total',
  'prober_self_preservation',
]);

export interface RouterModelSummary {
  model: string;
  requestsPerSecond: number;
  /** Over the interval's requests, from the histogram buckets; null when there were none. */
  latencyP50Ms: number | null;
  latencyP99Ms: number | null;
  ttftP50Ms: number | null;
  ttftP99Ms: number | null;
  /** Answers with a 4xx/5xx status in the interval, by code. */
  errors: Record<string, number>;
  /** Instances the router ejected in the interval. */
  ejected: string[];
  /** Picks made with every instance ejected (panic mode) in the interval. */
  panic: boolean;
}

/** Cumulative figures of one router scrape, per model. */
export interface RouterCounters {
  requests: Map<string, number>;
  codes: Map<string, Map<string, number>>;
  duration: Map<string, Map<number, number>>;
  ttft: Map<string, Map<number, number>>;
  ejections: Map<string, Map<string, number>>;
  panics: Map<string, number>;
}

function add<K>(map: Map<K, number>, key: K, value: number): void {
  map.set(key, (map.get(key) ?? 0) + value);
}

function nested<K, V>(map: Map<string, Map<K, V>>, key: string): Map<K, V> {
  let inner = map.get(key);
  if (!inner) map.set(key, (inner = new Map()));
  return inner;
}

export function routerCounters(samples: readonly Sample[]): RouterCounters {
  const c: RouterCounters = { requests: new Map(), codes: new Map(), duration: new Map(), ttft: new Map(), ejections: new Map(), panics: new Map() };
  for (const { name, labels, value } of samples) {
    const model = labels['model'];
    if (model === undefined || !Number.isFinite(value)) continue;
    if (name === 'router_requests_total') {
      add(c.requests, model, value);
      add(nested(c.codes, model), labels['code'] ?? '?', value);
    } else if (name === 'router_request_duration_seconds_bucket' || name === 'router_time_to_first_token_seconds_bucket') {
      const le = labels['le'] === '+Inf' ? Infinity : Number(labels['le']);
      if (Number.isNaN(le)) continue;
      add(nested(name === 'router_request_duration_seconds_bucket' ? c.duration : c.ttft, model), le, value);
    } else if (name === 'router_ejections_total') {
      add(nested(c.ejections, model), labels['instance'] ?? '?', value);
    } else if (name === 'router_panic_total') {
      add(c.panics, model, value);
    }
  }
  return c;
}

/** A counter's increase; a drop means the process restarted, so its whole current value is new. */
const increase = (now: number, before: number | undefined) => (before === undefined ? now : now >= before ? now - before : now);

function increases<K>(now: Map<K, number> | undefined, before: Map<K, number> | undefined): Map<K, number> {
  const out = new Map<K, number>();
  for (const [k, v] of now ?? []) out.set(k, increase(v, before?.get(k)));
  return out;
}

/**
 * Prometheus' histogram_quantile on cumulative bucket counts: linear within the bucket the rank falls
 * in; the +Inf bucket answers the highest finite bound. Null without observations.
 */
export function histogramQuantile(q: number, buckets: Map<number, number>): number | null {
  const bounds = [...buckets.keys()].sort((a, b) => a - b);
  const total = buckets.get(Infinity) ?? (bounds.length ? (buckets.get(bounds[bounds.length - 1]) as number) : 0);
  if (!total || total <= 0) return null;
  const rank = q * total;
  let lowerBound = 0;
  let lowerCount = 0;
  for (const bound of bounds) {
    const count = buckets.get(bound) as number;
    if (count >= rank) {
      if (bound === Infinity) return lowerBound;
      if (count === lowerCount) return bound;
      return lowerBound + ((bound - lowerBound) * (rank - lowerCount)) / (count - lowerCount);
    }
    lowerBound = bound;
    lowerCount = count;
  }
  return lowerBound;
}

const ms = (seconds: number | null) => (seconds === null ? null : Math.round(seconds * 100_000) / 100);

/**
 * Per model, what changed between two scrapes of each router (`pairs`: previous and current
 * counters of one router; without a previous one the router is skipped, a first scrape is only a
 * baseline), summed over the routers, for an interval of `seconds`.
 */
export function summariseRouters(pairs: readonly { before?: RouterCounters; now: RouterCounters }[], seconds: number): RouterModelSummary[] {
  const requests = new Map<string, number>();
  const codes = new Map<string, Map<string, number>>();
  const duration = new Map<string, Map<number, number>>();
  const ttft = new Map<string, Map<number, number>>();
  const ejected = new Map<string, Set<string>>();
  const panics = new Map<string, number>();
  for (const { before, now } of pairs) {
    if (!before) continue;
    for (const [model, v] of now.requests) add(requests, model, increase(v, before.requests.get(model)));
    for (const [model, m] of now.codes) for (const [code, v] of increases(m, before.codes.get(model))) add(nested(codes, model), code, v);
    for (const [model, m] of now.duration) for (const [le, v] of increases(m, before.duration.get(model))) add(nested(duration, model), le, v);
    for (const [model, m] of now.ttft) for (const [le, v] of increases(m, before.ttft.get(model))) add(nested(ttft, model), le, v);
    for (const [model, m] of now.ejections) {
      for (const [instance, v] of increases(m, before.ejections.get(model))) {
        if (v <= 0) continue;
        let set = ejected.get(model);
        if (!set) ejected.set(model, (set = new Set()));
        set.add(instance);
      }
    }
    for (const [model, v] of now.panics) add(panics, model, increase(v, before.panics.get(model)));
  }
  const models = new Set([...requests.keys(), ...ejected.keys(), ...panics.keys()]);
  return [...models].sort().map((model) => {
    const errors: Record<string, number> = {};
    for (const [code, v] of codes.get(model) ?? []) if (Number(code) >= 400 && v > 0) errors[code] = v;
    const d = duration.get(model) ?? new Map<number, number>();
    const t = ttft.get(model) ?? new Map<number, number>();
    return {
      model,
      requestsPerSecond: seconds > 0 ? Math.round(((requests.get(model) ?? 0) / seconds) * 100) / 100 : 0,
      latencyP50Ms: ms(histogramQuantile(0.5, d)),
      latencyP99Ms: ms(histogramQuantile(0.99, d)),
      ttftP50Ms: ms(histogramQuantile(0.5, t)),
      ttftP99Ms: ms(histogramQuantile(0.99, t)),
      errors,
      ejected: [...(ejected.get(model) ?? [])].sort(),
      panic: (panics.get(model) ?? 0) > 0,
    };
  });
}

/** Environments held under self-preservation by any prober replica. */
export function selfPreservation(scrapes: readonly (readonly Sample[])[]): Record<string, boolean> {
  const held: Record<string, boolean> = {};
  for (const samples of scrapes) {
    for (const { name, labels, value } of samples) {
      if (name !== 'prober_self_preservation' || labels['environment'] === undefined) continue;
      held[labels['environment']] = (held[labels['environment']] ?? false) || value > 0;
    }
  }
  return held;
}

import { histogramQuantile, routerCounters, SCRAPED_METRICS, selfPreservation, summariseRouters } from './metrics-summary.util';
import { parsePrometheusText } from './prometheus-text.util';

function routerText(requests: number, errors: number, fastBucket: number, ejections = 0, panics = 0): string {
  return [
    '# HELP router_requests_total Requests answered',
    '# TYPE router_requests_total counter',
    `router_requests_total{model="llama",instance="a",code="200",app="llm-router"} ${requests}`,
    `router_requests_total{model="llama",instance="a",code="503",app="llm-router"} ${errors}`,
    `router_request_duration_seconds_bucket{le="0.01",model="llama",instance="a"} ${fastBucket}`,
    `router_request_duration_seconds_bucket{le="0.1",model="llama",instance="a"} ${requests + errors}`,
    `router_request_duration_seconds_bucket{le="+Inf",model="llama",instance="a"} ${requests + errors}`,
    `router_time_to_first_token_seconds_bucket{le="0.01",model="llama",instance="a"} ${requests + errors}`,
    `router_time_to_first_token_seconds_bucket{le="+Inf",model="llama",instance="a"} ${requests + errors}`,
    `router_ejections_total{model="llama",instance="b"} ${ejections}`,
    `router_panic_total{model="llama"} ${panics}`,
    'process_cpu_seconds_total 12',
  ].join('\n');
}

const counters = (text: string) => routerCounters(parsePrometheusText(text, SCRAPED_METRICS).samples);

describe('parsePrometheusText (bounded)', () => {
  it('reads samples with labels, escapes and special values; skips and counts malformed lines', () => {
    const parsed = parsePrometheusText(['a_total{x="1",y="q\\"uote"} 3', 'b NaN', 'c{le="+Inf"} +Inf', 'not a sample', 'd{broken="} 1', '# comment', ''].join('\n'));
    expect(parsed.samples).toEqual([
      { name: 'a_total', labels: { x: '1', y: 'q"uote' }, value: 3 },
      { name: 'b', labels: {}, value: NaN },
      { name: 'c', labels: { le: '+Inf' }, value: Infinity },
    ]);
    expect(parsed.malformed).toBe(2);
  });

  it('reads only up to the size cap, cut at a line end', () => {
    const text = Array.from({ length: 100 }, (_, i) => `m{i="${i}"} ${i}`).join('\n');
    const parsed = parsePrometheusText(text, undefined, 100);
    expect(parsed.truncated).toBe(true);
    expect(parsed.samples.length).toBeGreaterThan(0);
    expect(parsed.samples.length).toBeLessThan(20);
    expect(parsed.malformed).toBe(0);
  });

  it('keeps only the wanted metrics (histogram series by their base name)', () => {
    const parsed = parsePrometheusText(routerText(10, 0, 5), SCRAPED_METRICS);
    expect(parsed.samples.some((s) => s.name === 'process_cpu_seconds_total')).toBe(false);
    expect(parsed.samples.some((s) => s.name === 'router_request_duration_seconds_bucket')).toBe(true);
  });
});

describe('histogramQuantile', () => {
  it('interpolates linearly within the bucket the rank falls in, like Prometheus', () => {
    const buckets = new Map([
      [0.1, 50],
      [0.2, 100],
      [Infinity, 100],
    ]);
    expect(histogramQuantile(0.5, buckets)).toBeCloseTo(0.1);
    expect(histogramQuantile(0.75, buckets)).toBeCloseTo(0.15);
    expect(histogramQuantile(0.25, buckets)).toBeCloseTo(0.05);
  });

  it('answers the highest finite bound when the rank is in +Inf, and null without observations', () => {
    expect(histogramQuantile(0.99, new Map([[0.1, 1], [Infinity, 10]]))).toBe(0.1);
    expect(histogramQuantile(0.5, new Map([[0.1, 0], [Infinity, 0]]))).toBeNull();
  });
});

describe('summariseRouters', () => {
  it('turns two scrapes into rates, percentiles of the interval, errors by code, ejections and panic', () => {
    const before = counters(routerText(100, 2, 100));
    const now = counters(routerText(300, 12, 150, 1, 4));
    const [llama] = summariseRouters([{ before, now }], 2);
    expect(llama.model).toBe('llama');
    expect(llama.requestsPerSecond).toBe(105); // (200 + 10) / 2 s
    expect(llama.errors).toEqual({ '503': 10 });
    // 50 of the interval's 210 answers under 10 ms, the rest under 100 ms.
    expect(llama.latencyP50Ms).toBeGreaterThan(10);
    expect(llama.latencyP50Ms).toBeLessThan(100);
    expect(llama.ttftP99Ms).toBeCloseTo(9.9, 0);
    expect(llama.ejected).toEqual(['b']);
    expect(llama.panic).toBe(true);
  });

  it('sums several routers, treats a counter that went down as a restart, and skips a router seen once', () => {
    const a = { before: counters(routerText(100, 0, 100)), now: counters(routerText(110, 0, 110)) };
    const restarted = { before: counters(routerText(500, 0, 500)), now: counters(routerText(20, 0, 20)) };
    const fresh = { now: counters(routerText(9999, 0, 9999)) };
    const [llama] = summariseRouters([a, restarted, fresh], 1);
    expect(llama.requestsPerSecond).toBe(30);
    expect(llama.panic).toBe(false);
    expect(llama.latencyP50Ms).toBeLessThanOrEqual(10);
  });

  it('reports no latency for an interval without requests', () => {
    const text = routerText(100, 0, 100);
    const [llama] = summariseRouters([{ before: counters(text), now: counters(text) }], 2);
    expect(llama.requestsPerSecond).toBe(0);
    expect(llama.latencyP50Ms).toBeNull();
  });
});

describe('selfPreservation', () => {
  it('is true for an environment any prober replica holds', () => {
    const one = parsePrometheusText('prober_self_preservation{environment="production"} 0\nprober_self_preservation{environment="staging"} 1').samples;
    const two = parsePrometheusText('prober_self_preservation{environment="production"} 1').samples;
    expect(selfPreservation([one, two])).toEqual({ production: true, staging: true });
    expect(selfPreservation([one])).toEqual({ production: false, staging: true });
  });
});

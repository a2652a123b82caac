import { metricsRegistry } from '@switchboard/observability';
import { RouterMetricsService } from './router-metrics.service';

describe('RouterMetricsService: the instance label stays bounded by the routing table', () => {
  it('drops every series of an instance gone from the table, keeps the others, and counts what it dropped', async () => {
    const metrics = new RouterMetricsService();
    const droppedBefore = (await metrics.instanceSeriesDropped.get()).values[0]?.value ?? 0;
    for (const instance of ['sweep-kept', 'sweep-gone']) {
      metrics.requests.inc({ model: 'm', instance, code: '200' });
      metrics.requests.inc({ model: 'm', instance, code: '500' });
      metrics.duration.observe({ model: 'm', instance }, 0.1);
      metrics.ttft.observe({ model: 'm', instance }, 0.05);
      metrics.ejections.inc({ model: 'm', instance });
    }
    expect(await metricsRegistry.metrics()).toContain('instance="sweep-gone"');

    expect(await metrics.sweepInstances((id) => id !== 'sweep-gone')).toBe(5);

    const text = await metricsRegistry.metrics();
    expect(text).not.toContain('instance="sweep-gone"');
    expect(text).toMatch(/router_requests_total\{model="m",instance="sweep-kept",code="500"[^}]*\} 1/);
    expect(text).toMatch(/router_request_duration_seconds_count\{model="m",instance="sweep-kept"[^}]*\} 1/);
    expect(((await metrics.instanceSeriesDropped.get()).values[0]?.value ?? 0) - droppedBefore).toBe(5);
  });
});

describe('RouterMetricsService: series bound per (model, instance)', () => {
  it('count into the same series as labelled calls, and are forgotten with a swept instance', async () => {
    const metrics = new RouterMetricsService();
    const series = metrics.seriesOf('m', 'bound-1');
    expect(metrics.seriesOf('m', 'bound-1')).toBe(series);
    series.answered(200);
    series.answered(200);
    series.answered(503);
    series.duration.observe(0.2);
    series.ttft.observe(0.01);
    const text = await metricsRegistry.metrics();
    expect(text).toMatch(/router_requests_total\{model="m",instance="bound-1",code="200"[^}]*\} 2/);
    expect(text).toMatch(/router_requests_total\{model="m",instance="bound-1",code="503"[^}]*\} 1/);
    expect(text).toMatch(/router_request_duration_seconds_count\{model="m",instance="bound-1"[^}]*\} 1/);
    expect(text).toMatch(/router_time_to_first_token_seconds_count\{model="m",instance="bound-1"[^}]*\} 1/);

    await metrics.sweepInstances((id) => id !== 'bound-1');
    // The binding went with the instance: the cache stays bounded by the table.
    expect(metrics.seriesOf('m', 'bound-1')).not.toBe(series);
  });
});

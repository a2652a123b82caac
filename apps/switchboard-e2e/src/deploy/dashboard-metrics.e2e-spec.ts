/**
 * The four built apps as processes, their real /metrics scraped: every series the Grafana dashboard
 * and the alert rules select is one an app exposes, and each app carries the `app` label the
 * dashboard groups by. (The unit spec checks the same against the sources; this one against what a
 * Prometheus would really scrape.)
 */
import { createTestEnvironment, TestEnvironment } from '@switchboard/testing';
import { REGISTRY_MAIN } from '../support/registry-stream.util';
import { API_KEY, PROBER_MAIN, ROUTER_MAIN, RunningApp, startApp, stopApp } from '../support/system.util';
import { SERVICE_APPS, ServiceApp, usedSeriesNames } from './deploy-checks.util';

const INVALIDATOR_MAIN = 'dist/apps/cache-invalidator/apps/cache-invalidator/src/main.js';

/** The series names of a Prometheus text exposition (`# TYPE` lines; a histogram's as `_bucket`, `_sum`, `_count`). */
function exposedSeries(exposition: string): Set<string> {
  const series = new Set<string>();
  for (const [, name, type] of exposition.matchAll(/^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (\w+)$/gm)) {
    if (type === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) series.add(`${name}${suffix}`);
    else if (type === 'summary') for (const suffix of ['', '_sum', '_count']) series.add(`${name}${suffix}`);
    else series.add(name as string);
  }
  return series;
}

describe('the dashboard and alert rules against the apps\' real /metrics', () => {
  let env: TestEnvironment;
  const apps = new Map<ServiceApp, RunningApp>();
  const scraped = new Map<ServiceApp, string>();

  beforeAll(async () => {
    env = await createTestEnvironment('deploy-metrics');
    const common = { NATS_URL: env.natsUrl, SUBJECT_PREFIX: env.subjectPrefix };
    const registry = await startApp(REGISTRY_MAIN, { ...common, DATABASE_URL: env.databaseUrl, DATABASE_CREATE_IF_MISSING: 'false', REDIS_URL: env.redisUrl });
    apps.set('registry-api', registry);
    apps.set('health-prober', await startApp(PROBER_MAIN, { ...common, REGISTRY_URL: registry.url, PROBER_ENVIRONMENT: 'development' }));
    apps.set('cache-invalidator', await startApp(INVALIDATOR_MAIN, { ...common, REDIS_URL: env.redisUrl }));
    apps.set('llm-router', await startApp(ROUTER_MAIN, { ...common, ROUTER_ENVIRONMENT: 'development', ROUTER_API_KEYS: API_KEY }));
    for (const [name, app] of apps) {
      const response = await fetch(`${app.url}/metrics`);
      expect([name, response.status, response.headers.get('content-type')]).toEqual([name, 200, expect.stringContaining('text/plain')]);
      scraped.set(name, await response.text());
    }
  }, 120_000);

  afterAll(async () => {
    // The prober deregisters itself through registry-api: stop it first.
    for (const name of ['health-prober', 'cache-invalidator', 'llm-router', 'registry-api'] as const) await stopApp(apps.get(name));
    await env?.dispose();
  });

  it('every series the dashboard and the alert rules select is exposed by an app', () => {
    const exposed = new Set([...scraped.values()].flatMap((text) => [...exposedSeries(text)]));
    const used = usedSeriesNames();
    expect(used.size).toBeGreaterThan(20);
    expect([...used].filter((name) => !exposed.has(name)).sort()).toEqual([]);
  });

  it("each app's series carry its `app` label (the dashboard's per-app panels group by it)", () => {
    for (const app of SERVICE_APPS) {
      expect([app, scraped.get(app)]).toEqual([app, expect.stringMatching(new RegExp(`^process_resident_memory_bytes\\{app="${app}"\\} \\d+`, 'm'))]);
    }
  });
});

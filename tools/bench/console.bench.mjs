#!/usr/bin/env node
// The console at fleet scale (issue 14): Chromium (playwright-core, Debian's /usr/bin/chromium) on the
// page registry-api serves, with N instances (default 10,000) seeded straight into PostgreSQL. Per
// round (fresh page): time from navigation to the live fleet on screen; instance rows in the DOM
// (virtualisation); search keystroke → list filtered; a status change through REST → its row
// recoloured (one visible instance, 20 changes); while 500 status changes arrive as fast as the
// registry commits them, the page's long tasks (> 50 ms, PerformanceObserver; also the longest while
// loading the snapshot and searching) and the JS heap.
// Usage: npm run bench:console   (env: BENCH_CONSOLE_INSTANCES=10000 BENCH_REPEAT=3 BENCH_SKIP_BUILD=1 CHROMIUM_PATH=/usr/bin/chromium)
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { chromium } from 'playwright-core';
import { dropDatabase, freePort, log, ROOT, runNode as run, stats, stopChild as stop, until, writeResults } from './bench-kit.mjs';

const REGISTRY_MAIN = 'dist/apps/registry-api/apps/registry-api/src/main.js';
const N = Number(process.env.BENCH_CONSOLE_INSTANCES ?? 10_000);
const REPEAT = Number(process.env.BENCH_REPEAT ?? 3);
const PG_ADMIN_URL = process.env.BENCH_PG_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const TOKEN = { 'x-registry-token': 'dev-registry-token', 'content-type': 'application/json' };
const id = randomBytes(4).toString('hex');
const dbName = `sb_bench_console_${id}`;
const BASE = '/api/v2/services/registry';

/** Clones the template into seed-0 … seed-(n-1): 3 environments, 50 services, 100 models. */
async function seed(db, n) {
  const columns = (await db.query(`SELECT column_name FROM information_schema.columns WHERE table_name = 'service_instances' ORDER BY ordinal_position`)).rows.map((r) => r.column_name);
  const values = columns.map((c) =>
    c === 'service_id'
      ? `'seed-' || g`
      : c === 'revision'
        ? `nextval('registry_revision_seq')`
        : c === 'models'
          ? `ARRAY['bench-model-' || (g % 100)]::text[]`
          : c === 'service_name'
            ? `'svc-' || (g % 50)`
            : c === 'environment'
              ? `(ARRAY['production','staging','development'])[1 + g % 3]`
              : `"${c}"`,
  );
  await db.query(`INSERT INTO service_instances (${columns.map((c) => `"${c}"`).join(', ')}) SELECT ${values.join(', ')} FROM service_instances, generate_series(0, $2::int - 1) AS g WHERE service_id = $1`, ['seed-template', n]);
}

async function main() {
  if (!process.env.BENCH_SKIP_BUILD) {
    log('building registry-api and the console');
    const built = spawnSync('npx', ['nx', 'run-many', '-t', 'build', '-p', 'registry-api', 'console', '--outputStyle=static'], { cwd: ROOT, stdio: 'inherit' });
    if (built.status !== 0) throw new Error('build failed');
  }
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const registry = run(REGISTRY_MAIN, { PORT: String(port), DATABASE_URL: `postgres://postgres@127.0.0.1:5432/${dbName}`, SUBJECT_PREFIX: `benchconsole${id}`, CACHE_ENABLED: 'false', CONSOLE_ROUTER_URLS: 'http://127.0.0.1:9', CONSOLE_PROBER_URLS: 'http://127.0.0.1:9' });
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium', args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'] });
  const db = new pg.Client({ connectionString: PG_ADMIN_URL.replace(/\/[^/]*$/, `/${dbName}`) });
  try {
    await until('registry-api', async () => (await fetch(`${url}/health`)).status === 200, 60_000);
    const register = await fetch(`${url}${BASE}/register`, { method: 'POST', headers: TOKEN, body: JSON.stringify({ serviceName: 'svc-template', serviceId: 'seed-template', vmIp: '10.0.0.1', internalPort: 8000, externalDomain: 'seed.example.com', version: '1.4.2', deploymentId: 'bench', environment: 'production', region: 'fra1', models: ['bench-model-0'] }) });
    if (register.status !== 201) throw new Error(`register: ${register.status}`);
    await db.connect();
    log(`seeding ${N} instances`);
    await seed(db, N);
    const total = N + 1;
    const status = (serviceId, body) => fetch(`${url}${BASE}/${serviceId}/status`, { method: 'PUT', headers: TOKEN, body: JSON.stringify(body) });

    const figures = { load: [], loadLongTaskMax: [], domRows: [], search: [], recolour: [], longTaskMax: [], longTaskTotal: [], heapMb: [] };
    for (let round = 1; round <= REPEAT; round++) {
      const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
      const page = await context.newPage();
      await page.addInitScript(() => {
        window.__longTasks = [];
        new PerformanceObserver((list) => window.__longTasks.push(...list.getEntries().map((e) => e.duration))).observe({ type: 'longtask', buffered: true });
      });
      const t0 = performance.now();
      await page.goto(`${url}/console/`);
      await page.waitForFunction((n) => document.querySelector('[data-testid="feed-status"]')?.textContent?.includes(`${n.toLocaleString('en')} instances`) && document.querySelector('[data-testid="instance-row"]'), total, { timeout: 120_000, polling: 'raf' });
      figures.load.push(performance.now() - t0);
      figures.domRows.push(await page.locator('[data-testid="instance-row"]').count());

      // Search: the keystroke that narrows 10,000 to one, until the list shows only it.
      const target = `seed-${(round * 7919) % N}`;
      const search = page.getByRole('searchbox');
      const s0 = performance.now();
      await search.fill(target);
      await page.waitForFunction((t) => { const rows = document.querySelectorAll('[data-testid="instance-row"]'); return rows.length >= 1 && [...rows].every((r) => r.getAttribute('data-instance-id')?.startsWith(t)); }, target, { polling: 'raf' });
      figures.search.push(performance.now() - s0);

      // REST status change → the visible row's state attribute, 20 times.
      const row = page.locator(`[data-instance-id="${target}"]`);
      for (let i = 0; i < 20; i++) {
        const next = i % 2 ? 'healthy' : 'degraded';
        const r0 = performance.now();
        const res = await status(target, { status: next });
        if (res.status !== 200) throw new Error(`status: ${res.status}`);
        await row.and(page.locator(`[data-status="${next}"]`)).waitFor({ timeout: 10_000 });
        figures.recolour.push(performance.now() - r0);
      }

      // A burst of 500 changes over the whole fleet with the filter cleared: long tasks meanwhile.
      await search.fill('');
      figures.loadLongTaskMax.push(await page.evaluate(() => Math.max(0, ...window.__longTasks.splice(0))));
      const ids = Array.from({ length: 500 }, (_, i) => `seed-${(i * 13 + round) % N}`);
      let highest = 0;
      for (let i = 0; i < ids.length; i += 25) {
        const answers = await Promise.all(ids.slice(i, i + 25).map(async (sid) => (await (await status(sid, { status: round % 2 ? 'unhealthy' : 'healthy' })).json()).service?.revision ?? 0));
        highest = Math.max(highest, ...answers);
      }
      // Until the page shows the last change's revision: every event of the burst rendered.
      await page.waitForFunction((r) => Number((/revision ([\d,]+)/.exec(document.querySelector('[data-testid="feed-status"]')?.textContent ?? '')?.[1] ?? '0').replace(/,/g, '')) >= r, highest, { timeout: 60_000, polling: 'raf' });
      const tasks = await page.evaluate(() => window.__longTasks.slice());
      figures.longTaskMax.push(tasks.length ? Math.max(...tasks) : 0);
      figures.longTaskTotal.push(tasks.reduce((a, b) => a + b, 0));
      figures.heapMb.push((await page.evaluate(() => performance.memory?.usedJSHeapSize ?? NaN)) / 2 ** 20);
      log(`round ${round}: load ${figures.load.at(-1).toFixed(0)} ms, ${figures.domRows.at(-1)} rows in the DOM, search ${figures.search.at(-1).toFixed(0)} ms`);
      await context.close();
    }
    const med = (v, d = 0) => { const s = stats(v); return `${s.median.toFixed(d)} (${s.min.toFixed(d)}–${s.max.toFixed(d)})`; };
    const table = [
      `| console, ${total.toLocaleString('en')} instances (${REPEAT} rounds, median (range)) | |`,
      '|---|---|',
      `| navigation → live fleet on screen | ${med(figures.load)} ms |`,
      `| longest task while loading and searching | ${med(figures.loadLongTaskMax)} ms |`,
      `| instance rows in the DOM | ${med(figures.domRows)} |`,
      `| search keystroke → list filtered | ${med(figures.search)} ms |`,
      `| REST status change → row recoloured (20 per round) | ${med(figures.recolour)} ms |`,
      `| longest task during 500 changes | ${med(figures.longTaskMax)} ms |`,
      `| long tasks in all during 500 changes | ${med(figures.longTaskTotal)} ms |`,
      `| JS heap | ${med(figures.heapMb, 1)} MiB |`,
    ].join('\n');
    console.log(table);
    writeResults('console', figures, table);
  } finally {
    await browser.close();
    await stop(registry.child);
    await db.end().catch(() => undefined);
    await dropDatabase(PG_ADMIN_URL, dbName).catch((e) => log(`drop database: ${e.message}`));
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});

#!/usr/bin/env node
// The router's table at registry scale (issue 9 §3): how long a router takes to load N instances
// from a cold start (the snapshot), and how long after a NATS outage (SIGKILL, writes meanwhile,
// restart) its table holds every change again. Runs registry-api and llm-router as built, against a
// throw-away database and a private nats-server with JetStream (killed and restarted by the bench),
// seeds N instances straight into PostgreSQL (registering 100,000 over REST would take minutes and is
// measured by bench:registry), and repeats each phase, reporting median and range. registry-api's event
// loop while it serves each cold load's snapshot: prom-client's monitorEventLoopDelay histogram (10 ms
// resolution, reset by every scrape), scraped just before the router starts and once its table is full.
// Usage: npm run bench:table   (env: BENCH_TABLE_SIZES=10000,100000 BENCH_REPEAT=3 BENCH_OUTAGE_WRITES=200 BENCH_SKIP_BUILD=1)
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { children, dropDatabase, fmtRange as fmt, freePort, log, portOpen, ROOT, runNode as run, stats, stopChild as stop, until, writeResults } from './bench-kit.mjs';

const REGISTRY_MAIN = 'dist/apps/registry-api/apps/registry-api/src/main.js';
const ROUTER_MAIN = 'dist/apps/llm-router/apps/llm-router/src/main.js';
const SIZES = (process.env.BENCH_TABLE_SIZES ?? '10000,100000').split(',').map(Number);
const REPEAT = Number(process.env.BENCH_REPEAT ?? 3);
const OUTAGE_WRITES = Number(process.env.BENCH_OUTAGE_WRITES ?? 200);
const NATS_BIN = process.env.NATS_SERVER_BIN ?? 'nats-server';
const PG_ADMIN_URL = process.env.BENCH_PG_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const TOKEN = { 'x-registry-token': 'dev-registry-token', 'content-type': 'application/json' };
const API_KEY = 'sk-bench-table-0123456789';

const id = randomBytes(4).toString('hex');
const prefix = `benchtable${id}`;
const dbName = `sb_bench_table_${id}`;
const storeDir = mkdtempSync(join(os.tmpdir(), 'sb-bench-nats-'));
const get = async (url, headers = {}) => (await fetch(url, { headers })).json();

// --- NATS, registry-api, seeding ----------------------------------------------------------------

const natsPort = await freePort();
let nats;
async function startNats() {
  nats = spawn(NATS_BIN, ['-a', '127.0.0.1', '-p', String(natsPort), '-js', '-sd', storeDir], { stdio: 'ignore' });
  children.add(nats);
  await until('nats-server', () => portOpen(natsPort), 10_000);
}
const natsUrl = `nats://127.0.0.1:${natsPort}`;

/** Clones one registered instance into rows seed-<start>…seed-<end - 1> with fresh ids and revisions from the registry's own sequence. */
async function seed(db, from, start, end) {
  const columns = (await db.query(`SELECT column_name FROM information_schema.columns WHERE table_name = 'service_instances' ORDER BY ordinal_position`)).rows.map((r) => r.column_name);
  const values = columns.map((c) =>
    c === 'service_id' ? `'seed-' || g` : c === 'revision' ? `nextval('registry_revision_seq')` : c === 'models' ? `ARRAY['bench-model-' || (g % 500)]::text[]` : `"${c}"`,
  );
  await db.query(
    `INSERT INTO service_instances (${columns.map((c) => `"${c}"`).join(', ')})
     SELECT ${values.join(', ')} FROM service_instances, generate_series($2::int, $3::int - 1) AS g WHERE service_id = $1`,
    [from, start, end],
  );
}

async function main() {
  if (!process.env.BENCH_SKIP_BUILD) {
    log('building registry-api and llm-router');
    const built = spawnSync('npx', ['nx', 'run-many', '-t', 'build', '-p', 'registry-api', 'llm-router', '--outputStyle=static'], { cwd: ROOT, stdio: 'inherit' });
    if (built.status !== 0) throw new Error('build failed');
  }
  const admin = new pg.Client({ connectionString: PG_ADMIN_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${dbName}`);
  const db = new pg.Client({ connectionString: PG_ADMIN_URL.replace(/\/[^/]*$/, `/${dbName}`) });
  await startNats();

  const registryPort = await freePort();
  const registryUrl = `http://127.0.0.1:${registryPort}`;
  const registry = run(REGISTRY_MAIN, { PORT: String(registryPort), DATABASE_URL: `postgres://postgres@127.0.0.1:5432/${dbName}`, NATS_URL: natsUrl, SUBJECT_PREFIX: prefix, CACHE_ENABLED: 'false' });
  await until('registry-api', async () => (await fetch(`${registryUrl}/health`)).status === 200, 60_000);
  await db.connect();
  const register = async (serviceId, models = ['bench-model-0']) => {
    const res = await fetch(`${registryUrl}/api/v2/services/registry/register`, {
      method: 'POST',
      headers: TOKEN,
      body: JSON.stringify({ serviceName: 'bench-table', serviceId, vmIp: '10.0.0.1', internalPort: 8000, externalDomain: `${serviceId}.example.com`, version: '1.0.0', deploymentId: 'bench', environment: 'development', region: 'bench1', models }),
    });
    if (res.status !== 201) throw new Error(`register ${serviceId}: ${res.status} ${await res.text()}`);
  };
  await register('seed-template');

  const results = [];
  let seeded = 0;
  for (const size of SIZES) {
    log(`seeding ${size - seeded} more instance(s) (${size} in all)`);
    await seed(db, 'seed-template', seeded, size);
    seeded = size;
    const total = Number((await db.query('SELECT count(*) FROM service_instances')).rows[0].count);

    // Cold start: process start → table holds every instance.
    const loads = [];
    const rss = [];
    const lagMax = [];
    const lagP99 = [];
    const lag = async () => {
      const text = await (await fetch(`${registryUrl}/metrics`)).text();
      const value = (name) => Number(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)`, 'm').exec(text)?.[1] ?? NaN) * 1000;
      return { max: value('nodejs_eventloop_lag_max_seconds'), p99: value('nodejs_eventloop_lag_p99_seconds') };
    };
    let router;
    let routerUrl;
    for (let i = 0; i < REPEAT; i++) {
      await stop(router?.child);
      const port = await freePort();
      routerUrl = `http://127.0.0.1:${port}`;
      await lag(); // resets the histogram: what follows is the snapshot
      const started = performance.now();
      router = run(ROUTER_MAIN, { PORT: String(port), NATS_URL: natsUrl, SUBJECT_PREFIX: prefix, ROUTER_ENVIRONMENT: 'development', ROUTER_API_KEYS: API_KEY, DRIFT_CHECK_INTERVAL_MS: '600000' });
      await until(`router loading ${total}`, async () => (await get(`${routerUrl}/health`)).table?.instances === total, 600_000, 25);
      loads.push(performance.now() - started);
      const during = await lag();
      lagMax.push(during.max);
      lagP99.push(during.p99);
      const metrics = await (await fetch(`${routerUrl}/metrics`)).text();
      rss.push(Number(/^process_resident_memory_bytes(?:\{[^}]*\})? (\S+)/m.exec(metrics)?.[1] ?? NaN) / 2 ** 20);
    }

    // Outage: SIGKILL NATS, OUTAGE_WRITES status changes over REST meanwhile, restart; time until the table has them all.
    const catchUps = [];
    const resyncsBefore = (await get(`${routerUrl}/health`)).table.resyncs;
    for (let i = 0; i < REPEAT; i++) {
      await stop(nats, 'SIGKILL');
      let last = 0;
      for (let w = 0; w < OUTAGE_WRITES; w++) {
        const res = await fetch(`${registryUrl}/api/v2/services/registry/seed-${(w * 7919) % size}/status`, { method: 'PUT', headers: TOKEN, body: JSON.stringify({ status: (w + i) % 2 ? 'degraded' : 'healthy' }) });
        const body = await res.json();
        if (res.status !== 200) throw new Error(`status change: ${res.status} ${JSON.stringify(body)}`);
        last = Math.max(last, body.service?.revision ?? body.revision ?? 0);
      }
      await startNats();
      const restarted = performance.now();
      await until('router catching up', async () => (await get(`${routerUrl}/health`)).table?.revision >= last, 120_000, 10);
      catchUps.push(performance.now() - restarted);
    }
    const resyncsAfter = (await get(`${routerUrl}/health`)).table.resyncs;
    results.push({ size: total, load: stats(loads), rss: stats(rss), registryLagMax: stats(lagMax), registryLagP99: stats(lagP99), catchUp: stats(catchUps), snapshotsDuringOutages: resyncsAfter - resyncsBefore });
    log(`${total} instances: cold load ${fmt(stats(loads))}, RSS ${fmt(stats(rss), 'MiB')}, registry-api event-loop delay max ${fmt(stats(lagMax))} p99 ${fmt(stats(lagP99))}, caught up ${fmt(stats(catchUps))} after NATS restarts`);
    await stop(router.child);
  }
  await stop(registry.child);
  await db.end();

  console.log(`\nRouting table at scale (${os.cpus().length} cores, ${REPEAT} runs each, median (min–max); ${OUTAGE_WRITES} status changes during each NATS outage)\n`);
  console.log('| instances | cold load (start → table full) | router RSS after load | registry-api event-loop delay during the snapshot, max / p99 | caught up after NATS restart | snapshots taken for the outages |');
  console.log('|---|---|---|---|---|---|');
  for (const r of results)
    console.log(`| ${r.size} | ${fmt(r.load)} | ${fmt(r.rss, 'MiB')} | ${fmt(r.registryLagMax)} / ${fmt(r.registryLagP99)} | ${fmt(r.catchUp)} | ${r.snapshotsDuringOutages} |`);
  console.log('\nTargets (issue 12): 100,000 instances load in ≤ 2 s, router RSS ≤ 250 MB, registry-api never blocked > 50 ms at a time.');
  writeResults('table', { settings: { repeat: REPEAT, outageWrites: OUTAGE_WRITES }, units: { load: 'ms', rss: 'MiB', registryLagMax: 'ms', registryLagP99: 'ms', catchUp: 'ms' }, sizes: results });
  await admin.end();
}

async function cleanup() {
  for (const child of children) child.kill('SIGKILL');
  rmSync(storeDir, { recursive: true, force: true });
  // Also after a failure: a bench must not leave its database behind.
  await dropDatabase(PG_ADMIN_URL, dbName).catch((error) => log(`could not drop ${dbName}: ${error.message}`));
}

main()
  .catch((error) => {
    log(`failed: ${error.stack ?? error}`);
    process.exitCode = 1;
  })
  .finally(cleanup);

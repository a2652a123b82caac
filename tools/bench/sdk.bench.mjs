#!/usr/bin/env node
// The SDK's client side (issue 10), from the BUILT package dist/libs/sdk as an app would install it:
// - pick cost: ns per instance choice (p2c, what each attempt does) and per getAll(target, 3), with
//   3 and with 100 routable instances, 1e6 calls each;
// - added latency: the same small chat completion to the same mock backend (a model only it serves),
//   sequentially, through client.request and through a direct undici request (keep-alive Agent),
//   interleaved in blocks within one run; the client's median/p99 minus the direct one's.
// Starts its own nats-server (JetStream), registry-api and mock backends as built, on a throw-away
// database; 3 repeats, median and range; cleans up.
// Usage: npm run bench:sdk   (env: BENCH_REPEAT=3 BENCH_PICKS=1000000 BENCH_REQUESTS=2000 BENCH_SKIP_BUILD=1)
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { children, fmtRange as fmt, freePort, log, portOpen, ROOT, runNode as run, stats, until, writeResults } from './bench-kit.mjs';

const require = createRequire(join(ROOT, 'package.json'));
const REGISTRY_MAIN = 'dist/apps/registry-api/apps/registry-api/src/main.js';
const MOCK_MAIN = 'dist/apps/mock-llm-backend/apps/mock-llm-backend/src/main.js';
const REPEAT = Number(process.env.BENCH_REPEAT ?? 3);
const PICKS = Number(process.env.BENCH_PICKS ?? 1_000_000);
const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 2000);
const BLOCK = 100;
const NATS_BIN = process.env.NATS_SERVER_BIN ?? 'nats-server';
const PG_ADMIN_URL = process.env.BENCH_PG_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const TOKEN = { 'x-registry-token': 'dev-registry-token', 'content-type': 'application/json' };
const MODEL = 'bench-sdk-model';
const WIDE = 'bench-sdk-wide';
/** Served by one backend only: the client and the direct request reach the same process. */
const SOLO = 'bench-sdk-solo';

const id = randomBytes(4).toString('hex');
const prefix = `benchsdk${id}`;
const dbName = `sb_bench_sdk_${id}`;
const storeDir = mkdtempSync(join(os.tmpdir(), 'sb-bench-sdk-nats-'));
const percentile = (values, p) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
};

async function main() {
  if (!process.env.BENCH_SKIP_BUILD) {
    log('building sdk, registry-api and mock-llm-backend');
    const built = spawnSync('npx', ['nx', 'run-many', '-t', 'build', '-p', 'sdk', 'registry-api', 'mock-llm-backend', '--outputStyle=static'], { cwd: ROOT, stdio: 'inherit' });
    if (built.status !== 0) throw new Error('build failed');
  }
  const { SwitchboardClient } = require(join(ROOT, 'dist/libs/sdk'));
  const { Agent, request } = require('undici');

  const admin = new pg.Client({ connectionString: PG_ADMIN_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${dbName}`);
  let client;
  let agent;
  try {
    const natsPort = await freePort();
    const nats = spawn(NATS_BIN, ['-a', '127.0.0.1', '-p', String(natsPort), '-js', '-sd', storeDir], { stdio: 'ignore' });
    children.add(nats);
    await until('nats-server', () => portOpen(natsPort), 10_000);
    const natsUrl = `nats://127.0.0.1:${natsPort}`;

    const registryPort = await freePort();
    const registryUrl = `http://127.0.0.1:${registryPort}`;
    run(REGISTRY_MAIN, { PORT: String(registryPort), DATABASE_URL: `postgres://postgres@127.0.0.1:5432/${dbName}`, NATS_URL: natsUrl, SUBJECT_PREFIX: prefix, CACHE_ENABLED: 'false' });
    await until('registry-api', async () => (await fetch(`${registryUrl}/health`)).status === 200);
    const register = async (serviceId, port, models) => {
      const res = await fetch(`${registryUrl}/api/v2/services/registry/register`, {
        method: 'POST',
        headers: TOKEN,
        body: JSON.stringify({ serviceName: 'bench-sdk', serviceId, vmIp: '127.0.0.1', internalPort: port, externalDomain: `${serviceId}.example.com`, version: '1.0.0', deploymentId: 'bench', environment: 'development', region: 'bench1', models }),
      });
      if (res.status !== 201) throw new Error(`register ${serviceId}: ${res.status} ${await res.text()}`);
    };

    const backends = [];
    for (let i = 0; i < 3; i++) {
      const port = await freePort();
      run(MOCK_MAIN, { PORT: String(port), MOCK_NAME: `bench-sdk-${i}`, MOCK_MODELS: i === 0 ? `${MODEL},${SOLO}` : MODEL, MOCK_LATENCY_MS: '0', MOCK_COMPLETION_TOKENS: '8' });
      const url = `http://127.0.0.1:${port}`;
      await until(`mock backend ${i}`, async () => (await fetch(`${url}/health`)).status === 200);
      await register(`bench-sdk-${i}`, port, i === 0 ? [MODEL, SOLO] : [MODEL]);
      backends.push(url);
    }
    // Never called: only the pick cost over a wider pool.
    for (let i = 0; i < 100; i++) await register(`bench-wide-${i}`, 9, [WIDE]);

    const started = performance.now();
    client = await SwitchboardClient.connect({ natsUrl, subjectPrefix: prefix, environment: 'development', logger: { log() {}, warn: log, error: log } });
    log(`client connected (table loaded) in ${(performance.now() - started).toFixed(0)} ms`);
    await until('instances in the client table', async () => client.instances(MODEL).length === 3 && client.instances(SOLO).length === 1 && client.instances(WIDE).length === 100, 10_000);

    const body = JSON.stringify({ model: SOLO, messages: [{ role: 'user', content: 'one two three' }] });
    agent = new Agent({ keepAliveTimeout: 30_000, pipelining: 1 });
    const direct = async () => {
      const res = await request(`${backends[0]}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body, dispatcher: agent });
      const json = await res.body.json();
      if (res.statusCode !== 200 || json.object !== 'chat.completion') throw new Error(`direct: ${res.statusCode}`);
    };
    const viaClient = async () => {
      const json = await client.request(SOLO, '/v1/chat/completions', body, { headers: { 'content-type': 'application/json' } });
      if (json.object !== 'chat.completion') throw new Error('client: unexpected answer');
    };
    const timed = async (fn, n, into) => {
      for (let i = 0; i < n; i++) {
        const t = performance.now();
        await fn();
        into.push(performance.now() - t);
      }
    };
    // Warm both paths (connections, JIT).
    await timed(direct, 300, []);
    await timed(viaClient, 300, []);

    // Latency first, every repeat, then the pick loops: their millions of short-lived objects would
    // otherwise leave GC work that lands on whichever requests follow (seen as a p99 gap).
    const rows = [];
    for (let r = 0; r < REPEAT; r++) {
      const d = [];
      const c = [];
      // Interleaved blocks: drift of the machine (other load) hits both paths alike.
      for (let done = 0; done < REQUESTS; done += BLOCK) {
        await timed(direct, BLOCK, d);
        await timed(viaClient, BLOCK, c);
      }
      const row = { directMedian: percentile(d, 50), clientMedian: percentile(c, 50), directP99: percentile(d, 99), clientP99: percentile(c, 99) };
      row.addedMedianUs = (row.clientMedian - row.directMedian) * 1000;
      row.addedP99Us = (row.clientP99 - row.directP99) * 1000;
      rows.push(row);
      log(`latency run ${r + 1}: direct ${row.directMedian.toFixed(3)} ms, client ${row.clientMedian.toFixed(3)} ms (median), added ${row.addedMedianUs.toFixed(0)} µs; p99 added ${row.addedP99Us.toFixed(0)} µs`);
    }
    for (let r = 0; r < REPEAT; r++) {
      const row = rows[r];
      for (const [label, target] of [
        ['3', MODEL],
        ['100', WIDE],
      ]) {
        for (let i = 0; i < 10_000; i++) client.pickInstance(target);
        let t = process.hrtime.bigint();
        for (let i = 0; i < PICKS; i++) client.pickInstance(target);
        row[`pick${label}`] = Number(process.hrtime.bigint() - t) / PICKS;
        t = process.hrtime.bigint();
        for (let i = 0; i < PICKS; i++) client.getAll(target, 3);
        row[`getAll${label}`] = Number(process.hrtime.bigint() - t) / PICKS;
      }
      log(`pick run ${r + 1}: pick ${row.pick3.toFixed(0)} ns (3) / ${row.pick100.toFixed(0)} ns (100), getAll ${row.getAll3.toFixed(0)} ns / ${row.getAll100.toFixed(0)} ns`);
    }
    const col = (k) => stats(rows.map((r) => r[k]));
    console.log(`\nSDK client (dist/libs/sdk), ${os.cpus().length} cores, ${REPEAT} runs, median (min–max); ${PICKS} calls per pick figure, ${REQUESTS} sequential requests per path per run\n`);
    console.log('| figure | 3 routable instances | 100 routable instances |');
    console.log('|---|---|---|');
    console.log(`| instance choice (p2c, one attempt's pick) | ${fmt(col('pick3'), 'ns')} | ${fmt(col('pick100'), 'ns')} |`);
    console.log(`| getAll(target, 3) | ${fmt(col('getAll3'), 'ns')} | ${fmt(col('getAll100'), 'ns')} |`);
    console.log('\n| request (small chat completion, loopback mock, keep-alive) | median latency | p99 latency |');
    console.log('|---|---|---|');
    console.log(`| direct undici request | ${fmt(col('directMedian'), 'ms', 3)} | ${fmt(col('directP99'), 'ms', 3)} |`);
    console.log(`| client.request | ${fmt(col('clientMedian'), 'ms', 3)} | ${fmt(col('clientP99'), 'ms', 3)} |`);
    console.log(`| added by the client | ${fmt(col('addedMedianUs'), 'µs')} | ${fmt(col('addedP99Us'), 'µs')} |`);
    writeResults('sdk', { settings: { repeat: REPEAT, picks: PICKS, requests: REQUESTS }, runs: rows, summary: Object.fromEntries(Object.keys(rows[0] ?? {}).map((k) => [k, col(k)])) });
  } finally {
    await client?.close();
    await agent?.close();
    for (const child of children) child.kill('SIGKILL');
    await sleep(200);
    await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`).catch((error) => log(`drop database: ${error.message}`));
    await admin.end();
  }
}

main()
  .catch((error) => {
    log(`failed: ${error.stack ?? error}`);
    process.exitCode = 1;
  })
  .finally(() => {
    for (const child of children) child.kill('SIGKILL');
    rmSync(storeDir, { recursive: true, force: true });
  });

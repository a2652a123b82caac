#!/usr/bin/env node
// Load benchmark of registry-api: registrations over HTTP, heartbeats over NATS until lastSeen is
// persisted, and commit→subscriber latency of status events. Starts its own registry-api against a
// throw-away database and subject prefix, so it never touches anyone else's data, and removes them
// afterwards. Usage: node tools/bench/registry.bench.mjs   (env: BENCH_HEARTBEATS, BENCH_REGISTRATIONS,
// BENCH_EVENTS, BENCH_SKIP_BUILD=1)
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { connect } from 'nats';
import pg from 'pg';
import { Pool } from 'undici';
import { freePort, histogramQuantile, log, parseMetrics, percentile, sumOf, cleanupStep as step, deleteStream, dropDatabase, onInterrupt } from './bench-kit.mjs';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const MAIN_JS = 'dist/apps/registry-api/apps/registry-api/src/main.js';
const int = (name, fallback) => (process.env[name] ? Number.parseInt(process.env[name], 10) : fallback);
const N_REG = int('BENCH_REGISTRATIONS', 2000);
const N_HB = int('BENCH_HEARTBEATS', 200_000);
const N_EVENTS = int('BENCH_EVENTS', 1000);
const HB_INSTANCES = Math.min(1000, N_REG);
const CONCURRENCY = 32;
const FLUSH_EVERY = 5000; // bounds the client's outbound buffer without a round trip per message
const TOKEN = { 'x-registry-token': 'dev-registry-token', 'content-type': 'application/json' };
const NATS_URL = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';
const PG_ADMIN_URL = process.env.BENCH_PG_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

const id = randomBytes(4).toString('hex');
const prefix = `bench${id}`;
const dbName = `sb_bench_${id}`;
const streamName = `${prefix}_REGISTRY`;

// --- small helpers ------------------------------------------------------------------------------

const ms = (v) => (Number.isFinite(v) ? v.toFixed(1) : 'n/a');

// --- the system under test ----------------------------------------------------------------------

let child;
let childExited = false;
const childOutput = []; // last lines only; LOG_LEVEL=warn, so anything here is worth a look
function startRegistryApi(port) {
  child = spawn(process.execPath, [MAIN_JS], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env, NODE_ENV: 'development', PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'warn',
      DATABASE_URL: `postgres://postgres@127.0.0.1:5432/${dbName}`, NATS_URL, SUBJECT_PREFIX: prefix,
    },
  });
  const keep = (chunk) => {
    childOutput.push(...chunk.toString().split('\n').filter(Boolean));
    childOutput.splice(0, Math.max(0, childOutput.length - 200));
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  child.once('exit', (code, signal) => {
    childExited = true;
    if (!cleaningUp) log(`registry-api exited unexpectedly (code ${code}, signal ${signal})`);
  });
}

async function waitHealthy(http) {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (childExited) throw new Error('registry-api exited during start-up');
    try {
      const { statusCode, body } = await http.request({ path: '/health', method: 'GET' });
      await body.dump();
      if (statusCode === 200) return;
    } catch {
      // not listening yet
    }
    await sleep(200);
  }
  throw new Error('registry-api did not become healthy within 60 s');
}

async function scrape(http) {
  const { statusCode, body } = await http.request({ path: '/metrics', method: 'GET' });
  if (statusCode !== 200) throw new Error(`GET /metrics answered ${statusCode}`);
  return parseMetrics(await body.text());
}

// --- phases -------------------------------------------------------------------------------------

const registration = (i) => ({
  serviceName: `bench-svc-${i % 20}`, serviceId: `bench-${i}`, vmIp: `10.0.${(i >> 8) & 255}.${i & 255}`, internalPort: 8000 + (i % 1000),
  externalDomain: `bench-${i}.example.com`, version: '1.0.0', deploymentId: `bench-${id}`, environment: 'development', region: 'bench1',
});

async function benchRegistrations(http) {
  const latencies = [];
  let failures = 0;
  let next = 0;
  const worker = async () => {
    while (next < N_REG && !cleaningUp) {
      const i = next++;
      const started = performance.now();
      try {
        const res = await http.request({ path: '/api/v2/services/registry/register', method: 'POST', headers: TOKEN, body: JSON.stringify(registration(i)) });
        const text = await res.body.text();
        if (res.statusCode !== 201) {
          if (failures++ < 3) log(`register ${i} → ${res.statusCode}: ${text.slice(0, 200)}`);
          continue;
        }
      } catch (error) {
        if (failures++ < 3) log(`register ${i} failed: ${error.message}`);
        continue;
      }
      latencies.push(performance.now() - started);
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  const seconds = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  return { rate: latencies.length / seconds, p50: percentile(latencies, 0.5), p99: percentile(latencies, 0.99), failures };
}

async function benchHeartbeats(nc, db) {
  const ids = Array.from({ length: HB_INSTANCES }, (_, i) => `bench-${i}`);
  const subjects = ids.map((sid, i) => `${prefix}.registry.heartbeat.development.bench-svc-${i % 20}.${sid}`);
  const rounds = Math.ceil(N_HB / HB_INSTANCES);
  // registry-api stamps lastSeen with its own receive time, so "last_seen >= start of the last round"
  // is already true when it persists a backlog of *older* rounds. The round number rides in the load
  // figures (persisted with lastSeen), so the DB can show that the last round itself was written.
  const encoder = new TextEncoder();
  const payloadOf = (r) => encoder.encode(JSON.stringify({ metadata: { requestsPerMinute: r, averageLatency: 120, errorRate: 0.01, inflight: r % 8 } }));
  let published = 0;
  let lastRoundStart;
  const started = performance.now();
  for (let r = 0; r < rounds; r++) {
    if (r === rounds - 1) lastRoundStart = new Date();
    const payload = payloadOf(r); // one encode per round keeps the publisher's CPU on publishing
    for (let i = 0; i < HB_INSTANCES; i++) {
      nc.publish(subjects[i], payload);
      if (++published % FLUSH_EVERY === 0) await nc.flush();
    }
  }
  await nc.flush();
  const publishSeconds = (performance.now() - started) / 1000;
  const deadline = performance.now() + 60_000;
  let persisted = 0;
  let naiveSeconds; // when the last_seen-only criterion was first met, for comparison
  while (performance.now() < deadline && !childExited) {
    const { rows } = await db.query(
      `SELECT count(*)::int AS seen, count(*) FILTER (WHERE load->>'requestsPerMinute' = $3)::int AS last_round
         FROM service_instances WHERE service_id = ANY($1) AND last_seen >= $2`,
      [ids, lastRoundStart, String(rounds - 1)],
    );
    if (rows[0].seen === ids.length) naiveSeconds ??= (performance.now() - started) / 1000;
    persisted = rows[0].last_round;
    if (persisted === ids.length) break;
    await sleep(20);
  }
  const seconds = (performance.now() - started) / 1000;
  return { published, publishSeconds, naiveSeconds, seconds, rate: published / seconds, complete: persisted === ids.length, persisted };
}

async function benchEvents(nc, http) {
  const arrivals = new Map(); // revision → performance.now() at arrival
  const waiters = new Map(); // revision → resolve
  const sub = nc.subscribe(`${prefix}.registry.events.>`, {
    callback: (error, msg) => {
      if (error) return;
      const at = performance.now();
      const revision = msg.json()?.data?.revision;
      if (typeof revision !== 'number') return;
      arrivals.set(revision, at);
      waiters.get(revision)?.(at);
    },
  });
  await nc.flush(); // the subscription is registered with the server before the first change
  const latencies = [];
  let failures = 0;
  try {
    for (let i = 0; i < N_EVENTS && !cleaningUp; i++) {
      const sent = performance.now();
      try {
        const body = JSON.stringify({ status: i % 2 === 0 ? 'degraded' : 'healthy' });
        const res = await http.request({ path: '/api/v2/services/registry/bench-0/status', method: 'PUT', headers: TOKEN, body });
        const reply = await res.body.json();
        if (res.statusCode !== 200 || !reply.changed) throw new Error(`${res.statusCode} ${JSON.stringify(reply).slice(0, 200)}`);
        const revision = reply.service.revision;
        // The event may beat the HTTP response to us, hence the arrivals map.
        const arrived = arrivals.get(revision) ?? (await Promise.race([new Promise((resolve) => waiters.set(revision, resolve)), sleep(5000)]));
        waiters.delete(revision);
        if (arrived === undefined) throw new Error(`no event for revision ${revision} within 5 s`);
        latencies.push(arrived - sent);
      } catch (error) {
        if (failures++ < 3) log(`status change ${i} failed: ${error.message}`);
      }
    }
  } finally {
    sub.unsubscribe();
  }
  latencies.sort((a, b) => a - b);
  return { p50: percentile(latencies, 0.5), p99: percentile(latencies, 0.99), count: latencies.length, failures };
}

// --- orchestration and clean-up -----------------------------------------------------------------

let cleaningUp;
let nc;
let db;
let http;
function cleanup() {
  cleaningUp ??= (async () => {
    await step('stop registry-api', async () => {
      if (!child || childExited) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      if (!(await Promise.race([exited.then(() => true), sleep(5000, false)]))) child.kill('SIGKILL');
    });
    await step('close HTTP pool', () => http?.close());
    await step('close bench DB client', () => db?.end());
    await step(`delete stream ${streamName}`, async () => {
      if (!nc) return;
      await deleteStream(nc, streamName);
    });
    await step('close NATS', () => nc?.close());
    await step(`drop database ${dbName}`, () => dropDatabase(PG_ADMIN_URL, dbName));
  })();
  return cleaningUp;
}

let interrupted = false;
onInterrupt(cleanup, () => (interrupted = true));

async function main() {
  const wallStarted = performance.now();
  if (process.env.BENCH_SKIP_BUILD !== '1') {
    log('building registry-api');
    const build = spawnSync('npx', ['nx', 'run', 'registry-api:build', '--outputStyle=static'], { cwd: ROOT, encoding: 'utf8' });
    if (build.status !== 0) throw new Error(`build failed (exit ${build.status}):\n${build.stdout}${build.stderr}`);
  }
  nc = await connect({ servers: NATS_URL, name: 'registry-bench' });
  const port = await freePort();
  startRegistryApi(port);
  http = new Pool(`http://127.0.0.1:${port}`, { connections: CONCURRENCY, pipelining: 1, keepAliveTimeout: 30_000 });
  await waitHealthy(http);
  db = new pg.Client({ connectionString: `postgres://postgres@127.0.0.1:5432/${dbName}` });
  await db.connect();
  log(`registry-api up on :${port} (db ${dbName}, prefix ${prefix})`);

  const problems = [];
  log(`phase 1: ${N_REG} registrations at c=${CONCURRENCY}`);
  const reg = await benchRegistrations(http);
  if (reg.failures) problems.push(`${reg.failures} registration(s) did not answer 201`);

  log(`phase 2: ${N_HB} heartbeats over NATS to ${HB_INSTANCES} instances`);
  const m0 = await scrape(http);
  const hb = await benchHeartbeats(nc, db);
  if (!hb.complete) problems.push(`the last heartbeat round of only ${hb.persisted}/${HB_INSTANCES} instances was persisted within 60 s`);
  if (hb.naiveSeconds) log(`(last_seen >= last-round-start alone was true after ${hb.naiveSeconds.toFixed(2)} s: ${(hb.published / hb.naiveSeconds).toFixed(0)}/s, which overstates ingestion)`);
  // Let stragglers land (or stop arriving) so received/published is a final count, not mid-flight.
  const delta = (after, name, match) => sumOf(after, name, match) - sumOf(m0, name, match);
  let m1 = await scrape(http);
  for (let stable = 0, prev = -1; stable < 5 && delta(m1, 'registry_heartbeats_received_total', { transport: 'nats' }) < hb.published; ) {
    const received = delta(m1, 'registry_heartbeats_received_total', { transport: 'nats' });
    stable = received === prev ? stable + 1 : 0;
    prev = received;
    await sleep(200);
    m1 = await scrape(http);
  }
  const hbReceived = delta(m1, 'registry_heartbeats_received_total', { transport: 'nats' });
  const dropped = [...new Set(m1.filter((s) => s.name === 'registry_heartbeats_dropped_total').map((s) => s.labels.reason))]
    .map((reason) => [reason, delta(m1, 'registry_heartbeats_dropped_total', { reason })])
    .filter(([, n]) => n > 0);

  log(`phase 3: ${N_EVENTS} status changes, request → event on a NATS subscriber`);
  const ev = await benchEvents(nc, http);
  const m2 = await scrape(http);
  if (ev.failures) problems.push(`${ev.failures} status change(s) failed or their event never arrived`);
  const lagP50 = histogramQuantile(m1, m2, 'registry_outbox_publish_lag_seconds', 0.5) * 1000;
  const lagP99 = histogramQuantile(m1, m2, 'registry_outbox_publish_lag_seconds', 0.99) * 1000;

  const verdict = (ok) => (ok ? 'met' : '**missed**');
  const lines = [
    '| metric | value | target |',
    '|---|---|---|',
    `| registrations/s (HTTP, c=${CONCURRENCY}, n=${N_REG}) | ${reg.rate.toFixed(0)} | – |`,
    `| registration latency p50 / p99 | ${ms(reg.p50)} / ${ms(reg.p99)} ms | – |`,
    `| registration failures (non-201) | ${reg.failures} | 0 |`,
    `| heartbeats/s over NATS, lastSeen persisted (${HB_INSTANCES} instances) | ${hb.rate.toFixed(0)} | ≥ 20,000 (${verdict(hb.complete && hb.rate >= 20_000)}) |`,
    `| heartbeat publish-only rate (bench side) | ${(hb.published / hb.publishSeconds).toFixed(0)} | – |`,
    `| heartbeats received / published | ${hbReceived} / ${hb.published} | – |`,
    `| heartbeats dropped by registry-api (its counter) | ${dropped.length ? dropped.map(([r, n]) => `${n} (${r})`).join(', ') : 0} | 0 |`,
    `| event latency request→subscriber p50 / p99 (n=${ev.count}) | ${ms(ev.p50)} / ${ms(ev.p99)} ms | p99 < 20 ms (${verdict(ev.p99 < 20)}) |`,
    `| outbox write→JetStream ack p50 / p99 (server histogram, phase 3) | ${ms(lagP50)} / ${ms(lagP99)} ms | – |`,
  ];
  const cpu = os.cpus();
  console.log(`\n${lines.join('\n')}\n`);
  console.log(
    `Node ${process.version}, ${cpu.length} × ${cpu[0]?.model.trim() ?? 'CPU'}, ${new Date().toISOString()}; ` +
      `bench wall time ${((performance.now() - wallStarted) / 1000).toFixed(1)} s. Event latency is measured from the moment ` +
      `the PUT was sent, so it is an upper bound on commit→subscriber. Outbox lag is interpolated from histogram buckets ` +
      `and starts at the row's created_at (= its transaction's start).`,
  );
  // Every heartbeat target was registered with a 201 above, so this counter cannot be right.
  if (dropped.some(([reason]) => reason === 'unknown_instance') && !reg.failures) {
    console.log('Note: all heartbeat targets are registered, so the unknown_instance drops are a counting error in registry-api.');
  }
  if (problems.length) throw new Error(problems.join('; '));
}

let exitCode = 0;
try {
  await main();
} catch (error) {
  exitCode = 1;
  log(interrupted ? 'interrupted' : `FAILED: ${error.message}`);
} finally {
  // LOG_LEVEL=warn: anything registry-api printed is a warning, an error or a crash.
  if (childOutput.length) {
    log(`registry-api output (last ${childOutput.length} lines):`);
    for (const line of childOutput) process.stderr.write(`  ${line}\n`);
  }
  await cleanup();
}
process.exit(interrupted ? 130 : exitCode);

#!/usr/bin/env node
// Benchmark of the Redis discovery cache: discovery requests/s and latency from one registry-api
// process, first uncached (CACHE_ENABLED=false, every read from PostgreSQL), then with a warm cache;
// then invalidation lag, from a status change to its marker in Redis. Starts its own redis-server
// (on a free port, with keyspace notifications on, so the moment a key is replaced is observed
// exactly), registry-api and cache-invalidator against a throw-away database and subject prefix,
// and removes them afterwards.
// Usage: node tools/bench/cache.bench.mjs   (env: BENCH_SECONDS, BENCH_CONCURRENCY, BENCH_SERVICES,
// BENCH_INSTANCES, BENCH_CHANGES, BENCH_SKIP_BUILD=1)
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { connect } from 'nats';
import { Pool } from 'undici';
import { freePort, histogramQuantile, log, parseMetrics, percentile, sumOf, writeResults, cleanupStep as step, deleteStream, dropDatabase, onInterrupt } from './bench-kit.mjs';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const REGISTRY_MAIN = 'dist/apps/registry-api/apps/registry-api/src/main.js';
const INVALIDATOR_MAIN = 'dist/apps/cache-invalidator/apps/cache-invalidator/src/main.js';
const int = (name, fallback) => (process.env[name] ? Number.parseInt(process.env[name], 10) : fallback);
const SECONDS = int('BENCH_SECONDS', 10);
const CONCURRENCY = int('BENCH_CONCURRENCY', 64);
const N_SERVICES = int('BENCH_SERVICES', 50);
const N_INSTANCES = int('BENCH_INSTANCES', 4); // per service
const N_CHANGES = int('BENCH_CHANGES', 1000);
const ENV = 'development';
const TOKEN = { 'x-registry-token': 'dev-registry-token', 'content-type': 'application/json' };
const NATS_URL = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';
const PG_ADMIN_URL = process.env.BENCH_PG_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

const id = randomBytes(4).toString('hex');
const prefix = `benchc${id}`;
const keyPrefix = `${prefix}:`;
const dbName = `sb_bench_${id}`;
const streamName = `${prefix}_REGISTRY`;

// --- small helpers ------------------------------------------------------------------------------

const ms = (v) => (Number.isFinite(v) ? v.toFixed(2) : 'n/a');

// --- processes under test -----------------------------------------------------------------------

const children = new Map(); // name → { child, exited, output }
function startProcess(name, command, args, env) {
  const child = spawn(command, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  const entry = { child, exited: false, output: [] };
  const keep = (chunk) => {
    entry.output.push(...chunk.toString().split('\n').filter(Boolean));
    entry.output.splice(0, Math.max(0, entry.output.length - 100));
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  child.once('exit', (code, signal) => {
    entry.exited = true;
    if (!cleaningUp && !entry.stopping) log(`${name} exited unexpectedly (code ${code}, signal ${signal})`);
  });
  children.set(name, entry);
  return entry;
}

async function stopProcess(name) {
  const entry = children.get(name);
  if (!entry || entry.exited) return;
  entry.stopping = true;
  const exited = new Promise((resolve) => entry.child.once('exit', resolve));
  entry.child.kill('SIGTERM');
  if (!(await Promise.race([exited.then(() => true), sleep(5000, false)]))) entry.child.kill('SIGKILL');
  await exited;
}

async function waitHealthy(name, http, ok = (status) => status === 200) {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (children.get(name)?.exited) throw new Error(`${name} exited during start-up`);
    try {
      const { statusCode, body } = await http.request({ path: '/health', method: 'GET' });
      await body.dump();
      if (ok(statusCode)) return;
    } catch {
      // not listening yet
    }
    await sleep(200);
  }
  throw new Error(`${name} did not become healthy within 60 s`);
}

async function scrape(http) {
  const { statusCode, body } = await http.request({ path: '/metrics', method: 'GET' });
  if (statusCode !== 200) throw new Error(`GET /metrics answered ${statusCode}`);
  return parseMetrics(await body.text());
}

const appEnv = (port) => ({
  NODE_ENV: 'development', PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'warn', NATS_URL, SUBJECT_PREFIX: prefix,
  DATABASE_URL: `postgres://postgres@127.0.0.1:5432/${dbName}`, REDIS_KEY_PREFIX: keyPrefix,
});

async function startRegistryApi(cacheEnabled, redisUrl) {
  const port = await freePort();
  startProcess('registry-api', process.execPath, [REGISTRY_MAIN], { ...appEnv(port), CACHE_ENABLED: String(cacheEnabled), REDIS_URL: redisUrl });
  const http = new Pool(`http://127.0.0.1:${port}`, { connections: CONCURRENCY, pipelining: 1, keepAliveTimeout: 30_000 });
  await waitHealthy('registry-api', http);
  return http;
}

// --- phases -------------------------------------------------------------------------------------

const serviceName = (s) => `bench-svc-${s}`;
const serviceId = (s, i) => `bench-${s}-${i}`;

async function registerAll(http) {
  let failures = 0;
  const jobs = [];
  for (let s = 0; s < N_SERVICES; s++) for (let i = 0; i < N_INSTANCES; i++) jobs.push([s, i]);
  const worker = async () => {
    for (let job = jobs.shift(); job; job = jobs.shift()) {
      const [s, i] = job;
      const body = JSON.stringify({
        serviceName: serviceName(s), serviceId: serviceId(s, i), vmIp: `10.1.${s}.${i}`, internalPort: 8000, externalDomain: `${serviceId(s, i)}.example.com`,
        version: '1.0.0', deploymentId: `bench-${id}`, environment: ENV, region: 'bench1', capabilities: ['llm'], models: [`model-${s}`],
        metadata: { gpu: 'a100', replicas: 2 }, requiredEnvironmentVars: [{ name: 'API_KEY', type: 'secret', required: true }],
      });
      const res = await http.request({ path: '/api/v2/services/registry/register', method: 'POST', headers: TOKEN, body });
      await res.body.dump();
      if (res.statusCode !== 201) failures++;
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
  if (failures) throw new Error(`${failures} registration(s) failed`);
}

/** Closed loop: CONCURRENCY requests in flight for SECONDS, random services, environment given (the cached path). */
async function loadDiscovery(http) {
  const latencies = [];
  let errors = 0;
  let stop = false;
  const worker = async () => {
    while (!stop) {
      const s = Math.floor(Math.random() * N_SERVICES);
      const started = performance.now();
      try {
        const res = await http.request({ path: `/api/v2/services/registry/discover/${serviceName(s)}?environment=${ENV}`, method: 'GET' });
        await res.body.dump();
        if (res.statusCode !== 200) errors++;
        else latencies.push(performance.now() - started);
      } catch {
        errors++;
      }
    }
  };
  // A short warm-up (JIT, connections), not measured.
  const warm = Array.from({ length: CONCURRENCY }, worker);
  await sleep(1000);
  stop = true;
  await Promise.all(warm);
  latencies.length = 0;
  errors = 0;
  stop = false;
  // registry-api's own CPU time over the window: a cost per request that other load on the machine does not skew.
  const cpuBefore = sumOf(await scrape(http), 'process_cpu_seconds_total');
  const started = performance.now();
  const workers = Array.from({ length: CONCURRENCY }, worker);
  await sleep(SECONDS * 1000);
  stop = true;
  await Promise.all(workers);
  const seconds = (performance.now() - started) / 1000;
  const cpuSeconds = sumOf(await scrape(http), 'process_cpu_seconds_total') - cpuBefore;
  latencies.sort((a, b) => a - b);
  const cpuPerRequestUs = (cpuSeconds * 1e6) / Math.max(1, latencies.length + errors);
  return { rate: latencies.length / seconds, p50: percentile(latencies, 0.5), p99: percentile(latencies, 0.99), errors, count: latencies.length, cpuPerRequestUs, cpuShare: cpuSeconds / seconds };
}

/**
 * Serial status changes; each waits for Redis to report its discovery key replaced (keyspace
 * notification). Milestones on the way, from the moment the PUT is sent: the HTTP answer (commit
 * done), the event on a core NATS subscription (outbox publish done), the key replaced.
 */
async function measureLag(http, subscriber) {
  const waiters = new Map(); // key → resolve
  const channelPrefix = '__keyspace@0__:';
  const eventArrivals = new Map(); // revision → performance.now()
  const events = nc.subscribe(`${prefix}.registry.events.>`, {
    callback: (error, msg) => {
      if (!error) eventArrivals.set(msg.json()?.data?.revision, performance.now());
    },
  });
  await nc.flush();
  const answered = [];
  const published = [];
  subscriber.on('pmessage', (_pattern, channel, message) => {
    if (message !== 'hset') return;
    const at = performance.now();
    const key = channel.slice(channelPrefix.length);
    waiters.get(key)?.(at);
  });
  await subscriber.psubscribe(`${channelPrefix}${keyPrefix}discovery:*`);
  const lags = [];
  let failures = 0;
  for (let n = 0; n < N_CHANGES && !cleaningUp; n++) {
    const s = n % N_SERVICES;
    const key = `${keyPrefix}discovery:${ENV}:${serviceName(s)}`;
    const replaced = new Promise((resolve) => waiters.set(key, resolve));
    const sent = performance.now();
    try {
      const body = JSON.stringify({ status: Math.floor(n / N_SERVICES) % 2 === 0 ? 'degraded' : 'healthy' });
      const res = await http.request({ path: `/api/v2/services/registry/${serviceId(s, 0)}/status`, method: 'PUT', headers: TOKEN, body });
      const reply = await res.body.json();
      const answeredAt = performance.now();
      if (res.statusCode !== 200 || !reply.changed) throw new Error(`${res.statusCode} ${JSON.stringify(reply).slice(0, 200)}`);
      const at = await Promise.race([replaced, sleep(5000, undefined)]);
      if (at === undefined) throw new Error(`${key} not replaced within 5 s`);
      lags.push(at - sent);
      answered.push(answeredAt - sent);
      const publishedAt = eventArrivals.get(reply.service.revision);
      if (publishedAt !== undefined) published.push(publishedAt - sent);
    } catch (error) {
      if (failures++ < 3) log(`status change ${n} failed: ${error.message}`);
    } finally {
      waiters.delete(key);
    }
  }
  events.unsubscribe();
  const summary = (values) => {
    values.sort((a, b) => a - b);
    return { p50: percentile(values, 0.5), p99: percentile(values, 0.99), max: values.at(-1), count: values.length };
  };
  return { ...summary(lags), answered: summary(answered), published: summary(published), failures };
}

// --- orchestration and clean-up -----------------------------------------------------------------

let cleaningUp;
let redisServer;
let nc;
const clients = [];
function cleanup() {
  cleaningUp ??= (async () => {
    await step('stop cache-invalidator', () => stopProcess('cache-invalidator'));
    await step('stop registry-api', () => stopProcess('registry-api'));
    for (const client of clients) await step('close client', () => client.close?.() ?? client.disconnect?.());
    await step('stop redis-server', async () => {
      if (redisServer && redisServer.exitCode === null) {
        const exited = new Promise((resolve) => redisServer.once('exit', resolve));
        redisServer.kill('SIGKILL');
        await exited;
      }
    });
    await step(`delete stream ${streamName}`, async () => {
      nc ??= await connect({ servers: NATS_URL, name: 'cache-bench' });
      await deleteStream(nc, streamName);
    });
    await step('close NATS', () => nc?.close());
    await step(`drop database ${dbName}`, () => dropDatabase(PG_ADMIN_URL, dbName));
  })();
  return cleaningUp;
}

let interrupted = false;
onInterrupt(cleanup, () => (interrupted = true));

async function startRedis() {
  const port = await freePort();
  redisServer = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--notify-keyspace-events', 'Kgh'], { stdio: 'ignore' });
  const url = `redis://127.0.0.1:${port}`;
  const probe = new Redis(url, { lazyConnect: true, retryStrategy: () => 50, maxRetriesPerRequest: null });
  probe.on('error', () => undefined);
  await probe.connect().catch(() => undefined);
  await probe.ping();
  probe.disconnect();
  return url;
}

async function main() {
  const wallStarted = performance.now();
  const loadAtStart = os.loadavg()[0].toFixed(2); // other work on the machine skews every number here
  if (process.env.BENCH_SKIP_BUILD !== '1') {
    log('building registry-api and cache-invalidator');
    const build = spawnSync('npx', ['nx', 'run-many', '-t', 'build', '-p', 'registry-api', 'cache-invalidator', '--outputStyle=static'], { cwd: ROOT, encoding: 'utf8' });
    if (build.status !== 0) throw new Error(`build failed (exit ${build.status}):\n${build.stdout}${build.stderr}`);
  }
  nc = await connect({ servers: NATS_URL, name: 'cache-bench' });
  const redisUrl = await startRedis();
  log(`redis-server at ${redisUrl}; database ${dbName}, prefix ${prefix}`);
  const problems = [];

  log(`phase 1: uncached discovery (CACHE_ENABLED=false), ${N_SERVICES} services × ${N_INSTANCES} instances, c=${CONCURRENCY}, ${SECONDS} s`);
  let http = await startRegistryApi(false, redisUrl);
  clients.push(http);
  await registerAll(http);
  const uncached = await loadDiscovery(http);
  await stopProcess('registry-api');

  log('phase 2: the same load with a warm cache (registry-api + cache-invalidator)');
  http = await startRegistryApi(true, redisUrl);
  clients.push(http);
  const invalidatorPort = await freePort();
  startProcess('cache-invalidator', process.execPath, [INVALIDATOR_MAIN], { ...appEnv(invalidatorPort), REDIS_URL: redisUrl });
  const invalidatorHttp = new Pool(`http://127.0.0.1:${invalidatorPort}`, { connections: 2 });
  clients.push(invalidatorHttp);
  await waitHealthy('cache-invalidator', invalidatorHttp);
  for (let s = 0; s < N_SERVICES; s++) {
    const res = await http.request({ path: `/api/v2/services/registry/discover/${serviceName(s)}?environment=${ENV}`, method: 'GET' });
    await res.body.dump();
  }
  const r0 = await scrape(http);
  const cached = await loadDiscovery(http);
  const r1 = await scrape(http);
  const hits = sumOf(r1, 'registry_cache_hits_total') - sumOf(r0, 'registry_cache_hits_total');
  const misses = sumOf(r1, 'registry_cache_misses_total') - sumOf(r0, 'registry_cache_misses_total');

  log(`phase 3: ${N_CHANGES} status changes, each until Redis reports its discovery key replaced`);
  const subscriber = new Redis(redisUrl);
  clients.push(subscriber);
  const i0 = await scrape(invalidatorHttp);
  const lag = await measureLag(http, subscriber);
  const i1 = await scrape(invalidatorHttp);
  if (lag.failures) problems.push(`${lag.failures} status change(s) failed or were never invalidated`);
  const serverLag = (q) => histogramQuantile(i0, i1, 'cache_invalidation_lag_seconds', q) * 1000;
  const invalidations = sumOf(i1, 'cache_invalidations_total') - sumOf(i0, 'cache_invalidations_total');

  const verdict = (ok) => (ok ? 'met' : '**missed**');
  const lines = [
    '| metric | uncached (PostgreSQL) | warm cache (Redis) | target |',
    '|---|---|---|---|',
    `| discovery requests/s (one registry-api, c=${CONCURRENCY}, ${SECONDS} s) | ${uncached.rate.toFixed(0)} | ${cached.rate.toFixed(0)} | ≥ 8,000 cached (${verdict(cached.rate >= 8000)}) |`,
    `| discovery latency p50 / p99 | ${ms(uncached.p50)} / ${ms(uncached.p99)} ms | ${ms(cached.p50)} / ${ms(cached.p99)} ms | – |`,
    `| registry-api CPU per request (its share of one core during the load) | ${uncached.cpuPerRequestUs.toFixed(0)} µs (${(100 * uncached.cpuShare).toFixed(0)} %) | ${cached.cpuPerRequestUs.toFixed(0)} µs (${(100 * cached.cpuShare).toFixed(0)} %) | – |`,
    `| → requests/s one registry-api process could serve with a core to itself (PostgreSQL/Redis CPU not counted) | ${(1e6 / uncached.cpuPerRequestUs).toFixed(0)} | ${(1e6 / cached.cpuPerRequestUs).toFixed(0)} | – |`,
    `| non-200 answers | ${uncached.errors} | ${cached.errors} | 0 |`,
    `| cache hit ratio during the load | – | ${((100 * hits) / Math.max(1, hits + misses)).toFixed(2)} % (${hits} hits, ${misses} misses) | – |`,
    '',
    '| invalidation lag | p50 | p99 | max | target |',
    '|---|---|---|---|---|',
    `| status change sent → HTTP answer (committed) | ${ms(lag.answered.p50)} ms | ${ms(lag.answered.p99)} ms | ${ms(lag.answered.max)} ms | – |`,
    `| status change sent → event on a NATS subscriber (n=${lag.published.count}) | ${ms(lag.published.p50)} ms | ${ms(lag.published.p99)} ms | ${ms(lag.published.max)} ms | – |`,
    `| status change sent → discovery key replaced in Redis (bench, keyspace notification, n=${lag.count}) | ${ms(lag.p50)} ms | ${ms(lag.p99)} ms | ${ms(lag.max)} ms | p99 < 10 ms (${verdict(lag.p99 < 10)}) |`,
    `| event time → keys replaced (cache-invalidator histogram, ${invalidations} events, interpolated) | ${ms(serverLag(0.5))} ms | ${ms(serverLag(0.99))} ms | – | – |`,
  ];
  const cpu = os.cpus();
  console.log(`\n${lines.join('\n')}\n`);
  console.log(
    `Node ${process.version}, ${cpu.length} × ${cpu[0]?.model.trim() ?? 'CPU'}, load average ${loadAtStart} at start, ${new Date().toISOString()}; bench wall time ` +
      `${((performance.now() - wallStarted) / 1000).toFixed(1)} s. Load generator, registry-api, PostgreSQL and Redis share the machine. ` +
      `The bench lag starts when the PUT is sent, so it includes the request, the commit and the outbox publish: an upper ` +
      `bound on event time → key replaced.`,
  );
  writeResults('cache', {
    discovery: { uncached, cached, cacheHits: hits, cacheMisses: misses },
    invalidation: { ...lag, serverLagP50Ms: serverLag(0.5), serverLagP99Ms: serverLag(0.99), invalidations },
    problems,
  }, lines);
  if (cached.errors || uncached.errors) problems.push('some discovery requests did not answer 200');
  if (problems.length) throw new Error(problems.join('; '));
}

let exitCode = 0;
try {
  await main();
} catch (error) {
  exitCode = 1;
  log(interrupted ? 'interrupted' : `FAILED: ${error.message}`);
  for (const [name, entry] of children) {
    if (entry.output.length) {
      log(`${name} output (last ${entry.output.length} lines):`);
      for (const line of entry.output) process.stderr.write(`  ${line}\n`);
    }
  }
} finally {
  await cleanup();
}
process.exit(interrupted ? 130 : exitCode);

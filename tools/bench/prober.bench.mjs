#!/usr/bin/env node
// Load benchmark of health-prober: (1) sustained probes/s, CPU and RSS with BENCH_INSTANCES instances at
// the default interval, and whether every instance is probed once per interval (per-instance gaps seen
// by the health endpoints themselves); (2) detection time, from a backend breaking (503, or hanging
// until the check times out) to the statusChanged event on a NATS subscriber, for instances checked
// every 500 ms. Starts its own registry-api and health-prober against a throw-away database and subject
// prefix, serves every health endpoint from this process (a few keep-alive node:http servers), and
// removes everything afterwards. Prints a markdown table.
// Usage: node tools/bench/prober.bench.mjs   (env: BENCH_INSTANCES=10000, BENCH_INTERVAL_MS=10000 (the
// prober's CHECK_INTERVAL_MS in phase 1; the settle time is one interval + 5 s and the window two intervals,
// at least 20 s), BENCH_SAMPLES=100, BENCH_SKIP_BUILD=1, BENCH_CPU_PROFILE=<file.cpuprofile> to profile the
// prober during phase 1). Issue 12's case: BENCH_INSTANCES=100000 BENCH_INTERVAL_MS=30000.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { connect } from 'nats';
import { Pool, WebSocket } from 'undici';
import { childGroup, cpuTime, freePort, log, parseMetrics, percentile, rssMb, sumOf, writeResults, cleanupStep as step, deleteStream, dropDatabase, onInterrupt } from './bench-kit.mjs';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const MAIN = {
  registry: 'dist/apps/registry-api/apps/registry-api/src/main.js',
  prober: 'dist/apps/health-prober/apps/health-prober/src/main.js',
};
const int = (name, fallback) => (process.env[name] ? Number.parseInt(process.env[name], 10) : fallback);
const N = int('BENCH_INSTANCES', 10_000);
const SAMPLES = int('BENCH_SAMPLES', 100);
const CPU_PROFILE = process.env.BENCH_CPU_PROFILE;
const INTERVAL_MS = int('BENCH_INTERVAL_MS', 10_000); // phase 1's check interval (health-prober's default is 10 s)
const JITTER = 0.1; // health-prober's default
const SETTLE_MS = INTERVAL_MS + 5000;
const WINDOW_MS = Math.max(20_000, 2 * INTERVAL_MS);
const SHARED_PORTS = 8; // phase 1: many instances per port (one path each), like a handful of hosts
const REG_CONCURRENCY = 64;
// Phase 2: each breakable instance has its own port (its own origin, as a real backend has), so a
// hanging one cannot hold the keep-alive connections of the others.
const FAST = Math.min(50, Math.max(2, SAMPLES));
const FAST_CHECK = { intervalMs: 500, timeoutMs: 250, unhealthyThreshold: 2, healthyThreshold: 2 };
const TICK_MS = 100; // ProberService's scheduling tick (apps/health-prober/src/probing/prober.service.ts)
const NATS_URL = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';
const PG_ADMIN_URL = process.env.BENCH_PG_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const TOKEN = { 'x-registry-token': 'dev-registry-token', 'content-type': 'application/json' };

const id = randomBytes(4).toString('hex');
const prefix = `pbench${id}`;
const dbName = `sb_pbench_${id}`;
const streamName = `${prefix}_REGISTRY`;

// --- small helpers ------------------------------------------------------------------------------

const fmt = (v, digits = 0) => (Number.isFinite(v) ? v.toFixed(digits) : 'n/a');
const sec = (msValue, digits = 2) => (Number.isFinite(msValue) ? `${(msValue / 1000).toFixed(digits)} s` : 'n/a');
const verdict = (ok) => (ok ? 'met' : '**missed**');
/** user + system CPU of a process in ms. */
const cpuMs = (pid) => cpuTime(pid, 1000);
const selfCpuMs = () => {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
};

// --- child processes: every one is registered, so clean-up and interruption reach it ------------

let cleaningUp;
const group = childGroup({ keepLines: 60, pollMs: 200, quiet: () => Boolean(cleaningUp) });
const { children, stop, waitFor } = group;
/** A built app under node; LOG_LEVEL=warn: anything kept of its output is worth a look. */
const start = (name, args, env) =>
  group.start(name, process.execPath, args, { NODE_ENV: 'development', HOST: '127.0.0.1', LOG_LEVEL: 'warn', NATS_URL, SUBJECT_PREFIX: prefix, ...env });

async function getJson(pool, path) {
  const { statusCode, body } = await pool.request({ path, method: 'GET' });
  return { statusCode, json: await body.json().catch(() => undefined) };
}

async function scrape(pool) {
  const { statusCode, body } = await pool.request({ path: '/metrics', method: 'GET' });
  if (statusCode !== 200) throw new Error(`GET /metrics answered ${statusCode}`);
  return parseMetrics(await body.text());
}

// --- the health endpoints, served from this process ---------------------------------------------

// Phase 1 instance i answers on /health/<i> of shared port i % SHARED_PORTS. Per instance: the time of
// its last probe and, inside the measurement window, every gap between two probes.
const lastProbe = new Float64Array(N).fill(-1);
const windowProbes = new Uint32Array(N);
const perSecond = new Uint32Array(3600); // probes per second since the prober started (burstiness)
let proberStartedAt = -1;
let windowOpen = false;
let gaps = [];
// Phase 2 instance k answers on /fast/<k> of its own port; `mode` is what it does now.
const fast = Array.from({ length: FAST }, () => ({ mode: 'ok', probes: 0, brokenProbes: [], hung: new Set(), lastAt: -1, healthyGaps: [] }));
const OK_BODY = '{"status":"ok"}';
const OK_HEADERS = { 'content-type': 'application/json', 'content-length': String(OK_BODY.length) };
const servers = [];

function onRequest(req, res) {
  const now = performance.now();
  const url = req.url;
  if (url.startsWith('/health/')) {
    const i = Number.parseInt(url.slice(8), 10);
    if (i >= 0 && i < N) {
      if (windowOpen) {
        windowProbes[i]++;
        if (lastProbe[i] >= 0) gaps.push(now - lastProbe[i]);
      }
      lastProbe[i] = now;
      if (proberStartedAt >= 0) perSecond[Math.min(perSecond.length - 1, Math.floor((now - proberStartedAt) / 1000))]++;
    }
    res.writeHead(200, OK_HEADERS).end(OK_BODY);
    return;
  }
  if (url.startsWith('/fast/')) {
    const f = fast[Number.parseInt(url.slice(6), 10)];
    if (f) {
      f.probes++;
      if (f.mode === 'ok' && f.lastAt >= 0) f.healthyGaps.push(now - f.lastAt);
      f.lastAt = now;
      if (f.mode !== 'ok') f.brokenProbes.push(now);
      if (f.mode === 'hang') {
        f.hung.add(res); // never answered: the prober's timeout ends it
        res.once('close', () => f.hung.delete(res));
        return;
      }
      if (f.mode === '503') {
        res.writeHead(503, OK_HEADERS).end(OK_BODY);
        return;
      }
      res.writeHead(200, OK_HEADERS).end(OK_BODY);
      return;
    }
  }
  res.writeHead(404).end();
}

async function listen(port) {
  const server = http.createServer({ keepAlive: true }, onRequest);
  server.keepAliveTimeout = 65_000; // longer than the prober's interval: connections are reused
  server.headersTimeout = 66_000;
  server.requestTimeout = 0;
  await new Promise((resolve, reject) => server.once('error', reject).listen(port, '127.0.0.1', resolve));
  servers.push(server);
  return server.address().port;
}

// --- registration -------------------------------------------------------------------------------

async function registerAll(pool, bodies) {
  let next = 0;
  let failures = 0;
  const started = performance.now();
  const worker = async () => {
    while (next < bodies.length && !cleaningUp) {
      const body = bodies[next++];
      try {
        const res = await pool.request({ path: '/api/v2/services/registry/register', method: 'POST', headers: TOKEN, body: JSON.stringify(body) });
        const text = await res.body.text();
        if (res.statusCode !== 201 && failures++ < 3) log(`register ${body.serviceId} → ${res.statusCode}: ${text.slice(0, 200)}`);
      } catch (error) {
        if (failures++ < 3) log(`register ${body.serviceId} failed: ${error.message}`);
      }
    }
  };
  await Promise.all(Array.from({ length: REG_CONCURRENCY }, worker));
  return { failures, seconds: (performance.now() - started) / 1000 };
}

const instanceBody = (serviceName, serviceId, port, path, healthCheck) => ({
  serviceName, serviceId, vmIp: '127.0.0.1', internalPort: port, externalDomain: 'x.example.com', version: '1', deploymentId: 'bench',
  environment: 'development', region: 'local', healthCheckEndpoint: path, ...(healthCheck ? { healthCheck } : {}),
});

// --- optional CPU profile of the prober over the inspector protocol ------------------------------

async function startProfile(inspectPort) {
  const { json } = await (async () => {
    const pool = new Pool(`http://127.0.0.1:${inspectPort}`);
    try {
      return await getJson(pool, '/json/list');
    } finally {
      await pool.close();
    }
  })();
  const ws = new WebSocket(json[0].webSocketDebuggerUrl);
  await once(ws, 'open');
  let seq = 0;
  const pending = new Map();
  ws.addEventListener('message', (event) => {
    const msg = JSON.parse(event.data);
    pending.get(msg.id)?.(msg);
    pending.delete(msg.id);
  });
  const call = (method, params = {}) =>
    new Promise((resolve, reject) => {
      const n = ++seq;
      pending.set(n, (msg) => (msg.error ? reject(new Error(msg.error.message)) : resolve(msg.result)));
      ws.send(JSON.stringify({ id: n, method, params }));
    });
  await call('Profiler.enable');
  await call('Profiler.setSamplingInterval', { interval: 500 });
  await call('Profiler.start');
  return async () => {
    const { profile } = await call('Profiler.stop');
    ws.close();
    return profile;
  };
}

/** Self time by function over a .cpuprofile, top entries first. */
function topSelfTime(profile, limit = 15) {
  const byNode = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfMs = new Map();
  for (let i = 0; i < profile.samples.length; i++) {
    const node = byNode.get(profile.samples[i]);
    const f = node.callFrame;
    const where = f.url ? `${f.url.replace(/^file:\/\//, '').replace(ROOT, '')}:${f.lineNumber + 1}` : '';
    const key = `${f.functionName || '(anonymous)'} ${where}`.trim();
    selfMs.set(key, (selfMs.get(key) ?? 0) + (profile.timeDeltas[i] ?? 0) / 1000);
  }
  const total = [...selfMs.values()].reduce((a, b) => a + b, 0);
  return [...selfMs].sort((a, b) => b[1] - a[1]).slice(0, limit).map(([key, v]) => ({ key, ms: v, share: v / total }));
}

// --- phase 1: sustained probing of N instances ------------------------------------------------------

async function phaseThroughput(registry, sharedPorts, nc) {
  log(`phase 1: registering ${N} instances at c=${REG_CONCURRENCY}`);
  const bodies = Array.from({ length: N }, (_, i) => instanceBody(`bench-svc-${i % 20}`, `pb-${i}`, sharedPorts[i % SHARED_PORTS], `/health/${i}`));
  const reg = await registerAll(registry.pool, bodies);
  log(`registered in ${reg.seconds.toFixed(1)} s (${(N / reg.seconds).toFixed(0)}/s), ${reg.failures} failure(s)`);
  if (reg.failures) throw new Error(`${reg.failures} registration(s) failed`);

  // The prober loads the table with registry.cmd.snapshot: note whether it needs more than one NATS message.
  const snapshot = await registry.pool.request({ path: '/api/v2/services/registry/snapshot', method: 'GET', headers: { 'x-admin-token': 'dev-admin-token' } });
  const snapshotBytes = (await snapshot.body.arrayBuffer()).byteLength;
  const maxPayload = nc.info.max_payload;
  if (snapshotBytes > maxPayload) log(`the snapshot (${(snapshotBytes / 2 ** 20).toFixed(2)} MiB over HTTP) is over NATS max_payload (${(maxPayload / 2 ** 20).toFixed(2)} MiB): it takes several messages`);

  const port = await freePort();
  const inspectPort = CPU_PROFILE ? await freePort() : undefined;
  const args = [...(inspectPort ? [`--inspect=127.0.0.1:${inspectPort}`] : []), MAIN.prober];
  proberStartedAt = performance.now();
  // Its own floor (1 s by default) would stretch phase 2's 500 ms checks.
  const prober = start('health-prober', args, { PORT: String(port), REGISTRY_URL: registry.url, PROBE_MIN_INTERVAL_MS: String(FAST_CHECK.intervalMs), CHECK_INTERVAL_MS: String(INTERVAL_MS) });
  prober.pool = new Pool(`http://127.0.0.1:${port}`, { connections: 2, keepAliveTimeout: 30_000 });
  let tableLoadMs;
  await waitFor(`the prober's table to hold ${N} instances`, async () => {
    const { statusCode, json } = await getJson(prober.pool, '/health');
    const ok = statusCode === 200 && json?.table?.instances >= N;
    if (ok) tableLoadMs = performance.now() - proberStartedAt;
    return ok;
  }, [prober, registry]);
  log(`prober up with ${N}+ instances after ${sec(tableLoadMs)}; settling ${SETTLE_MS / 1000} s`);
  await sleep(SETTLE_MS);
  if (prober.exited) throw new Error('health-prober exited while settling');

  const stopProfile = inspectPort ? await startProfile(inspectPort) : undefined;
  const m0 = await scrape(prober.pool);
  const [cpu0, regCpu0, self0, t0] = [cpuMs(prober.proc.pid), cpuMs(registry.proc.pid), selfCpuMs(), performance.now()];
  gaps = [];
  windowProbes.fill(0);
  windowOpen = true;
  log(`measuring for ${WINDOW_MS / 1000} s`);
  // CPU second by second too: the average hides how bunched the work is.
  const cpuSeconds = [];
  for (let prev = cpu0, end = t0 + WINDOW_MS; performance.now() < end - 1; ) {
    await sleep(Math.min(1000, end - performance.now()));
    const now = cpuMs(prober.proc.pid);
    cpuSeconds.push(now - prev);
    prev = now;
  }
  windowOpen = false;
  const [cpu1, regCpu1, self1, t1] = [cpuMs(prober.proc.pid), cpuMs(registry.proc.pid), selfCpuMs(), performance.now()];
  const m1 = await scrape(prober.pool);
  const rss = rssMb(prober.proc.pid);
  let profileTop;
  if (stopProfile) {
    const profile = await stopProfile();
    writeFileSync(CPU_PROFILE, JSON.stringify(profile));
    profileTop = topSelfTime(profile);
    log(`CPU profile written to ${CPU_PROFILE}`);
  }

  const seconds = (t1 - t0) / 1000;
  const delta = (name, match) => sumOf(m1, name, match) - sumOf(m0, name, match);
  const probesTotal = delta('prober_probes_total');
  const failed = delta('prober_probes_total', { outcome: 'fail' }) + delta('prober_probes_total', { outcome: 'warn' });
  const serverProbes = windowProbes.reduce((a, b) => a + b, 0);
  // Gaps still open at the end of the window are lower bounds of gaps: they count towards the max.
  let openMax = 0;
  let neverInWindow = 0;
  for (let i = 0; i < N; i++) {
    if (windowProbes[i] === 0) neverInWindow++;
    if (lastProbe[i] >= 0) openMax = Math.max(openMax, t1 - lastProbe[i]);
  }
  gaps.sort((a, b) => a - b);
  const tooShort = gaps.filter((g) => g < INTERVAL_MS * (1 - JITTER) * 0.5).length; // probed twice in one interval
  const tooLong = gaps.filter((g) => g > INTERVAL_MS * (1 + 2 * JITTER) + TICK_MS).length;
  const firstSeconds = [...perSecond.slice(0, 3)];
  // Whole seconds inside the window: how evenly the probes are spread over the interval.
  const windowSeconds = [...perSecond.slice(Math.ceil((t0 - proberStartedAt) / 1000), Math.floor((t1 - proberStartedAt) / 1000))];
  log(`prober CPU ms per second of the window: ${cpuSeconds.map((c) => c.toFixed(0)).join(' ')}`);
  log(`probes per second since prober start: ${[...perSecond.slice(0, Math.floor((t1 - proberStartedAt) / 1000))].join(' ')}`);
  return {
    reg, snapshotBytes, maxPayload, tableLoadMs, rate: probesTotal / seconds, serverRate: serverProbes / seconds, failed,
    owned: sumOf(m1, 'prober_owned_instances'), cpu: (cpu1 - cpu0) / (t1 - t0), registryCpu: (regCpu1 - regCpu0) / (t1 - t0),
    benchCpu: (self1 - self0) / (t1 - t0), rss, neverInWindow, gapCount: gaps.length, gapP50: percentile(gaps, 0.5),
    gapP99: percentile(gaps, 0.99), gapMax: Math.max(gaps.at(-1) ?? 0, openMax), gapMin: gaps[0], tooShort, tooLong, firstSeconds, profileTop,
    secondMax: Math.max(...windowSeconds), secondMin: Math.min(...windowSeconds), cpuPeak: Math.max(...cpuSeconds) / 1000,
    prober,
  };
}

// --- phase 2: detection time ----------------------------------------------------------------------

async function phaseDetection(registry, prober, fastPorts, nc) {
  log(`phase 2: ${FAST} instances checked every ${FAST_CHECK.intervalMs} ms; ${SAMPLES} breaks, one at a time`);
  const events = new Map(); // serviceId → [{ status, at }]
  const waiters = new Map(); // serviceId → (status, at) => void
  const sub = nc.subscribe(`${prefix}.registry.events.statusChanged.>`, {
    callback: (error, msg) => {
      if (error) return;
      const at = performance.now();
      let data;
      try {
        data = msg.json()?.data;
      } catch {
        return;
      }
      const serviceId = data?.instance?.serviceId;
      const status = data?.to?.status;
      if (!serviceId || !status) return;
      if (!events.has(serviceId)) events.set(serviceId, []);
      events.get(serviceId).push({ status, at });
      waiters.get(serviceId)?.(status, at);
    },
  });
  await nc.flush();
  try {
    const bodies = fast.map((_, k) => instanceBody('bench-fast', `pb-fast-${k}`, fastPorts[k], `/fast/${k}`, FAST_CHECK));
    const reg = await registerAll(registry.pool, bodies);
    if (reg.failures) throw new Error(`${reg.failures} registration(s) of fast instances failed`);
    await waitFor('the prober to check every fast instance', async () => fast.every((f) => f.probes >= 3), [prober, registry], 30_000);
    await sleep(1000);

    const status = (k) => events.get(`pb-fast-${k}`)?.at(-1)?.status ?? 'healthy';
    const waitStatus = (k, wanted, timeoutMs) =>
      new Promise((resolve) => {
        if (status(k) === wanted) return resolve(performance.now());
        const timer = setTimeout(() => {
          waiters.delete(`pb-fast-${k}`);
          resolve(undefined);
        }, timeoutMs);
        waiters.set(`pb-fast-${k}`, (s, at) => {
          if (s !== wanted) return;
          clearTimeout(timer);
          waiters.delete(`pb-fast-${k}`);
          resolve(at);
        });
      });
    const restore = (k) => {
      fast[k].mode = 'ok';
      for (const res of fast[k].hung) res.destroy();
      fast[k].hung.clear();
    };

    const samples = { 503: [], hang: [] };
    const reportLag = []; // threshold-th failing probe answered → event at the subscriber
    let missing = 0;
    const timeoutMs = 10 * FAST_CHECK.intervalMs * FAST_CHECK.unhealthyThreshold + FAST_CHECK.timeoutMs;
    for (let s = 0; s < SAMPLES && !cleaningUp; s++) {
      const k = s % FAST;
      const mode = s % 2 === 0 ? '503' : 'hang';
      if ((await waitStatus(k, 'healthy', 15_000)) === undefined) throw new Error(`pb-fast-${k} did not become healthy again`);
      await sleep(Math.random() * FAST_CHECK.intervalMs); // breaks land at a random phase of the instance's schedule
      const f = fast[k];
      f.brokenProbes = [];
      const brokeAt = performance.now();
      f.mode = mode;
      const at = await waitStatus(k, 'unhealthy', timeoutMs);
      restore(k);
      if (at === undefined) {
        if (missing++ < 3) log(`no unhealthy event for pb-fast-${k} (${mode}) within ${timeoutMs} ms`);
        continue;
      }
      samples[mode].push(at - brokeAt);
      const decisive = f.brokenProbes[FAST_CHECK.unhealthyThreshold - 1];
      if (decisive !== undefined) {
        const lag = at - (decisive + (mode === 'hang' ? FAST_CHECK.timeoutMs : 0));
        reportLag.push(lag);
        const second = Math.floor((decisive - proberStartedAt) / 1000);
        if (lag > 50) log(`slow report for pb-fast-${k} (${mode}): ${lag.toFixed(0)} ms after the decisive check, in a second with ${perSecond[second]} phase-1 probes`);
      }
      f.lastAt = -1; // the next healthy gap starts after recovery
      await sleep(100);
    }
    const all = [...samples[503], ...samples.hang].sort((a, b) => a - b);
    for (const list of Object.values(samples)) list.sort((a, b) => a - b);
    reportLag.sort((a, b) => a - b);
    const healthyGaps = fast.flatMap((f) => f.healthyGaps).filter((g) => g < 3 * FAST_CHECK.intervalMs);
    return {
      all, samples, missing, reportLag, meanGap: healthyGaps.reduce((a, b) => a + b, 0) / healthyGaps.length,
      p99Gap: percentile(healthyGaps.sort((a, b) => a - b), 0.99),
    };
  } finally {
    sub.unsubscribe();
  }
}

// --- orchestration and clean-up -----------------------------------------------------------------

let nc;
function cleanup() {
  cleaningUp ??= (async () => {
    // The prober first (it deregisters itself from a live registry-api), then registry-api.
    for (const child of [...children].reverse()) {
      await step(`stop ${child.name}`, () => stop(child));
      await step(`close ${child.name} pool`, () => child.pool?.close());
    }
    for (const f of fast) for (const res of f.hung) res.destroy();
    await step('close health endpoints', () =>
      Promise.all(servers.map((s) => new Promise((resolve) => { s.close(resolve); s.closeAllConnections(); }))));
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
    for (const project of ['registry-api', 'health-prober']) {
      log(`building ${project}`);
      const build = spawnSync('npx', ['nx', 'run', `${project}:build`, '--outputStyle=static'], { cwd: ROOT, encoding: 'utf8' });
      if (build.status !== 0) throw new Error(`build of ${project} failed (exit ${build.status}):\n${build.stdout}${build.stderr}`);
    }
  }
  nc = await connect({ servers: NATS_URL, name: 'prober-bench' });
  const sharedPorts = [];
  for (let p = 0; p < SHARED_PORTS; p++) sharedPorts.push(await listen(0));
  const fastPorts = [];
  for (let k = 0; k < FAST; k++) fastPorts.push(await listen(0));

  const registryPort = await freePort();
  // FAST_CHECK's 500 ms interval is below registry-api's default floor (1 s): lowered on purpose here.
  const registry = start('registry-api', [MAIN.registry], { PORT: String(registryPort), DATABASE_URL: `postgres://postgres@127.0.0.1:5432/${dbName}`, HEALTH_CHECK_MIN_INTERVAL_MS: String(FAST_CHECK.intervalMs) });
  registry.url = `http://127.0.0.1:${registryPort}`;
  registry.pool = new Pool(registry.url, { connections: REG_CONCURRENCY, pipelining: 1, keepAliveTimeout: 30_000 });
  await waitFor('registry-api to answer /health', async () => (await getJson(registry.pool, '/health')).statusCode === 200, [registry]);
  log(`registry-api up on :${registryPort} (db ${dbName}, prefix ${prefix})`);

  const problems = [];
  const p1 = await phaseThroughput(registry, sharedPorts, nc);
  const expectedRate = N / (INTERVAL_MS / 1000);
  if (p1.rate < 0.5 * expectedRate) problems.push(`phase 1: ${p1.rate.toFixed(0)} probes/s, under half of the expected ${expectedRate.toFixed(0)}/s`);
  if (p1.neverInWindow) problems.push(`phase 1: ${p1.neverInWindow} instance(s) not probed at all in ${WINDOW_MS / 1000} s`);
  let p2;
  try {
    p2 = await phaseDetection(registry, p1.prober, fastPorts, nc);
    if (p2.missing > SAMPLES * 0.1) problems.push(`phase 2: ${p2.missing} of ${SAMPLES} breaks were never reported unhealthy`);
  } catch (error) {
    problems.push(`phase 2: ${error.message}`);
  }

  const { intervalMs: iv, timeoutMs: to, unhealthyThreshold: th } = FAST_CHECK;
  const bound = iv * th + to;
  // The bound with the prober's own slack: each wait is up to interval × (1 + jitter) plus one tick.
  const slackBound = th * (iv * (1 + JITTER) + TICK_MS) + to;
  const expectedP50 = { 503: (th - 0.5) * iv, hang: (th - 0.5) * iv + to };
  // Checks fall at slot + k × interval, each ± jitter around its slot: two in a row are interval ± 2 × jitter apart (+ a tick).
  const gapLimit = INTERVAL_MS * (1 + 2 * JITTER) + TICK_MS;
  const gapFloor = INTERVAL_MS * (1 - 2 * JITTER);
  const lines = [
    '| metric | value | note / target |',
    '|---|---|---|',
    `| registrations (HTTP, c=${REG_CONCURRENCY}) | ${N} in ${p1.reg.seconds.toFixed(1)} s (${(N / p1.reg.seconds).toFixed(0)}/s) | set-up |`,
    `| registry snapshot (HTTP body) vs NATS max_payload | ${(p1.snapshotBytes / 2 ** 20).toFixed(2)} MiB vs ${(p1.maxPayload / 2 ** 20).toFixed(2)} MiB | over it, the prober's table load relies on the chunked snapshot |`,
    `| prober start → table holds ${N} instances | ${sec(p1.tableLoadMs)} | – |`,
    `| **probes/s** (prober_probes_total, ${WINDOW_MS / 1000} s after ${SETTLE_MS / 1000} s settle) | **${fmt(p1.rate)}** | ≈ ${fmt(expectedRate)} = ${N} / ${INTERVAL_MS / 1000} s (${verdict(p1.rate >= 0.95 * expectedRate)}) |`,
    `| probes/s seen by the health endpoints | ${fmt(p1.serverRate)} | = prober's count |`,
    `| busiest / quietest second in the window (probes) | ${p1.secondMax} / ${p1.secondMin} | ≈ ${fmt(expectedRate)} each if spread over the interval |`,
    `| probes failed or slow in the window | ${p1.failed} | 0 |`,
    `| prober_owned_instances | ${p1.owned} | ${N} + the prober itself |`,
    `| first 3 s after prober start (probes per second) | ${p1.firstSeconds.join(', ')} | first checks spread over min(interval, 1 s) |`,
    `| **prober CPU** (utime+stime / wall), average / busiest second | **${fmt(p1.cpu * 100, 1)} %** / ${fmt(p1.cpuPeak * 100, 0)} % of one core | – |`,
    `| prober RSS | ${fmt(p1.rss, 0)} MiB | – |`,
    `| registry-api CPU / this bench's CPU, same window | ${fmt(p1.registryCpu * 100, 1)} % / ${fmt(p1.benchCpu * 100, 1)} % | load generator kept lean |`,
    `| instances not probed in the ${WINDOW_MS / 1000} s window | ${p1.neverInWindow} of ${N} | 0 |`,
    `| gap between probes of one instance p50 / p99 | ${sec(p1.gapP50)} / ${sec(p1.gapP99)} (n=${p1.gapCount}) | p50 ≈ ${INTERVAL_MS / 1000} s (slots never drift) |`,
    `| gap min / **max** (max includes gaps still open at the end) | ${sec(p1.gapMin)} / **${sec(p1.gapMax)}** | ${sec(gapFloor)}–${sec(gapLimit)}: each check ± ${JITTER * 100} % around its slot, + ≤ ${TICK_MS} ms tick; ${p1.tooLong} longer (${verdict(p1.gapMin >= gapFloor - TICK_MS && p1.gapMax <= gapLimit)}) |`,
    `| probed twice within half an interval | ${p1.tooShort} | 0 (${verdict(p1.tooShort === 0)}) |`,
  ];
  if (p2) {
    const n = (list) => `n=${list.length}`;
    lines.push(
      `| detection check settings | interval ${iv} ms, timeout ${to} ms, unhealthy after ${th} | ${FAST} instances, each its own port; ${N} others still probed |`,
      `| measured interval between checks (healthy), mean / p99 | ${fmt(p2.meanGap)} / ${fmt(p2.p99Gap)} ms | ${iv} ms ± ${JITTER * 100} %, + up to ${TICK_MS} ms tick |`,
      `| **detection p50 / p99, all** (${n(p2.all)}) | **${fmt(p2.all.length ? percentile(p2.all, 0.5) : NaN)} / ${fmt(percentile(p2.all, 0.99))} ms** | bound ${iv}×${th}+${to} = ${bound} ms (${verdict(percentile(p2.all, 0.99) <= bound)}); with jitter and tick ${fmt(slackBound)} ms |`,
      `| detection p50 / p99 / max, HTTP 503 (${n(p2.samples[503])}) | ${fmt(percentile(p2.samples[503], 0.5))} / ${fmt(percentile(p2.samples[503], 0.99))} / ${fmt(p2.samples[503].at(-1))} ms | expected p50 ≈ (${th}−0.5)×${iv} = ${expectedP50[503]} ms, bound ${iv * th} ms |`,
      `| detection p50 / p99 / max, hang until timeout (${n(p2.samples.hang)}) | ${fmt(percentile(p2.samples.hang, 0.5))} / ${fmt(percentile(p2.samples.hang, 0.99))} / ${fmt(p2.samples.hang.at(-1))} ms | expected p50 ≈ (${th}−0.5)×${iv}+${to} = ${expectedP50.hang} ms, bound ${bound} ms |`,
      `| decisive failed check → event at subscriber, p50 / p99 | ${fmt(percentile(p2.reportLag, 0.5), 1)} / ${fmt(percentile(p2.reportLag, 0.99), 1)} ms | report over NATS + commit + outbox publish |`,
      `| breaks never reported | ${p2.missing} of ${SAMPLES} | 0 |`,
    );
  } else {
    lines.push('| detection | n/a | phase 2 failed |');
  }
  const cpu = os.cpus();
  console.log(`\n${lines.join('\n')}\n`);
  console.log(
    `Node ${process.version}, ${cpu.length} × ${cpu[0]?.model.trim() ?? 'CPU'}, ${new Date().toISOString()}; bench wall time ` +
      `${((performance.now() - wallStarted) / 1000).toFixed(1)} s. Method: registry-api and health-prober (defaults: interval ${INTERVAL_MS / 1000} s, ` +
      `jitter ±${JITTER * 100} %, ${256} concurrent probes; phase 1 at CHECK_INTERVAL_MS=${INTERVAL_MS}) as child processes on a throw-away database and subject prefix; every health ` +
      `endpoint is served by this process (${SHARED_PORTS} keep-alive ports with one path per instance for phase 1, one port per instance ` +
      `for phase 2) and records each probe's arrival. Probes/s is the difference of two /metrics scrapes; CPU from /proc/<pid>/stat. ` +
      `Detection is timed from the moment this process starts answering 503 (or stops answering) to the arrival of the ` +
      `statusChanged event (to.status = unhealthy) on its NATS subscription; breaks land at a random phase, one at a time.`,
  );
  // The raw samples (gaps, per-second counts) stay out: the figures are what a later run compares with.
  const { prober: _prober, ...throughputFigures } = p1;
  writeResults('prober', {
    settings: { instances: N, intervalMs: INTERVAL_MS, jitter: JITTER, windowMs: WINDOW_MS, settleMs: SETTLE_MS },
    throughput: throughputFigures,
    detection: p2 && {
      all: { p50: percentile(p2.all, 0.5), p99: percentile(p2.all, 0.99), n: p2.all.length },
      http503: { p50: percentile(p2.samples[503], 0.5), p99: percentile(p2.samples[503], 0.99), max: p2.samples[503].at(-1), n: p2.samples[503].length },
      hang: { p50: percentile(p2.samples.hang, 0.5), p99: percentile(p2.samples.hang, 0.99), max: p2.samples.hang.at(-1), n: p2.samples.hang.length },
      reportLag: { p50: percentile(p2.reportLag, 0.5), p99: percentile(p2.reportLag, 0.99) },
      meanGapMs: p2.meanGap, p99GapMs: p2.p99Gap, missing: p2.missing,
    },
    problems,
  }, lines);
  if (p1.profileTop) {
    console.log(`\nProber CPU profile over the phase-1 window (self time, top ${p1.profileTop.length}):`);
    for (const { key, ms, share } of p1.profileTop) console.log(`  ${(share * 100).toFixed(1).padStart(5)} %  ${ms.toFixed(0).padStart(6)} ms  ${key}`);
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
  for (const child of children) {
    if (!child.output.length) continue;
    log(`${child.name} output (last ${child.output.length} lines):`);
    for (const line of child.output) process.stderr.write(`  ${line}\n`);
  }
  await cleanup();
}
process.exit(interrupted ? 130 : exitCode);

#!/usr/bin/env node
// What tracing costs the router: two llm-router processes from the same build in front of the same mock
// backend, one as `npm start` runs it (no OTEL_* variables: the SDK is not loaded) and one exporting
// every request's spans (OTLP http/protobuf, default sampler), and one sampling 10 % of traces, to a sink
// process that discards them.
// wrk at c=32 on each in turn, the order rotated each round, BENCH_REPEAT rounds; reports req/s and the
// router's CPU per request as median (min–max), and what reached the sink. Writes bench-results/tracing.json.
// Usage: node tools/bench/tracing.bench.mjs   (env: BENCH_DURATION_S=8, BENCH_REPEAT=3,
// BENCH_{ROUTER,REGISTRY,MOCK}_MAIN; builds nothing: run `npm run build` first; needs `wrk`)
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { connect } from 'nats';
import { cleanupStep, cpuTime, deleteStream, dropDatabase, fmtRange, freePort, log, onInterrupt, runNode, stats, stopChild, until, writeResults } from './bench-kit.mjs';

const MAIN = {
  registry: process.env.BENCH_REGISTRY_MAIN ?? 'dist/apps/registry-api/apps/registry-api/src/main.js',
  router: process.env.BENCH_ROUTER_MAIN ?? 'dist/apps/llm-router/apps/llm-router/src/main.js',
  mock: process.env.BENCH_MOCK_MAIN ?? 'dist/apps/mock-llm-backend/apps/mock-llm-backend/src/main.js',
};
const int = (name, fallback) => (process.env[name] ? Number.parseInt(process.env[name], 10) : fallback);
const DURATION_S = int('BENCH_DURATION_S', 8);
const REPEAT = Math.max(1, int('BENCH_REPEAT', 3));
const NATS_URL = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';
const PG_ADMIN_URL = process.env.BENCH_PG_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const MODEL = 'trace-bench-model';
const id = randomBytes(4).toString('hex');
const prefix = `tbench${id}`;
const dbName = `sb_tbench_${id}`;
const tmp = mkdtempSync(path.join(os.tmpdir(), 'tracing-bench-'));
const body = JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'hi' }] });

// The sink is its own process: wrk runs synchronously here and would leave an in-process one unanswered.
const SINK = `
const http = require('node:http');
let requests = 0, bytes = 0;
http.createServer((req, res) => { req.on('data', (c) => (bytes += c.length)); req.on('end', () => { requests++; res.end(); }); })
  .listen(Number(process.env.PORT), '127.0.0.1', () => process.stdout.write('ready\\n'));
process.on('SIGTERM', () => { process.stdout.write(JSON.stringify({ requests, bytes }) + '\\n'); process.exit(0); });
`;

let stopping = false;
const started = [];
async function cleanup() {
  stopping = true;
  for (const child of started.reverse()) await cleanupStep('stop a child', () => stopChild(child));
  await cleanupStep('drop the database', () => dropDatabase(PG_ADMIN_URL, dbName));
  await cleanupStep('delete the stream', async () => {
    const nc = await connect({ servers: NATS_URL });
    await deleteStream(nc, `${prefix}_REGISTRY`);
    await nc.close();
  });
  rmSync(tmp, { recursive: true, force: true });
}
onInterrupt(cleanup, () => (stopping = true));

function start(main, env) {
  const app = runNode(main, { NATS_URL, SUBJECT_PREFIX: prefix, ...env });
  started.push(app.child);
  app.child.once('exit', (code) => !stopping && log(`${main} exited (${code}): ${app.output.join('\n')}`));
  return app;
}

function wrk(port) {
  const script = path.join(tmp, 'chat.lua');
  writeFileSync(script, `wrk.method = "POST"\nwrk.body = '${body}'\nwrk.headers["Content-Type"] = "application/json"\n`);
  const out = spawnSync('wrk', ['-t2', '-c32', `-d${DURATION_S}s`, '-s', script, `http://127.0.0.1:${port}/v1/chat/completions`], { encoding: 'utf8' }).stdout;
  const requests = Number(/(\d+) requests in/.exec(out)?.[1]);
  const failed = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0);
  return { requests, failed, rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1]) };
}

try {
  const [registryPort, mockPort, offPort, onPort, sampledPort, sinkPort] = await Promise.all([freePort(), freePort(), freePort(), freePort(), freePort(), freePort()]);
  const sink = spawn(process.execPath, ['-e', SINK], { env: { ...process.env, PORT: String(sinkPort) }, stdio: ['ignore', 'pipe', 'inherit'] });
  started.push(sink);
  let sinkOut = '';
  sink.stdout.on('data', (d) => (sinkOut += d));
  await until('the sink', async () => sinkOut.includes('ready'), 10_000);

  start(MAIN.registry, { PORT: String(registryPort), DATABASE_URL: `postgres://postgres@127.0.0.1:5432/${dbName}`, CACHE_ENABLED: 'false' });
  await until('registry-api', async () => (await fetch(`http://127.0.0.1:${registryPort}/health`)).ok);
  start(MAIN.mock, { PORT: String(mockPort), MOCK_MODELS: MODEL, MOCK_LATENCY_MS: '0' });
  await until('the mock backend', async () => (await fetch(`http://127.0.0.1:${mockPort}/health`)).ok);
  const registered = await fetch(`http://127.0.0.1:${registryPort}/api/v2/services/registry/models`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-registry-token': 'dev-registry-token' },
    body: JSON.stringify({ modelName: MODEL, environment: 'development', endpoint: `127.0.0.1:${mockPort}` }),
  });
  if (!registered.ok) throw new Error(`registering the mock: ${registered.status} ${await registered.text()}`);

  const routers = {
    'no OTEL_* (default)': { port: offPort, app: start(MAIN.router, { PORT: String(offPort), ROUTER_ENVIRONMENT: 'development' }) },
    'OTLP export, every request sampled': {
      port: onPort,
      app: start(MAIN.router, { PORT: String(onPort), ROUTER_ENVIRONMENT: 'development', OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${sinkPort}`, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf' }),
    },
    'OTLP export, 10 % sampled': {
      port: sampledPort,
      app: start(MAIN.router, {
        PORT: String(sampledPort),
        ROUTER_ENVIRONMENT: 'development',
        OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${sinkPort}`,
        OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf',
        OTEL_TRACES_SAMPLER: 'parentbased_traceidratio',
        OTEL_TRACES_SAMPLER_ARG: '0.1',
      }),
    },
  };
  for (const [name, { port }] of Object.entries(routers)) {
    await until(`${name} to route`, async () => (await fetch(`http://127.0.0.1:${port}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body })).ok);
  }

  const rounds = Object.fromEntries(Object.keys(routers).map((name) => [name, []]));
  for (let round = 0; round < REPEAT; round++) {
    // Rotated each round, so no router always runs first (or last) on a box whose load drifts.
    const names = Object.keys(routers);
    const order = names.map((_, i) => names[(i + round) % names.length]);
    for (const name of order) {
      const { port, app } = routers[name];
      const before = cpuTime(app.child.pid, 1e6);
      const run = wrk(port);
      const cpuUs = (cpuTime(app.child.pid, 1e6) - before) / run.requests;
      rounds[name].push({ ...run, cpuUs });
      log(`round ${round + 1}/${REPEAT} ${name}: ${run.rps.toFixed(0)} req/s, ${cpuUs.toFixed(0)} µs CPU/request, ${run.failed} failed`);
    }
  }
  await stopChild(sink);
  const exported = JSON.parse(sinkOut.split('\n').filter(Boolean).at(-1) ?? '{}');

  const lines = [
    `llm-router with and without tracing, c=32, ${DURATION_S} s × ${REPEAT} rounds, median (min–max); ${os.cpus().length} CPUs${os.loadavg()[0] > 1 ? `, load ${os.loadavg()[0].toFixed(1)} (shared box)` : ''}`,
    '',
    '| router | req/s | router CPU per request | failed |',
    '|---|---|---|---|',
  ];
  const figures = {};
  for (const [name, runs] of Object.entries(rounds)) {
    const rps = stats(runs.map((r) => r.rps));
    const cpu = stats(runs.map((r) => r.cpuUs));
    figures[name] = { rps, cpuUsPerRequest: cpu, failed: runs.reduce((n, r) => n + r.failed, 0) };
    lines.push(`| ${name} | ${rps.median.toFixed(0)} (${rps.min.toFixed(0)}–${rps.max.toFixed(0)}) | ${fmtRange(cpu, 'µs')} | ${figures[name].failed} |`);
  }
  lines.push('', `exported: ${exported.requests ?? 0} OTLP requests, ${((exported.bytes ?? 0) / 1e6).toFixed(1)} MB`);
  figures.exported = exported;
  process.stdout.write(`${lines.join('\n')}\n`);
  writeResults('tracing', figures, lines);
} finally {
  await cleanup();
}

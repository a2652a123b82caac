#!/usr/bin/env node
// Overhead benchmark of llm-router against the floor: the mock backend called directly, nginx as a
// plain reverse proxy and a bare Node proxy (bare-proxy.mjs: node:http + undici), all in front of the
// SAME mock process so only the proxy differs. Measures latency at c=1 (a small and a ~100 KB request),
// throughput at c=32 (wrk; the router at ROUTER_WORKERS=1 and 2), streaming time to first token, and
// the router's RSS with 10,000 instances in its table. Every measurement is repeated BENCH_REPEAT times
// (targets interleaved in each round) and reported as median (min–max). Starts everything itself on
// free ports, a throw-away database and subject prefixes, and removes them afterwards. Prints a
// markdown table; writes bench-results/router.json and the c=1 latency CDF as
// bench-results/router-latency-cdf.svg.
// Usage: node tools/bench/router.bench.mjs   (env: BENCH_DURATION_S=10, BENCH_REPEAT=3,
// BENCH_TTFT_REQUESTS=200, BENCH_SKIP_BUILD=1, BENCH_{ROUTER,REGISTRY,MOCK}_MAIN; needs `wrk` and `nginx`: apt-get install -y wrk nginx-light)
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { connect } from 'nats';
import { request } from 'undici';
import { childGroup, cpuTime, freePort, log, percentile, rssMb, stats, writeResultFile, writeResults, cleanupStep as step, deleteStream, dropDatabase, onInterrupt } from './bench-kit.mjs';
import { latencyCdfSvg } from './cdf-svg.mjs';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
// BENCH_*_MAIN: another build of an app (an A/B of two router builds, or a registry-api built from
// a clean checkout while the shared tree's does not compile).
const MAIN = {
  registry: process.env.BENCH_REGISTRY_MAIN ?? 'dist/apps/registry-api/apps/registry-api/src/main.js',
  router: process.env.BENCH_ROUTER_MAIN ?? 'dist/apps/llm-router/apps/llm-router/src/main.js',
  mock: process.env.BENCH_MOCK_MAIN ?? 'dist/apps/mock-llm-backend/apps/mock-llm-backend/src/main.js',
};
const BARE_PROXY = fileURLToPath(new URL('bare-proxy.mjs', import.meta.url));
const int = (name, fallback) => (process.env[name] ? Number.parseInt(process.env[name], 10) : fallback);
const DURATION_S = int('BENCH_DURATION_S', 10);
const WARMUP_S = Math.max(1, Math.min(2, Math.floor(DURATION_S / 5)));
const TTFT_REQUESTS = int('BENCH_TTFT_REQUESTS', 200);
const REPEAT = Math.max(1, int('BENCH_REPEAT', 3));
const TABLE_SIZE = 10_000;
const SETTLE_MS = 5000; // lets the heap shrink after start-up garbage before RSS is read
const NATS_URL = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';
const PG_ADMIN_URL = process.env.BENCH_PG_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const MODEL = 'bench-model';
const TOKENS_PER_SECOND = 20;

const id = randomBytes(4).toString('hex');
const prefix = `rbench${id}`;
const prefix2 = `rbench${id}big`;
const dbName = `sb_rbench_${id}`;
const apiKey = `sk-bench-${id}`;
const tmp = mkdtempSync(path.join(os.tmpdir(), 'router-bench-'));

const fmt = (v, digits = 2) => (Number.isFinite(v) ? v.toFixed(digits) : 'n/a');
const which = (cmd, ...fallbacks) => [...(process.env.PATH ?? '').split(':').map((dir) => path.join(dir, cmd)), ...fallbacks].find((p) => existsSync(p));

/** The pid and its descendants (a ROUTER_WORKERS=2 router is a primary and its cluster workers). */
function processTree(pid) {
  const out = [pid];
  for (const p of out) {
    try {
      for (const tid of readdirSync(`/proc/${p}/task`)) out.push(...readFileSync(`/proc/${p}/task/${tid}/children`, 'utf8').split(' ').filter(Boolean).map(Number));
    } catch {
      // exited meanwhile: its CPU is gone with it
    }
  }
  return out;
}
/** user + system CPU of a process and its children in µs. */
const cpuUs = (pid) => processTree(pid).reduce((sum, p) => sum + (() => { try { return cpuTime(p, 1e6); } catch { return 0; } })(), 0);
const getJson = (url) => request(url).then(async ({ statusCode, body }) => ({ statusCode, json: await body.json().catch(() => undefined) }));

// --- child processes: every one is registered, so clean-up and interruption reach it ------------

let cleaningUp;
const { children, start, stop, waitFor } = childGroup({ keepLines: 40, pollMs: 100, quiet: () => Boolean(cleaningUp) });

const nodeApp = (name, main, env) => start(name, process.execPath, [main], { NODE_ENV: 'development', HOST: '127.0.0.1', LOG_LEVEL: 'warn', ...env });

/** GET on a new connection each time: with ROUTER_WORKERS > 1 successive connections reach different workers. */
const getFresh = (url) =>
  new Promise((resolve, reject) => {
    http.get(url, { agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (c) => (text += c)).on('end', () => resolve({ statusCode: res.statusCode, json: (() => { try { return JSON.parse(text); } catch { return undefined; } })() }));
    }).on('error', reject);
  });

async function startRouter(name, subjectPrefix, minRevision, minInstances, env = {}) {
  const port = await freePort();
  const child = nodeApp(name, MAIN.router, { PORT: String(port), NATS_URL, SUBJECT_PREFIX: subjectPrefix, ROUTER_ENVIRONMENT: 'development', ROUTER_API_KEYS: apiKey, ...env });
  const url = `http://127.0.0.1:${port}`;
  let table;
  // 8 answers in a row on fresh connections, so every worker of a multi-worker router has its table.
  let ready = 0;
  await waitFor(`${name}'s table (revision ≥ ${minRevision}, ${minInstances} instance(s))`, async () => {
    const { statusCode, json } = await getFresh(`${url}/health`);
    table = json?.table;
    ready = statusCode === 200 && table.revision >= minRevision && table.instances >= minInstances ? ready + 1 : 0;
    return ready >= 8;
  }, [child]);
  return { child, url, table };
}

/** Stops a child and then any process it left behind (a multi-worker router's workers, should its primary exit first). */
async function stopTree(child) {
  const cmdline = (pid) => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    } catch {
      return undefined; // gone
    }
  };
  const descendants = child.exited ? [] : processTree(child.proc.pid).slice(1).map((pid) => [pid, cmdline(pid)]);
  await stop(child);
  // Only a process still running the same command line: a pid reused meanwhile is someone else's.
  for (const [pid, was] of descendants) if (was && cmdline(pid) === was) process.kill(pid, 'SIGKILL');
}

function startBareProxy(port, upstreamPort) {
  return start('bare proxy', process.execPath, [BARE_PROXY], { PORT: String(port), UPSTREAM: `http://127.0.0.1:${upstreamPort}` });
}

// nginx in one process (master_process off): one event loop like the router, and it dies with us.
function startNginx(nginxBin, port, upstreamPort) {
  for (const dir of ['body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) mkdirSync(path.join(tmp, dir), { recursive: true });
  const conf = path.join(tmp, 'nginx.conf');
  writeFileSync(conf, `master_process off; pid ${tmp}/nginx.pid; error_log ${tmp}/nginx-error.log warn;
events { worker_connections 4096; }
http {
  access_log off; client_body_temp_path ${tmp}/body; proxy_temp_path ${tmp}/proxy;
  fastcgi_temp_path ${tmp}/fastcgi; uwsgi_temp_path ${tmp}/uwsgi; scgi_temp_path ${tmp}/scgi;
  # Request bodies up to 1 MiB stay in memory (the default 16k spills the 100 KB prompt to a temp file).
  client_body_buffer_size 1m;
  upstream mock { server 127.0.0.1:${upstreamPort}; keepalive 64; }
  server {
    listen 127.0.0.1:${port};
    location / { proxy_pass http://mock; proxy_http_version 1.1; proxy_set_header Connection ""; proxy_buffering off; }
  }
}
`);
  return start('nginx', nginxBin, ['-p', tmp, '-e', `${tmp}/nginx-error.log`, '-c', conf, '-g', 'daemon off;']);
}

// --- load generation ----------------------------------------------------------------------------

// max_tokens 1: the mock answers a non-streaming request at once instead of after the time its tokens
// would stream at MOCK_TOKENS_PER_SECOND, so the latency measured is the HTTP path, nothing else.
const CHAT_BODY = JSON.stringify({ model: MODEL, max_tokens: 1, messages: [{ role: 'user', content: 'Say hello in one word.' }] });
// The ~100 KB prompt of the issue: a long conversation (50 turns of ~2 KB), the model name unchanged.
const TURN = 'The quick brown fox jumps over the lazy dog while the router forwards bytes. '.repeat(26);
const BIG_BODY = JSON.stringify({
  model: MODEL, max_tokens: 1, messages: Array.from({ length: 50 }, (_, i) => ({ role: i % 2 ? 'assistant' : 'user', content: `${i}: ${TURN}` })),
});
// The percentiles of the CDF: every 1 % and the tail. wrk keeps every latency in a µs histogram, so
// these are exact (to 1 µs) for the whole run, at no cost to the load generator while it runs.
const CDF_POINTS = [...Array.from({ length: 99 }, (_, i) => i + 1), 99.5, 99.9, 99.99, 100];

function writeWrkScript(name, body) {
  const file = path.join(tmp, `${name}.lua`);
  writeFileSync(file, `wrk.method = "POST"
wrk.body = [[${body}]]
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer ${apiKey}"
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("BENCH_RESULT %d %d %d %d %d %d\\n", summary.requests, summary.duration,
    e.connect + e.read + e.write + e.timeout, e.status, latency:percentile(50), latency:percentile(99)))
  local cdf = {}
  for _, p in ipairs({ ${CDF_POINTS.slice(0, -1).join(', ')} }) do cdf[#cdf + 1] = string.format("%d", latency:percentile(p)) end
  cdf[#cdf + 1] = string.format("%d", latency.max) -- percentile(100) answers 0 in wrk
  io.write("BENCH_CDF " .. table.concat(cdf, " ") .. "\\n")
end
`);
  return file;
}

// Also CPU per request of the process wrk talks to: unlike req/s, it barely moves when other work
// shares the CPUs, so it still compares the proxies on a busy machine.
async function wrk(script, url, { threads, connections, seconds, pid }) {
  const cpuBefore = cpuUs(pid);
  const child = start('wrk', 'wrk', [`-t${threads}`, `-c${connections}`, `-d${seconds}s`, '--latency', '-s', script, url]);
  child.transient = true;
  const [code] = await once(child.proc, 'exit');
  const line = child.output.find((l) => l.startsWith('BENCH_RESULT'));
  if (code !== 0 || !line) throw new Error(`wrk ${url} failed (exit ${code}): ${child.output.slice(-5).join(' | ')}`);
  const [requests, durationUs, socketErrors, badStatus, p50Us, p99Us] = line.split(' ').slice(1).map(Number);
  if (socketErrors || badStatus) throw new Error(`wrk ${url}: ${socketErrors} socket error(s), ${badStatus} non-2xx answer(s) of ${requests}`);
  const cdfUs = child.output.find((l) => l.startsWith('BENCH_CDF'))?.split(' ').slice(1).map(Number) ?? [];
  const cdf = cdfUs.map((us, i) => [us / 1000, Math.round(CDF_POINTS[i] * 100) / 10_000]);
  return { rps: requests / (durationUs / 1e6), p50: p50Us / 1000, p99: p99Us / 1000, cpuPerRequest: (cpuUs(pid) - cpuBefore) / requests, requests, cdf };
}

async function measure(script, url, shape) {
  await wrk(script, url, { ...shape, seconds: WARMUP_S });
  return wrk(script, url, { ...shape, seconds: DURATION_S });
}

/** Sequential streaming requests; time from sending the request to the first SSE `data:` chunk. */
async function ttft(base, n) {
  // Two tokens at 20 tokens/s: the first chunk is written at once and the rest 50 ms later, a real
  // paced stream that keeps 200 sequential requests to ~10 s instead of 20 tokens' ~200 s.
  const body = JSON.stringify({ model: MODEL, stream: true, max_tokens: 2, messages: [{ role: 'user', content: 'Stream a short answer.' }] });
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const headers = { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), authorization: `Bearer ${apiKey}` };
  const one = () =>
    new Promise((resolve, reject) => {
      let first;
      const req = http.request(`${base}/v1/chat/completions`, { method: 'POST', agent, headers }, (res) => {
        if (res.statusCode !== 200) {
          res.resume();
          return reject(new Error(`${base} answered ${res.statusCode}`));
        }
        res.on('data', (chunk) => (first ??= chunk.includes('data:') ? performance.now() - started : undefined));
        res.on('end', () => (first === undefined ? reject(new Error(`${base}: stream ended without data`)) : resolve(first)));
        res.on('error', reject);
      });
      req.on('error', reject);
      const started = performance.now();
      req.end(body);
    });
  try {
    const samples = [];
    for (let i = 0; i < n + 20 && !cleaningUp; i++) samples.push(await one());
    const measured = samples.slice(20).sort((a, b) => a - b); // the first 20 warm up the JITs and connections
    return { p50: percentile(measured, 0.5), p99: percentile(measured, 0.99) };
  } finally {
    agent.destroy();
  }
}

// --- a 10,000-instance table, served by this script in the registry's place --------------------

const FAMILIES = ['llama-3.1', 'llama-3.2', 'qwen2.5', 'mistral', 'mixtral', 'gemma-2', 'phi-3.5', 'deepseek-coder', 'codellama', 'yi-1.5'];
const SIZES = ['1b', '3b', '7b', '8b', '13b', '14b', '32b', '34b', '70b', '72b'];
const MODELS = FAMILIES.flatMap((family) => SIZES.map((size) => `${family}-${size}-instruct`));
const REGIONS = ['nyc1', 'nyc3', 'sfo3', 'ams3', 'fra1', 'lon1', 'sgp1', 'tor1'];

function syntheticInstance(i, now) {
  const model = MODELS[i % MODELS.length];
  const token = model.replaceAll('.', '_'); // ids and names are subject tokens: no dots
  const vmIp = `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
  // Mostly healthy, as a fleet is: a few degraded (still routable), a few down or drained.
  const status = i % 50 === 7 ? 'unhealthy' : i % 20 === 3 ? 'degraded' : 'healthy';
  const adminState = i % 100 === 42 ? 'draining' : 'enabled';
  return {
    serviceId: `vllm-${token}-${i}`, serviceName: `vllm-${token.split('-')[0]}`, environment: 'development', region: REGIONS[i % REGIONS.length],
    vmIp, internalPort: 8000, externalDomain: `vllm-${i}.inference.example.com`, internalUrl: `http://${vmIp}:8000`,
    externalUrl: `https://vllm-${i}.inference.example.com`, version: '0.6.3', deploymentId: `deploy-${token}-${i % 7}`, namespace: 'inference',
    capabilities: ['llm', 'chat', 'streaming'], models: [model], healthCheckEndpoint: '/health',
    metadata: { engine: 'vllm', gpu: 'H100-80GB', gpuCount: 1 + (i % 4), maxModelLen: 8192 * (1 + (i % 4)) },
    requiredEnvironmentVars: [{ name: 'HF_TOKEN', type: 'secret', required: true }],
    status, adminState, routable: adminState === 'enabled' && status !== 'unhealthy',
    load: { requestsPerMinute: 20 + (i % 60), averageLatency: 180 + (i % 200), errorRate: (i % 10) / 1000, inflight: i % 8 },
    lastSeen: now, registeredAt: now, updatedAt: now, revision: i + 1,
  };
}

async function bigTableRss(nc) {
  const now = new Date().toISOString();
  const instances = Array.from({ length: TABLE_SIZE }, (_, i) => syntheticInstance(i, now));
  // Answered as registry-api does: chunks of whole instances under 512 KiB (a 10,000-instance
  // snapshot is ~9 MiB, over NATS' 1 MiB max_payload), then an empty sentinel message.
  const chunks = [];
  let current = [];
  let bytes = 0;
  for (const instance of instances) {
    const size = Buffer.byteLength(JSON.stringify(instance));
    if (current.length && bytes + size > 512 * 1024) {
      chunks.push(JSON.stringify({ revision: TABLE_SIZE, instances: current }));
      current = [];
      bytes = 0;
    }
    current.push(instance);
    bytes += size;
  }
  chunks.push(JSON.stringify({ revision: TABLE_SIZE, instances: current }));
  const snapshotBytes = chunks.reduce((n, c) => n + Buffer.byteLength(c), 0);
  const subs = [
    nc.subscribe(`${prefix2}.registry.cmd.snapshot`, {
      callback: (_e, msg) => {
        for (const chunk of chunks) msg.respond(chunk);
        msg.respond(new Uint8Array(0));
      },
    }),
    nc.subscribe(`${prefix2}.registry.cmd.revision`, { callback: (_e, msg) => msg.respond(JSON.stringify({ revision: TABLE_SIZE })) }),
  ];
  await nc.flush();
  // The table reads events from the stream after the snapshot: registry-api creates it, so the stand-in does too.
  const jsm = await nc.jetstreamManager();
  await jsm.streams.add({ name: `${prefix2}_REGISTRY`, subjects: [`${prefix2}.registry.events.>`] });
  try {
    const started = performance.now();
    const router = await startRouter('llm-router (10k table)', prefix2, TABLE_SIZE, TABLE_SIZE);
    await waitFor(`${TABLE_SIZE} instances in the second router's table`, async () => (await getJson(`${router.url}/health`)).json?.table?.instances === TABLE_SIZE, [router.child]);
    const loadSeconds = (performance.now() - started) / 1000;
    await sleep(SETTLE_MS);
    return { rss: rssMb(router.child.proc.pid), chunks: chunks.length, snapshotMiB: snapshotBytes / 2 ** 20, loadSeconds };
  } finally {
    for (const sub of subs) sub.unsubscribe();
    await deleteStream(nc, `${prefix2}_REGISTRY`);
  }
}

// --- orchestration and clean-up -----------------------------------------------------------------

let nc;
function cleanup() {
  cleaningUp ??= (async () => {
    // Routers and nginx first, so nothing is left sending to the mock or the registry.
    for (const child of [...children].reverse()) await step(`stop ${child.name}`, () => stopTree(child));
    await step(`delete stream ${prefix}_REGISTRY`, async () => {
      if (!nc) return;
      await deleteStream(nc, `${prefix}_REGISTRY`);
    });
    await step('close NATS', () => nc?.close());
    await step(`drop database ${dbName}`, () => dropDatabase(PG_ADMIN_URL, dbName));
    await step(`remove ${tmp}`, () => rmSync(tmp, { recursive: true, force: true }));
  })();
  return cleaningUp;
}

let interrupted = false;
onInterrupt(cleanup, () => (interrupted = true));

const failures = [];
async function phase(name, fn) {
  if (cleaningUp) return undefined; // interrupted: the processes under test are gone
  log(name);
  return fn().catch((error) => {
    failures.push(`${name}: ${error.message}`);
    log(`phase failed: ${error.message}`);
    return undefined;
  });
}

async function main() {
  const wallStarted = performance.now();
  const loadBefore = os.loadavg()[0];
  const nginxBin = which('nginx', '/usr/sbin/nginx');
  if (!which('wrk') || !nginxBin) {
    log('this benchmark needs wrk and nginx: apt-get update && apt-get install -y wrk nginx-light');
    return 1;
  }
  if (process.env.BENCH_SKIP_BUILD !== '1') {
    log('building registry-api, llm-router, mock-llm-backend-app');
    const build = spawnSync('npx', ['nx', 'run-many', '-t', 'build', '-p', 'registry-api', 'llm-router', 'mock-llm-backend-app', '--outputStyle=static'], { cwd: ROOT, encoding: 'utf8' });
    if (build.status !== 0) throw new Error(`build failed (exit ${build.status}):\n${build.stdout}${build.stderr}`);
  }
  nc = await connect({ servers: NATS_URL, name: 'router-bench' });

  const [mockPort, registryPort, nginxPort, barePort] = await Promise.all([freePort(), freePort(), freePort(), freePort()]);
  const mock = nodeApp('mock-llm-backend', MAIN.mock, {
    PORT: String(mockPort), MOCK_MODELS: MODEL, MOCK_LATENCY_MS: '0', MOCK_TOKENS_PER_SECOND: String(TOKENS_PER_SECOND), MOCK_COMPLETION_TOKENS: '20', MOCK_NAME: 'bench-mock',
  });
  const registry = nodeApp('registry-api', MAIN.registry, { PORT: String(registryPort), DATABASE_URL: `postgres://postgres@127.0.0.1:5432/${dbName}`, NATS_URL, SUBJECT_PREFIX: prefix });
  const nginx = startNginx(nginxBin, nginxPort, mockPort);
  const bare = startBareProxy(barePort, mockPort);
  const [direct, viaNginx, viaBare, registryUrl] = [mockPort, nginxPort, barePort, registryPort].map((port) => `http://127.0.0.1:${port}`);
  for (const [child, url] of [[mock, direct], [nginx, viaNginx], [bare, viaBare], [registry, registryUrl]]) {
    await waitFor(child.name, async () => (await getJson(`${url}/health`)).statusCode === 200, [child]);
  }

  const reg = await request(`${registryUrl}/api/v2/services/registry/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-registry-token': 'dev-registry-token' },
    body: JSON.stringify({
      serviceName: 'vllm', serviceId: `bench-mock-${id}`, vmIp: '127.0.0.1', internalPort: mockPort, externalDomain: 'x.example.com',
      version: '1', deploymentId: 'bench', environment: 'development', region: 'local', models: [MODEL],
    }),
  });
  const registered = await reg.body.json();
  if (reg.statusCode !== 201) throw new Error(`register answered ${reg.statusCode}: ${JSON.stringify(registered).slice(0, 300)}`);
  // ROUTER_WORKERS=1: the router column; ROUTER_WORKERS=2: one more throughput row (node:cluster).
  const router = await startRouter('llm-router', prefix, registered.service.revision, 1, { ROUTER_WORKERS: '1' });
  const router2 = await startRouter('llm-router (2 workers)', prefix, registered.service.revision, 1, { ROUTER_WORKERS: '2' });
  log(`up: mock ${direct}, nginx ${viaNginx}, bare proxy ${viaBare}, registry-api ${registryUrl}, router ${router.url} (table revision ${router.table.revision}), router ×2 ${router2.url}`);

  // Same request, same answer through every target; the routers must also have really routed it.
  const targets = { direct, nginx: viaNginx, bare: viaBare, router: router.url, router2: router2.url };
  for (const [name, base] of Object.entries(targets)) {
    for (const body of [CHAT_BODY, BIG_BODY]) {
      const res = await request(`${base}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${apiKey}` }, body });
      const answer = await res.body.json();
      if (res.statusCode !== 200 || answer.object !== 'chat.completion') throw new Error(`${base} answered ${res.statusCode}: ${JSON.stringify(answer).slice(0, 300)}`);
      if (name.startsWith('router') && res.headers['x-switchboard-instance'] !== `bench-mock-${id}`) throw new Error(`${name} did not route to the registered mock`);
    }
  }
  await sleep(SETTLE_MS);
  const baselineRss = rssMb(router.child.proc.pid);

  const script = writeWrkScript('chat', CHAT_BODY);
  const bigScript = writeWrkScript('chat-100k', BIG_BODY);
  const pids = { direct: mock.proc.pid, nginx: nginx.proc.pid, bare: bare.proc.pid, router: router.child.proc.pid, router2: router2.child.proc.pid };
  const COLUMNS = ['direct', 'nginx', 'bare', 'router'];
  // One target after the other, never two at once: they share the mock and the CPUs. BENCH_REPEAT
  // rounds, each running every target once, so a slow spell of the machine spreads over all of them.
  const repeated = async (names, fn) => {
    const runs = Object.fromEntries(names.map((n) => [n, []]));
    for (let round = 0; round < REPEAT && !cleaningUp; round++) {
      for (const name of names) runs[name].push(await fn(targets[name], pids[name]));
    }
    return runs;
  };
  const chat = (url) => `${url}/v1/chat/completions`;
  const each = `${REPEAT} round(s), ${DURATION_S} s each after ${WARMUP_S} s warm-up`;
  const latency = await phase(`phase 1: latency at c=1 (${each})`, () =>
    repeated(COLUMNS, (url, pid) => measure(script, chat(url), { threads: 1, connections: 1, pid })));
  const bigPrompt = await phase(`phase 2: latency at c=1 with a ${(Buffer.byteLength(BIG_BODY) / 1024).toFixed(0)} KiB prompt (${each})`, () =>
    repeated(COLUMNS, (url, pid) => measure(bigScript, chat(url), { threads: 1, connections: 1, pid })));
  const throughput = await phase(`phase 3: throughput at c=32 (${each}; router at ROUTER_WORKERS=1 and 2)`, () =>
    repeated([...COLUMNS, 'router2'], (url, pid) => measure(script, chat(url), { threads: 2, connections: 32, pid })));
  const firstToken = await phase(`phase 4: streaming time to first token, ${REPEAT} round(s) of ${TTFT_REQUESTS} sequential requests each`, () =>
    repeated(COLUMNS, (url) => ttft(url, TTFT_REQUESTS)));
  // The small-table routers are done: stopped (expected exits), so phase 5 has the machine to itself.
  await phase('stopping the small-table routers', async () => {
    for (const r of [router, router2]) r.child.transient = true;
    await Promise.all([stopTree(router.child), stopTree(router2.child)]);
  });
  const memory = await phase(`phase 5: RSS of a router with ${TABLE_SIZE} instances`, () => bigTableRss(nc));

  // --- summaries: median and range over the rounds; "added" and ratios paired within each round ---
  const [L, B, T, F] = [latency ?? {}, bigPrompt ?? {}, throughput ?? {}, firstToken ?? {}];
  const of = (runs, name, key) => (runs[name]?.length ? stats(runs[name].map((r) => r[key])) : undefined);
  const paired = (runs, name, other, key, f) => (runs[name]?.length && runs[other]?.length ? stats(runs[name].map((r, i) => f(r[key], runs[other][i]?.[key])).filter(Number.isFinite)) : undefined);
  const addedOver = (runs, name, key) => paired(runs, name, 'direct', key, (a, b) => a - b);
  const ratioTo = (runs, name, other) => paired(runs, name, other, 'rps', (a, b) => a / b);
  const cell = (st, digits = 2, scale = 1) =>
    !st || !Number.isFinite(st.median) ? 'n/a' : REPEAT === 1 ? fmt(st.median * scale, digits) : `${fmt(st.median * scale, digits)} (${fmt(st.min * scale, digits)}–${fmt(st.max * scale, digits)})`;
  const verdict = (st, ok) => (!st || !Number.isFinite(st.median) ? 'n/a' : ok(st.median) ? 'met' : '**missed**');
  const row = (...cells) => `| ${cells.join(' | ')} |`;
  const cols = (f) => COLUMNS.map(f);
  const thousands = TABLE_SIZE.toLocaleString('en');
  const summary = {
    addedP50: addedOver(L, 'router', 'p50'), addedP99: addedOver(L, 'router', 'p99'),
    addedBigP50: addedOver(B, 'router', 'p50'), addedTtftP50: addedOver(F, 'router', 'p50'),
    vsBare: ratioTo(T, 'router', 'bare'), vsNginx: ratioTo(T, 'router', 'nginx'),
    vsBare2: ratioTo(T, 'router2', 'bare'), vsNginx2: ratioTo(T, 'router2', 'nginx'), workers2Over1: ratioTo(T, 'router2', 'router'),
  };
  const lines = [
    row('metric', 'direct', 'nginx', 'bare Node proxy', 'router', 'target (issue 12) / result'),
    row('---', '---', '---', '---', '---', '---'),
    row('latency p50, c=1 (ms)', ...cols((n) => cell(of(L, n, 'p50'), 3)), '–'),
    row('latency p99, c=1 (ms)', ...cols((n) => cell(of(L, n, 'p99'), 3)), '–'),
    row('added over direct, p50, c=1 (ms)', '–', ...['nginx', 'bare', 'router'].map((n) => cell(addedOver(L, n, 'p50'), 3)), `router ≤ 0.25 ms: ${verdict(summary.addedP50, (v) => v <= 0.25)}`),
    row('added over direct, p99, c=1 (ms)', '–', ...['nginx', 'bare', 'router'].map((n) => cell(addedOver(L, n, 'p99'), 3)), `router ≤ 1 ms: ${verdict(summary.addedP99, (v) => v <= 1)}`),
    row(`latency p50, c=1, ${(Buffer.byteLength(BIG_BODY) / 1024).toFixed(0)} KiB prompt (ms)`, ...cols((n) => cell(of(B, n, 'p50'), 3)), '–'),
    row('added over direct, p50, 100 KB prompt (ms)', '–', ...['nginx', 'bare', 'router'].map((n) => cell(addedOver(B, n, 'p50'), 3)), `router ≤ 1 ms: ${verdict(summary.addedBigP50, (v) => v <= 1)}`),
    row('throughput, c=32 (req/s)', ...cols((n) => cell(of(T, n, 'rps'), 0)),
      `router ≥ 0.8× bare proxy (${cell(summary.vsBare, 2)}×): ${verdict(summary.vsBare, (v) => v >= 0.8)}; ≥ 0.5× nginx (${cell(summary.vsNginx, 2)}×): ${verdict(summary.vsNginx, (v) => v >= 0.5)}`),
    row('throughput, c=32, router ROUTER_WORKERS=2 (req/s)', '–', '–', '–', cell(of(T, 'router2', 'rps'), 0),
      `${cell(summary.workers2Over1, 2)}× ROUTER_WORKERS=1; ${cell(summary.vsBare2, 2)}× bare proxy, ${cell(summary.vsNginx2, 2)}× nginx`),
    row('CPU per request of the process in front (mock / nginx / bare / router), c=32 (µs)', ...cols((n) => cell(of(T, n, 'cpuPerRequest'), 0)), `router ×2 workers: ${cell(of(T, 'router2', 'cpuPerRequest'), 0)} µs`),
    row('latency p50, c=32 (ms)', ...cols((n) => cell(of(T, n, 'p50'), 2)), '–'),
    row('latency p99, c=32 (ms)', ...cols((n) => cell(of(T, n, 'p99'), 2)), '–'),
    row('stream time to first token p50 (ms)', ...cols((n) => cell(of(F, n, 'p50'), 3)), `router adds ${cell(summary.addedTtftP50, 3)} ms; ≤ 0.5 ms: ${verdict(summary.addedTtftP50, (v) => v <= 0.5)}`),
    row('stream time to first token p99 (ms)', ...cols((n) => cell(of(F, n, 'p99'), 3)), `router adds ${cell(addedOver(F, 'router', 'p99'), 3)} ms`),
    row('router RSS, 1 instance, idle (MB)', '–', '–', '–', fmt(baselineRss, 1), '–'),
    row(`router RSS, ${thousands} instances, idle (MB)`, '–', '–', '–', fmt(memory?.rss, 1), `< 150 MB: ${memory ? (memory.rss < 150 ? 'met' : '**missed**') : 'n/a'}`),
  ];
  const cpu = os.cpus();
  const nginxVersion = spawnSync(nginxBin, ['-v'], { encoding: 'utf8' }).stderr.trim().replace('nginx version: ', '');
  const tableSource = !memory ? '' : `came in one snapshot of ${fmt(memory.snapshotMiB, 1)} MiB sent as ${memory.chunks} chunks`;
  const notes = [
    `Node ${process.version}, ${cpu.length} × ${cpu[0]?.model.trim() ?? 'CPU'}, ${os.platform()} ${os.release()}, ${new Date().toISOString()}; wall time ${((performance.now() - wallStarted) / 1000).toFixed(0)} s;`,
    `1-min load average ${loadBefore.toFixed(2)} before, ${os.loadavg()[0].toFixed(2)} after (other work on these CPUs shows in p99s and req/s, much less in CPU per request).`,
    `Each cell: median (min–max) of ${REPEAT} round(s); "added" and the ratios are paired within a round, then summarised.`,
    `Every column hits the same mock-llm-backend process (latency 0, ${TOKENS_PER_SECOND} tokens/s) on loopback, with the load generator on the same ${cpu.length} CPUs.`,
    `wrk ${DURATION_S} s per run after a ${WARMUP_S} s warm-up, POST /v1/chat/completions (non-streaming, max_tokens 1; the large prompt ${Buffer.byteLength(BIG_BODY)} bytes), bearer key sent to all;`,
    `nginx ${nginxVersion} as a single process (master_process off), upstream keepalive, proxy_buffering off, client_body_buffer_size 1m; bare proxy: tools/bench/bare-proxy.mjs (node:http + an undici Pool, bodies streamed).`,
    `Time to first token: ${TTFT_REQUESTS} sequential streaming requests per round (node:http, keep-alive), request sent → first SSE data chunk, after 20 warm-up requests.`,
    `RSS: VmRSS ${SETTLE_MS / 1000} s after the table was loaded, no traffic${memory ? `; the ${thousands}-instance table (${MODELS.length} models) ${tableSource}, loaded in ${fmt(memory.loadSeconds, 1)} s from process start` : ''}.`,
  ].join(' ');
  console.log(`\n${lines.join('\n')}\n`);
  console.log(notes);

  // The CDF: for each target the round whose p50 is the median one (a real run, not a blend of runs).
  const medianRun = (runs) => runs?.length ? [...runs].sort((a, b) => a.p50 - b.p50)[Math.floor(runs.length / 2)] : undefined;
  const LABELS = { direct: 'direct to the mock', nginx: 'nginx', bare: 'bare Node proxy', router: 'llm-router' };
  const curves = COLUMNS.map((n) => ({ label: LABELS[n], points: medianRun(L[n])?.cdf ?? [] })).filter((c) => c.points.length);
  if (curves.length) {
    writeResultFile('router-latency-cdf.svg', latencyCdfSvg(curves, {
      title: `Latency CDF at concurrency 1 (wrk, ${DURATION_S} s, POST /v1/chat/completions, the median of ${REPEAT} round(s))`,
      subtitle: `${cpu.length} × ${cpu[0]?.model.trim() ?? 'CPU'}, Node ${process.version}, ${new Date().toISOString()}`,
    }));
  }
  const strip = (runs) => runs && Object.fromEntries(Object.entries(runs).map(([n, rs]) => [n, rs.map(({ cdf, ...rest }) => rest)]));
  writeResults('router', {
    settings: { durationS: DURATION_S, warmupS: WARMUP_S, repeat: REPEAT, ttftRequests: TTFT_REQUESTS, bigPromptBytes: Buffer.byteLength(BIG_BODY), tableSize: TABLE_SIZE },
    runs: { latencyC1: strip(latency), latencyC1BigPrompt: strip(bigPrompt), throughputC32: strip(throughput), timeToFirstToken: firstToken },
    summary: {
      ...summary,
      latencyC1: Object.fromEntries(COLUMNS.map((n) => [n, { p50: of(L, n, 'p50'), p99: of(L, n, 'p99') }])),
      latencyC1BigPrompt: Object.fromEntries(COLUMNS.map((n) => [n, { p50: of(B, n, 'p50'), p99: of(B, n, 'p99') }])),
      throughputC32: Object.fromEntries([...COLUMNS, 'router2'].map((n) => [n, { rps: of(T, n, 'rps'), cpuPerRequestUs: of(T, n, 'cpuPerRequest') }])),
      timeToFirstToken: Object.fromEntries(COLUMNS.map((n) => [n, { p50: of(F, n, 'p50'), p99: of(F, n, 'p99') }])),
    },
    latencyCdfC1: Object.fromEntries(COLUMNS.map((n) => [n, medianRun(L[n])?.cdf ?? null])),
    rss: { baselineMb: baselineRss, tenThousandInstances: memory ?? null },
    failures,
  }, [...lines, '', notes]);
  return failures.length ? 1 : 0;
}

let exitCode = 1;
try {
  exitCode = await main();
} catch (error) {
  log(interrupted ? 'interrupted' : `FAILED: ${error.message}`);
}
if (failures.length) log(`failed phase(s):\n  ${failures.join('\n  ')}`);
// LOG_LEVEL=warn: anything the apps printed is worth a look (the mock's start-up line aside).
for (const child of children.filter((c) => !c.transient && c.name !== 'mock-llm-backend' && c.output.length)) {
  log(`${child.name} output (last ${child.output.length} lines):`);
  for (const line of child.output) process.stderr.write(`  ${line}\n`);
}
await cleanup();
process.exit(interrupted ? 130 : exitCode);

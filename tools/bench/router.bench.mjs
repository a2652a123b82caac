#!/usr/bin/env node
// Overhead benchmark of llm-router against the floor: the mock backend called directly, and nginx as a
// plain reverse proxy, all in front of the SAME mock process so only the proxy differs. Measures
// latency at c=1 and throughput at c=32 (wrk), streaming time to first token, and the router's RSS
// with 10,000 instances in its table. Starts everything itself on free ports, a throw-away database
// and subject prefixes, and removes them afterwards. Prints a markdown table.
// Usage: node tools/bench/router.bench.mjs   (env: BENCH_DURATION_S=10, BENCH_TTFT_REQUESTS=200,
// BENCH_SKIP_BUILD=1; needs `wrk` and `nginx`: apt-get install -y wrk nginx-light)
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { connect } from 'nats';
import { request } from 'undici';
import { childGroup, cpuTime, freePort, log, percentile, rssMb, cleanupStep as step, deleteStream, dropDatabase, onInterrupt } from './bench-kit.mjs';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const MAIN = {
  registry: 'dist/apps/registry-api/apps/registry-api/src/main.js',
  router: 'dist/apps/llm-router/apps/llm-router/src/main.js',
  mock: 'dist/apps/mock-llm-backend/apps/mock-llm-backend/src/main.js',
};
const int = (name, fallback) => (process.env[name] ? Number.parseInt(process.env[name], 10) : fallback);
const DURATION_S = int('BENCH_DURATION_S', 10);
const WARMUP_S = Math.max(1, Math.min(2, Math.floor(DURATION_S / 5)));
const TTFT_REQUESTS = int('BENCH_TTFT_REQUESTS', 200);
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

/** user + system CPU of a process in µs. */
const cpuUs = (pid) => cpuTime(pid, 1e6);
const getJson = (url) => request(url).then(async ({ statusCode, body }) => ({ statusCode, json: await body.json().catch(() => undefined) }));

// --- child processes: every one is registered, so clean-up and interruption reach it ------------

let cleaningUp;
const { children, start, stop, waitFor } = childGroup({ keepLines: 40, pollMs: 100, quiet: () => Boolean(cleaningUp) });

const nodeApp = (name, main, env) => start(name, process.execPath, [main], { NODE_ENV: 'development', HOST: '127.0.0.1', LOG_LEVEL: 'warn', ...env });

async function startRouter(name, subjectPrefix, minRevision, minInstances) {
  const port = await freePort();
  const child = nodeApp(name, MAIN.router, { PORT: String(port), NATS_URL, SUBJECT_PREFIX: subjectPrefix, ROUTER_ENVIRONMENT: 'development', ROUTER_API_KEYS: apiKey });
  const url = `http://127.0.0.1:${port}`;
  let table;
  await waitFor(`${name}'s table (revision ≥ ${minRevision}, ${minInstances} instance(s))`, async () => {
    const { statusCode, json } = await getJson(`${url}/health`);
    table = json?.table;
    return statusCode === 200 && table.revision >= minRevision && table.instances >= minInstances;
  }, [child]);
  return { child, url, table };
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

function writeWrkScript() {
  const file = path.join(tmp, 'chat.lua');
  writeFileSync(file, `wrk.method = "POST"
wrk.body = [[${CHAT_BODY}]]
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer ${apiKey}"
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("BENCH_RESULT %d %d %d %d %d %d\\n", summary.requests, summary.duration,
    e.connect + e.read + e.write + e.timeout, e.status, latency:percentile(50), latency:percentile(99)))
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
  return { rps: requests / (durationUs / 1e6), p50: p50Us / 1000, p99: p99Us / 1000, cpuPerRequest: (cpuUs(pid) - cpuBefore) / requests };
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
    for (const child of [...children].reverse()) await step(`stop ${child.name}`, () => stop(child));
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

  const [mockPort, registryPort, nginxPort] = await Promise.all([freePort(), freePort(), freePort()]);
  const mock = nodeApp('mock-llm-backend', MAIN.mock, {
    PORT: String(mockPort), MOCK_MODELS: MODEL, MOCK_LATENCY_MS: '0', MOCK_TOKENS_PER_SECOND: String(TOKENS_PER_SECOND), MOCK_COMPLETION_TOKENS: '20', MOCK_NAME: 'bench-mock',
  });
  const registry = nodeApp('registry-api', MAIN.registry, { PORT: String(registryPort), DATABASE_URL: `postgres://postgres@127.0.0.1:5432/${dbName}`, NATS_URL, SUBJECT_PREFIX: prefix });
  const nginx = startNginx(nginxBin, nginxPort, mockPort);
  const [direct, viaNginx, registryUrl] = [mockPort, nginxPort, registryPort].map((port) => `http://127.0.0.1:${port}`);
  for (const [child, url] of [[mock, direct], [nginx, viaNginx], [registry, registryUrl]]) {
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
  const router = await startRouter('llm-router', prefix, registered.service.revision, 1);
  log(`up: mock ${direct}, nginx ${viaNginx}, registry-api ${registryUrl}, router ${router.url} (table revision ${router.table.revision})`);

  // Same request, same answer through all three; the router must also have really routed it.
  const targets = { direct, nginx: viaNginx, router: router.url };
  for (const base of Object.values(targets)) {
    const res = await request(`${base}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${apiKey}` }, body: CHAT_BODY });
    const answer = await res.body.json();
    if (res.statusCode !== 200 || answer.object !== 'chat.completion') throw new Error(`${base} answered ${res.statusCode}: ${JSON.stringify(answer).slice(0, 300)}`);
    if (base === router.url && res.headers['x-switchboard-instance'] !== `bench-mock-${id}`) throw new Error('the router did not route to the registered mock');
  }
  await sleep(SETTLE_MS);
  const baselineRss = rssMb(router.child.proc.pid);

  const script = writeWrkScript();
  const pids = { direct: mock.proc.pid, nginx: nginx.proc.pid, router: router.child.proc.pid };
  // One target after the other, never two at once: they share the mock and the CPUs.
  const eachTarget = async (fn) => {
    const out = {};
    for (const [name, url] of Object.entries(targets)) out[name] = await fn(url, pids[name]);
    return out;
  };
  const chat = (url) => `${url}/v1/chat/completions`;
  const latency = await phase(`phase 1: latency at c=1 (${DURATION_S} s each after ${WARMUP_S} s warm-up)`, () =>
    eachTarget((url, pid) => measure(script, chat(url), { threads: 1, connections: 1, pid })));
  const throughput = await phase(`phase 2: throughput at c=32 (${DURATION_S} s each)`, () =>
    eachTarget((url, pid) => measure(script, chat(url), { threads: 2, connections: 32, pid })));
  const firstToken = await phase(`phase 3: streaming time to first token, ${TTFT_REQUESTS} sequential requests each`, () =>
    eachTarget((url) => ttft(url, TTFT_REQUESTS)));
  const memory = await phase(`phase 4: RSS of a second router with ${TABLE_SIZE} instances`, () => bigTableRss(nc));

  const [L, T, F] = [latency ?? {}, throughput ?? {}, firstToken ?? {}];
  const verdict = (ok) => (ok === undefined ? 'n/a' : ok ? 'met' : '**missed**');
  const added = (q, name) => L[name]?.[q] - L.direct?.[q];
  const ratio = T.router?.rps / T.nginx?.rps;
  const each = (f) => ['direct', 'nginx', 'router'].map(f);
  const row = (...cells) => `| ${cells.join(' | ')} |`;
  const thousands = TABLE_SIZE.toLocaleString('en');
  const lines = [
    row('metric', 'direct', 'nginx', 'router', 'target / result'),
    row('---', '---', '---', '---', '---'),
    row('latency p50, c=1 (ms)', ...each((n) => fmt(L[n]?.p50, 3)), '–'),
    row('latency p99, c=1 (ms)', ...each((n) => fmt(L[n]?.p99, 3)), '–'),
    row('added over direct, p50 (ms)', '–', fmt(added('p50', 'nginx'), 3), fmt(added('p50', 'router'), 3), `router ≤ 0.5 ms: ${verdict(latency && added('p50', 'router') <= 0.5)}`),
    row('added over direct, p99 (ms)', '–', fmt(added('p99', 'nginx'), 3), fmt(added('p99', 'router'), 3), `router ≤ 1.5 ms: ${verdict(latency && added('p99', 'router') <= 1.5)}`),
    row('throughput, c=32 (req/s)', ...each((n) => fmt(T[n]?.rps, 0)), `router ≥ ½ nginx (${fmt(ratio * 100, 0)} %): ${verdict(throughput && ratio >= 0.5)}`),
    row('CPU per request of the process in front (mock / nginx / router), c=32 (µs)', ...each((n) => fmt(T[n]?.cpuPerRequest, 0)), '–'),
    row('latency p50 / p99, c=32 (ms)', ...each((n) => `${fmt(T[n]?.p50)} / ${fmt(T[n]?.p99)}`), '–'),
    row('stream time to first token p50 (ms)', ...each((n) => fmt(F[n]?.p50, 3)), `router adds ${fmt(F.router?.p50 - F.direct?.p50, 3)} ms`),
    row('stream time to first token p99 (ms)', ...each((n) => fmt(F[n]?.p99, 3)), `router adds ${fmt(F.router?.p99 - F.direct?.p99, 3)} ms`),
    row('router RSS, 1 instance, idle (MB)', '–', '–', fmt(baselineRss, 1), '–'),
    row(`router RSS, ${thousands} instances, idle (MB)`, '–', '–', fmt(memory?.rss, 1), `< 150 MB: ${verdict(memory && memory.rss < 150)}`),
  ];
  const cpu = os.cpus();
  const nginxVersion = spawnSync(nginxBin, ['-v'], { encoding: 'utf8' }).stderr.trim().replace('nginx version: ', '');
  const tableSource = !memory ? '' : `came in one snapshot of ${fmt(memory.snapshotMiB, 1)} MiB sent as ${memory.chunks} chunks`;
  console.log(`\n${lines.join('\n')}\n`);
  console.log([
    `Node ${process.version}, ${cpu.length} × ${cpu[0]?.model.trim() ?? 'CPU'}, ${os.platform()} ${os.release()}, ${new Date().toISOString()}; wall time ${((performance.now() - wallStarted) / 1000).toFixed(0)} s;`,
    `1-min load average ${loadBefore.toFixed(2)} before, ${os.loadavg()[0].toFixed(2)} after (other work on these CPUs shows in p99s and req/s, much less in CPU per request).`,
    `All three columns hit the same mock-llm-backend process (latency 0, ${TOKENS_PER_SECOND} tokens/s) on loopback, with the load generator on the same ${cpu.length} CPUs.`,
    `wrk ${DURATION_S} s per run after a ${WARMUP_S} s warm-up, POST /v1/chat/completions (non-streaming, max_tokens 1), bearer key sent to all;`,
    `nginx ${nginxVersion} as a single process (master_process off), upstream keepalive, proxy_buffering off.`,
    `Time to first token: ${TTFT_REQUESTS} sequential streaming requests (node:http, keep-alive), request sent → first SSE data chunk, after 20 warm-up requests.`,
    `RSS: VmRSS ${SETTLE_MS / 1000} s after the table was loaded, no traffic${memory ? `; the ${thousands}-instance table (${MODELS.length} models) ${tableSource}, loaded in ${fmt(memory.loadSeconds, 1)} s from process start` : ''}.`,
  ].join(' '));
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

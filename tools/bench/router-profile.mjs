#!/usr/bin/env node
// Where llm-router's CPU goes per request: the built router under `node --cpu-prof`, a small chat
// completion under wrk (c=32, then c=1), self time per package divided by the requests served in the
// load window (start-up and shutdown samples are left out). No registry-api: this script answers the
// router's snapshot request itself with one instance, the mock-llm-backend (as bench:router's 10k-table
// phase does). Prints a table per load shape; writes bench-results/router-profile.json.
// Usage: node tools/bench/router-profile.mjs   (env: BENCH_DURATION_S=10, BENCH_SKIP_BUILD=1, BENCH_ROUTER_MAIN,
// PROFILE_KEEP=1 keeps the .cpuprofile files; needs `wrk`)
import { spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect } from 'nats';
import { request } from 'undici';
import { childGroup, cpuTime, deleteStream, freePort, log, writeResults } from './bench-kit.mjs';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const ROUTER_MAIN = process.env.BENCH_ROUTER_MAIN ?? 'dist/apps/llm-router/apps/llm-router/src/main.js'; // BENCH_ROUTER_MAIN: another build (A/B)
const MOCK_MAIN = 'dist/apps/mock-llm-backend/apps/mock-llm-backend/src/main.js';
const DURATION_S = Number.parseInt(process.env.BENCH_DURATION_S ?? '10', 10);
const NATS_URL = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';
const MODEL = 'bench-model';
const prefix = `rprof${Math.random().toString(16).slice(2, 10)}`;
const apiKey = `sk-profile-${prefix}`;
const tmp = mkdtempSync(path.join(os.tmpdir(), 'router-profile-'));
const { children, start, stop, waitFor } = childGroup({ keepLines: 40, pollMs: 100, quiet: () => stopping });
let stopping = false;

/** A profile node's package: node_modules/<pkg>, Node's own JS, V8/native, or our file under dist. */
function packageOf({ url, functionName }) {
  if (!url) {
    if (functionName === '(garbage collector)') return 'GC';
    if (functionName === '(program)' || functionName === '(idle)' || functionName === '(root)') return functionName;
    return 'native/V8 builtins';
  }
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (nm) return nm[1];
  if (url.startsWith('node:')) {
    if (/async_hooks|async_local_storage/.test(url)) return 'node: async_hooks';
    if (/^node:(_http_|http)/.test(url)) return 'node: http';
    if (/^node:(net|internal\/(stream|streams\/|net))/.test(url)) return 'node: net/streams';
    return 'node: events/timers/other';
  }
  // Our own files by their source path, whichever dist folder the build is in (BENCH_ROUTER_MAIN).
  const app = /((?:apps|libs)\/[^/]+\/src\/.*)\.js$/.exec(url);
  return app ? app[1] : url;
}

/** Self µs per package (or per function, `by`) over the samples taken between `fromUs` and `toUs` (the monotonic clock, as process.hrtime). */
function selfTimes(profile, fromUs, toUs, by = (callFrame) => packageOf(callFrame)) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const totals = new Map();
  let t = profile.startTime;
  for (let i = 0; i < profile.samples.length; i++) {
    t += profile.timeDeltas[i];
    if (t < fromUs || t > toUs) continue;
    // A sample stands for the time until the next one.
    const dt = profile.timeDeltas[i + 1] ?? 0;
    const key = by(byId.get(profile.samples[i]).callFrame);
    totals.set(key, (totals.get(key) ?? 0) + dt);
  }
  return totals;
}

function wrkScript(body) {
  const file = path.join(tmp, 'chat.lua');
  writeFileSync(file, `wrk.method = "POST"\nwrk.body = [[${body}]]\nwrk.headers["Content-Type"] = "application/json"\nwrk.headers["Authorization"] = "Bearer ${apiKey}"
done = function(summary) io.write(string.format("REQUESTS %d %d\\n", summary.requests, summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout)) end\n`);
  return file;
}

async function wrk(script, url, connections, seconds) {
  const child = start('wrk', 'wrk', [`-t${connections > 1 ? 2 : 1}`, `-c${connections}`, `-d${seconds}s`, '-s', script, url]);
  child.transient = true;
  await once(child.proc, 'exit');
  const [requests, errors] = (child.output.find((l) => l.startsWith('REQUESTS')) ?? 'REQUESTS 0 1').split(' ').slice(1).map(Number);
  if (errors || !requests) throw new Error(`wrk: ${errors} error(s), ${requests} requests: ${child.output.slice(-3).join(' | ')}`);
  return requests;
}

const nowUs = () => Number(process.hrtime.bigint() / 1000n);

async function main() {
  if (process.env.BENCH_SKIP_BUILD !== '1') {
    const build = spawnSync('npx', ['nx', 'run-many', '-t', 'build', '-p', 'llm-router', 'mock-llm-backend-app', '--outputStyle=static'], { cwd: ROOT, encoding: 'utf8' });
    if (build.status !== 0) throw new Error(`build failed:\n${build.stdout}${build.stderr}`);
  }
  const nc = await connect({ servers: NATS_URL, name: 'router-profile' });
  const [mockPort, routerPort] = await Promise.all([freePort(), freePort()]);
  const mock = start('mock', process.execPath, [MOCK_MAIN], { NODE_ENV: 'development', HOST: '127.0.0.1', LOG_LEVEL: 'warn', PORT: String(mockPort), MOCK_MODELS: MODEL, MOCK_LATENCY_MS: '0', MOCK_TOKENS_PER_SECOND: '20', MOCK_COMPLETION_TOKENS: '20' });
  const now = new Date().toISOString();
  const instance = {
    serviceId: 'profile-mock-1', serviceName: 'vllm', environment: 'development', region: 'local', vmIp: '127.0.0.1', internalPort: mockPort,
    externalDomain: 'x.example.com', internalUrl: `http://127.0.0.1:${mockPort}`, externalUrl: 'https://x.example.com', version: '1', deploymentId: 'profile',
    namespace: 'system', capabilities: [], models: [MODEL], healthCheckEndpoint: '/health', metadata: {}, requiredEnvironmentVars: [],
    status: 'healthy', adminState: 'enabled', routable: true, load: {}, lastSeen: now, registeredAt: now, updatedAt: now, revision: 1,
  };
  const subs = [
    nc.subscribe(`${prefix}.registry.cmd.snapshot`, { callback: (_e, msg) => (msg.respond(JSON.stringify({ revision: 1, instances: [instance] })), msg.respond(new Uint8Array(0))) }),
    nc.subscribe(`${prefix}.registry.cmd.revision`, { callback: (_e, msg) => msg.respond(JSON.stringify({ revision: 1 })) }),
  ];
  const jsm = await nc.jetstreamManager();
  await jsm.streams.add({ name: `${prefix}_REGISTRY`, subjects: [`${prefix}.registry.events.>`] });
  const profDir = path.join(tmp, 'prof');
  const router = start('llm-router', process.execPath, ['--cpu-prof', `--cpu-prof-dir=${profDir}`, ROUTER_MAIN], {
    NODE_ENV: 'development', HOST: '127.0.0.1', LOG_LEVEL: 'warn', PORT: String(routerPort), NATS_URL, SUBJECT_PREFIX: prefix, ROUTER_API_KEYS: apiKey, ROUTER_WORKERS: '1',
  });
  const url = `http://127.0.0.1:${routerPort}`;
  try {
    await waitFor('the router and the mock', async () => {
      const health = await request(`${url}/health`).then((r) => r.body.json());
      return health?.table?.instances === 1 && (await request(`http://127.0.0.1:${mockPort}/health`)).statusCode === 200;
    }, [router, mock]);
    const script = wrkScript(JSON.stringify({ model: MODEL, max_tokens: 1, messages: [{ role: 'user', content: 'Say hello in one word.' }] }));
    const chat = `${url}/v1/chat/completions`;
    await wrk(script, chat, 32, 2); // warm-up: JIT, pools
    const windows = [];
    for (const connections of [32, 1]) {
      const from = nowUs();
      const cpuBefore = cpuTime(router.proc.pid, 1e6);
      const requests = await wrk(script, chat, connections, DURATION_S);
      windows.push({ connections, from, to: nowUs(), requests, cpuPerRequest: (cpuTime(router.proc.pid, 1e6) - cpuBefore) / requests });
    }
    stopping = true;
    await stop(router);
    const file = readdirSync(profDir).find((f) => f.endsWith('.cpuprofile'));
    if (!file) throw new Error('the router wrote no profile');
    const profile = JSON.parse(readFileSync(path.join(profDir, file), 'utf8'));
    if (process.env.PROFILE_KEEP === '1') log(`profile kept: ${path.join(profDir, file)}`);
    const results = [];
    for (const w of windows) {
      const totals = [...selfTimes(profile, w.from, w.to)].filter(([k]) => k !== '(idle)').sort((a, b) => b[1] - a[1]);
      const sum = totals.reduce((n, [, us]) => n + us, 0);
      const perRequest = Object.fromEntries(totals.map(([k, us]) => [k, us / w.requests]));
      results.push({ connections: w.connections, requests: w.requests, rps: w.requests / ((w.to - w.from) / 1e6), cpuPerRequestUs: w.cpuPerRequest, profiledUsPerRequest: sum / w.requests, perRequest });
      console.log(`\nc=${w.connections}: ${w.requests} requests, ${(w.requests / ((w.to - w.from) / 1e6)).toFixed(0)}/s; CPU per request ${w.cpuPerRequest.toFixed(0)} µs (/proc), profiled ${(sum / w.requests).toFixed(0)} µs`);
      console.log('| package | self µs per request |\n|---|---|');
      for (const [k, us] of totals.filter(([, us]) => us / w.requests >= 0.5)) console.log(`| ${k} | ${(us / w.requests).toFixed(1)} |`);
      // PROFILE_TOP=N: the N functions with the most self time, to see what a package's share is made of.
      const top = Number.parseInt(process.env.PROFILE_TOP ?? '0', 10);
      if (top) {
        const fns = [...selfTimes(profile, w.from, w.to, (f) => `${f.functionName || '(anonymous)'} ${f.url.replace(/^.*node_modules\//, '')}:${f.lineNumber + 1}`)].sort((a, b) => b[1] - a[1]);
        for (const [k, us] of fns.slice(0, top)) console.log(`  ${(us / w.requests).toFixed(1).padStart(6)} µs  ${k}`);
      }
    }
    writeResults('router-profile', { durationS: DURATION_S, windows: results });
  } finally {
    stopping = true;
    for (const sub of subs) sub.unsubscribe();
    for (const child of [...children].reverse()) await stop(child);
    await deleteStream(nc, `${prefix}_REGISTRY`).catch(() => undefined);
    await nc.close();
    if (process.env.PROFILE_KEEP !== '1') rmSync(tmp, { recursive: true, force: true });
  }
}

await main().catch((error) => {
  log(`FAILED: ${error.message}`);
  process.exitCode = 1;
});

// Helpers shared by the tools/bench/*.bench.mjs scripts: ports, polling, child processes, Prometheus
// scrapes, /proc figures and the median/range summary. Plain Node (no dependencies), so every bench
// stays a single `node tools/bench/x.bench.mjs`.
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createServer, Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import pg from 'pg';

/** The repository root: benches run the apps as built under dist/. */
export const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export const log = (line) => process.stderr.write(`[bench] ${line}\n`);

// --- figures ------------------------------------------------------------------------------------

/** The q-quantile (0..1) of an ascending array; NaN when empty. */
export const percentile = (sorted, q) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] : NaN);

/** Median and range of the repeats of one figure. */
export const stats = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  return { median: sorted[Math.floor(sorted.length / 2)], min: sorted[0], max: sorted.at(-1) };
};
/** `median unit (min–max)` of {@link stats}. */
export const fmtRange = ({ median, min, max }, unit = 'ms', digits = 0) => `${median.toFixed(digits)} ${unit} (${min.toFixed(digits)}–${max.toFixed(digits)})`;

const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout) || 100;
/** user + system CPU of a process, in `perSecond` units of a second (1000: ms, 1e6: µs): fields 14 and 15 of /proc/<pid>/stat (after the command name). */
export const cpuTime = (pid, perSecond) => {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * perSecond) / CLK_TCK;
};
export const rssMb = (pid) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]) / 1024;

// --- results on disk ----------------------------------------------------------------------------

/** Where every bench writes its figures (git-ignored). */
export const RESULTS_DIR = path.join(ROOT, 'bench-results');

/**
 * Writes `bench-results/<bench>.json`: the bench's figures plus what they were measured on (Node,
 * CPUs, load average, the BENCH_* settings), so a run can be compared with a later one. `table` is
 * the markdown the bench printed, kept as lines. Returns the file's path (also logged).
 */
export function writeResults(bench, figures, table) {
  mkdirSync(RESULTS_DIR, { recursive: true });
  const file = path.join(RESULTS_DIR, `${bench}.json`);
  const cpus = os.cpus();
  const settings = Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith('BENCH_') && !/URL|TOKEN|KEY|PASS/i.test(k)));
  const doc = {
    bench, at: new Date().toISOString(), node: process.version, cpus: cpus.length, cpuModel: cpus[0]?.model.trim(), platform: `${os.platform()} ${os.release()}`,
    loadAverage1m: os.loadavg()[0], settings, figures, ...(table ? { table: Array.isArray(table) ? table : String(table).split('\n') } : {}),
  };
  // NaN/Infinity are not JSON: written as null, like JSON.stringify does, but said so explicitly.
  writeFileSync(file, `${JSON.stringify(doc, (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2)}\n`);
  log(`figures written to ${path.relative(ROOT, file)}`);
  return file;
}

/** Writes a file under bench-results/ (an SVG, say); returns its path. */
export function writeResultFile(name, content) {
  mkdirSync(RESULTS_DIR, { recursive: true });
  const file = path.join(RESULTS_DIR, name);
  writeFileSync(file, content);
  log(`written: ${path.relative(ROOT, file)}`);
  return file;
}

// --- Prometheus scrapes -------------------------------------------------------------------------

/** Prometheus text → [{ name, labels, value }] (enough of the format for prom-client's output). */
export function parseMetrics(text) {
  const out = [];
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m || line.startsWith('#')) continue;
    const labels = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((l) => [l[1], l[2]]));
    out.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return out;
}
export const sumOf = (metrics, name, match = {}) =>
  metrics.filter((s) => s.name === name && Object.entries(match).every(([k, v]) => s.labels[k] === v)).reduce((a, s) => a + s.value, 0);

/** histogram_quantile() over the difference of two scrapes, so earlier phases do not leak in. */
export function histogramQuantile(before, after, name, q) {
  const cumulative = (metrics) => new Map(metrics.filter((s) => s.name === `${name}_bucket`).map((s) => [s.labels.le, s.value]));
  const [b, a] = [cumulative(before), cumulative(after)];
  const buckets = [...a].map(([le, v]) => ({ le: le === '+Inf' ? Infinity : Number(le), count: v - (b.get(le) ?? 0) })).sort((x, y) => x.le - y.le);
  const rank = q * (buckets.at(-1)?.count ?? 0);
  let [lower, below] = [0, 0];
  for (const { le, count } of buckets) {
    if (rank && count >= rank) return le === Infinity ? lower : lower + ((le - lower) * (rank - below)) / Math.max(1, count - below); // like Prometheus
    [lower, below] = [le, count];
  }
  return rank ? lower : NaN;
}

// --- ports and polling --------------------------------------------------------------------------

export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer().once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

export const portOpen = (port) =>
  new Promise((resolve) => {
    const socket = new Socket();
    socket.once('connect', () => (socket.destroy(), resolve(true)));
    socket.once('error', () => (socket.destroy(), resolve(false)));
    socket.connect(port, '127.0.0.1');
  });

/** Polls `check` (a throw counts as false) every `everyMs` until it holds; throws after `timeoutMs`. */
export async function until(what, check, timeoutMs = 60_000, everyMs = 50) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(everyMs);
  }
}

// --- child processes ----------------------------------------------------------------------------

/** Every child started by {@link runNode}, until it exits: what a bench's clean-up kills. */
export const children = new Set();

/** Runs a built app (`main` under ROOT) as in development, logging at warn; keeps its last lines. */
export function runNode(main, env) {
  const child = spawn(process.execPath, [main], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NODE_ENV: 'development', HOST: '127.0.0.1', LOG_LEVEL: 'warn', ...env } });
  const output = [];
  const keep = (chunk) => output.push(...chunk.toString().split('\n').filter(Boolean).slice(-50));
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  children.add(child);
  child.once('exit', () => children.delete(child));
  return { child, output };
}

/** Signals a child (SIGKILL after 10 s) and waits for it to exit. */
export async function stopChild(child, signal = 'SIGTERM') {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill(signal);
  setTimeout(() => child.kill('SIGKILL'), 10_000).unref();
  await exited;
}

/**
 * Named children, each registered so clean-up and interruption reach it: `{ name, proc, exited,
 * output }` (the last `keepLines` lines; a child marked `transient` may exit quietly).
 * @param quiet true while the bench is cleaning up (exits are expected then)
 */
export function childGroup({ keepLines, pollMs, quiet }) {
  const list = [];
  function start(name, command, args, env = {}) {
    const proc = spawn(command, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    const child = { name, proc, exited: false, output: [] };
    const keep = (chunk) => {
      child.output.push(...chunk.toString().split('\n').filter(Boolean));
      child.output.splice(0, Math.max(0, child.output.length - keepLines));
    };
    proc.stdout.on('data', keep);
    proc.stderr.on('data', keep);
    proc.once('error', (error) => keep(Buffer.from(`spawn failed: ${error.message}`)));
    proc.once('exit', (code, signal) => {
      child.exited = true;
      if (!quiet() && !child.transient) log(`${name} exited unexpectedly (code ${code}, signal ${signal})`);
    });
    list.push(child);
    return child;
  }

  async function stop(child) {
    if (child.exited || child.proc.exitCode !== null) return;
    const exited = once(child.proc, 'exit');
    child.proc.kill('SIGTERM');
    if (!(await Promise.race([exited.then(() => true), sleep(5000, false)]))) child.proc.kill('SIGKILL');
  }

  /** Polls `check` until it holds; throws when one of `watched` exits first or after `timeoutMs`. */
  async function waitFor(what, check, watched, timeoutMs = 60_000) {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const dead = watched.find((c) => c.exited);
      if (dead) throw new Error(`${dead.name} exited while waiting for ${what}`);
      if (await check().catch(() => false)) return;
      await sleep(pollMs);
    }
    throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
  }

  return { children: list, start, stop, waitFor };
}

// --- clean-up -----------------------------------------------------------------------------------

/** One step of a clean-up: a failure is logged and the clean-up goes on. */
export const cleanupStep = (what, fn) => Promise.resolve().then(fn).catch((error) => log(`clean-up: ${what} failed: ${error.message}`));

/** Deletes a JetStream stream; one already gone is fine. */
export async function deleteStream(nc, name) {
  const jsm = await nc.jetstreamManager();
  await jsm.streams.delete(name).catch((error) => !/not found/i.test(error.message) && Promise.reject(error));
}

/** Drops a throw-away database, closing its connections. */
export async function dropDatabase(adminUrl, dbName) {
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS "${dbName}" WITH (FORCE)`);
  } finally {
    await admin.end();
  }
}

/** On SIGINT or SIGTERM: `interrupted()`, then `cleanup()`, then exit 130. */
export function onInterrupt(cleanup, interrupted) {
  for (const signal of ['SIGINT', 'SIGTERM']) {
    process.once(signal, () => {
      log(`${signal}: cleaning up`);
      interrupted();
      void cleanup().finally(() => process.exit(130));
    });
  }
}

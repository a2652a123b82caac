#!/usr/bin/env node
// `npm start`: build every app and run them together on their defaults, one readable log line per event
// prefixed by app (pino-pretty; LOG_FORMAT=json or NODE_ENV=production prints the apps' JSON as it is).
// Needs PostgreSQL and NATS on loopback, Redis too for the discovery cache (`docker compose up -d nats postgres redis`
// provides them where Docker runs). Ctrl-C stops the apps in stages, registry-api last.
import { spawn, spawnSync } from 'node:child_process';
import { createConnection } from 'node:net';
import { lineFormatter, logFormat } from './pretty-logs.mjs';

// `stage`: the order of a stop. registry-api goes last, so the others can still reach it while they
// stop (the prober deregisters itself through it).
const APPS = [
  { name: 'registry-api', main: 'dist/apps/registry-api/apps/registry-api/src/main.js', port: 3013, stage: 2 },
  { name: 'llm-router', main: 'dist/apps/llm-router/apps/llm-router/src/main.js', port: 8080, stage: 1 },
  { name: 'health-prober', main: 'dist/apps/health-prober/apps/health-prober/src/main.js', port: 3014, stage: 1 },
  { name: 'cache-invalidator', main: 'dist/apps/cache-invalidator/apps/cache-invalidator/src/main.js', port: 3015, stage: 1 },
];
// How long one stage may take to stop before it is killed: above the apps' SHUTDOWN_GRACE_MS (10 s in
// development), so an app that cannot finish ends itself (exit 1, naming what was pending) first.
const STOP_GRACE_MS = 15_000;
// optional: the apps start without it (registry-api answers discovery from PostgreSQL meanwhile).
const SERVICES = [
  { name: 'PostgreSQL', port: 5432 },
  { name: 'NATS', port: 4222 },
  { name: 'Redis', port: 6379, optional: true },
];

const answers = (port) =>
  new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    socket.once('connect', () => (socket.destroy(), resolve(true)));
    socket.once('error', () => resolve(false));
  });

for (const { name, port, optional } of SERVICES) {
  if (!(await answers(port))) {
    if (optional) {
      console.warn(`${name} is not answering on 127.0.0.1:${port}: starting without it (discovery uncached until it answers).`);
      continue;
    }
    console.error(`${name} is not answering on 127.0.0.1:${port}. Start it (tools/scripts/ensure-services.sh, or docker compose up -d nats postgres redis) and retry.`);
    process.exit(1);
  }
}

const build = spawnSync('npx', ['nx', 'run-many', '-t', 'build', '--outputStyle=static'], { stdio: 'inherit' });
if (build.status !== 0) process.exit(build.status ?? 1);

const format = logFormat();
// One colour per app prefix, when the terminal shows colours (and not in JSON, where tools parse lines).
const PREFIX_COLOURS = [36, 35, 33, 32];
const colour = format === 'pretty' && process.stdout.isTTY && !process.env.NO_COLOR;

const children = APPS.map(({ name, main, stage }, index) => {
  const prefix = colour ? `\x1b[${PREFIX_COLOURS[index % PREFIX_COLOURS.length]}m[${name}]\x1b[0m` : `[${name}]`;
  const formatLine = lineFormatter({ format, colorize: colour });
  // Detached: a terminal's Ctrl-C signals the whole foreground process group at once, which would
  // stop registry-api before the prober could deregister through it. Only this script hears it, and
  // stops the apps in stages.
  const child = spawn(process.execPath, [main], { stdio: ['ignore', 'pipe', 'pipe'], env: process.env, detached: true });
  child.stage = stage;
  for (const stream of [child.stdout, child.stderr]) {
    let rest = '';
    stream.on('data', (chunk) => {
      const lines = (rest + chunk).split('\n');
      rest = lines.pop();
      for (const line of lines) process.stdout.write(`${prefix} ${formatLine(line)}`);
    });
  }
  child.on('exit', (code, signal) => {
    console.log(`[${name}] exited (${signal ?? code})`);
    void shutdown(code ?? 1);
  });
  return child;
});
// Detached children outlive this script unless it takes them along (a crash, a second Ctrl-C).
process.on('exit', () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
});

console.log(APPS.map((a) => `${a.name}: http://127.0.0.1:${a.port}`).join('\n'));
console.log('console: http://127.0.0.1:3013/console (the live fleet; actions take the admin token, dev-admin-token here)');

const running = (child) => child.exitCode === null && child.signalCode === null;

async function stopStage(stage) {
  const stopping = children.filter((c) => c.stage === stage && running(c));
  await Promise.all(
    stopping.map(
      (child) =>
        new Promise((resolve) => {
          child.once('exit', resolve);
          child.kill('SIGTERM');
          setTimeout(() => running(child) && child.kill('SIGKILL'), STOP_GRACE_MS).unref();
        }),
    ),
  );
}

let stopping = false;
async function shutdown(code) {
  if (stopping) return;
  stopping = true;
  for (const stage of [...new Set(APPS.map((a) => a.stage))].sort()) await stopStage(stage);
  process.exit(code);
}
let firstSigint = 0;
process.on('SIGINT', () => {
  // npm forwards the terminal's SIGINT, so one Ctrl-C may arrive twice at once; a later second
  // Ctrl-C means stop waiting (the exit handler kills the rest).
  if (firstSigint && Date.now() - firstSigint > 1000) process.exit(130);
  firstSigint ||= Date.now();
  void shutdown(0);
});
process.on('SIGTERM', () => void shutdown(0));

#!/usr/bin/env node
// `npm start`: build every app and run them together on their defaults, logs prefixed by app.
// Needs PostgreSQL and NATS on loopback, Redis too for the discovery cache (`docker compose up -d`
// provides them where Docker runs).
import { spawn, spawnSync } from 'node:child_process';
import { createConnection } from 'node:net';

const APPS = [
  { name: 'registry-api', main: 'dist/apps/registry-api/apps/registry-api/src/main.js', port: 3013 },
  { name: 'llm-router', main: 'dist/apps/llm-router/apps/llm-router/src/main.js', port: 8080 },
  { name: 'health-prober', main: 'dist/apps/health-prober/apps/health-prober/src/main.js', port: 3014 },
  { name: 'cache-invalidator', main: 'dist/apps/cache-invalidator/apps/cache-invalidator/src/main.js', port: 3015 },
];
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
    console.error(`${name} is not answering on 127.0.0.1:${port}. Start it (tools/scripts/ensure-services.sh, or docker compose up -d) and retry.`);
    process.exit(1);
  }
}

const build = spawnSync('npx', ['nx', 'run-many', '-t', 'build', '--outputStyle=static'], { stdio: 'inherit' });
if (build.status !== 0) process.exit(build.status ?? 1);

const children = APPS.map(({ name, main }) => {
  const child = spawn(process.execPath, [main], { stdio: ['ignore', 'pipe', 'pipe'], env: process.env });
  for (const stream of [child.stdout, child.stderr]) {
    let rest = '';
    stream.on('data', (chunk) => {
      const lines = (rest + chunk).split('\n');
      rest = lines.pop();
      for (const line of lines) process.stdout.write(`[${name}] ${line}\n`);
    });
  }
  child.on('exit', (code, signal) => {
    console.log(`[${name}] exited (${signal ?? code})`);
    shutdown(code ?? 1);
  });
  return child;
});

console.log(APPS.map((a) => `${a.name}: http://127.0.0.1:${a.port}`).join('\n'));

let stopping = false;
function shutdown(code) {
  if (stopping) return;
  stopping = true;
  for (const child of children) if (child.exitCode === null) child.kill('SIGTERM');
  setTimeout(() => process.exit(code), 3000).unref();
}
process.on('SIGINT', () => shutdown(0));
process.on('SIGTERM', () => shutdown(0));

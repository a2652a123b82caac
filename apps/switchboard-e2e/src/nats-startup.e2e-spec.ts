import { ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { createTestEnvironment, freePort, PrivateNatsServer, TestEnvironment, waitFor } from '@switchboard/testing';
import { ROUTER_MAIN } from './support/system.util';

const REGISTRY_MAIN = 'dist/apps/registry-api/apps/registry-api/src/main.js';

interface Launched {
  process: ChildProcess;
  url: string;
  /** stdout and stderr together, as an operator's log collector would keep them. */
  output: () => string;
  exited: Promise<number | null>;
}

/** A built app as a process, with the caller's environment only (LOG_LEVEL included: start-up lines are at info). */
async function launch(main: string, env: Record<string, string>): Promise<Launched> {
  const port = await freePort();
  const child = spawn(process.execPath, [main], {
    env: { PATH: process.env['PATH'] ?? '', HOST: '127.0.0.1', PORT: String(port), LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const chunks: string[] = [];
  child.stdout?.on('data', (d) => chunks.push(String(d)));
  child.stderr?.on('data', (d) => chunks.push(String(d)));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { process: child, url: `http://127.0.0.1:${port}`, output: () => chunks.join(''), exited };
}

async function stop(app: Launched | undefined): Promise<void> {
  if (!app || app.process.exitCode !== null || app.process.signalCode !== null) return;
  app.process.kill('SIGTERM');
  setTimeout(() => app.process.kill('SIGKILL'), 5000).unref();
  await app.exited;
}

describe('NATS credentials at start-up (built apps as processes)', () => {
  let dir: string;
  let secured: PrivateNatsServer;
  let open: PrivateNatsServer;
  let env: TestEnvironment;
  const apps: Launched[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'sb-e2e-nats-'));
    writeFileSync(join(dir, 'nats-server.conf'), 'authorization { users: [ { user: "sb", password: "secretpw" } ] }\n');
    secured = await PrivateNatsServer.start({ configFile: join(dir, 'nats-server.conf') });
    open = await PrivateNatsServer.start();
    env = await createTestEnvironment('natsstartup');
  });

  afterAll(async () => {
    await Promise.all(apps.map(stop));
    await secured?.dispose();
    await open?.dispose();
    await env?.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  const production = { NODE_ENV: 'production', ROUTER_API_KEYS: 'sk-e2e-key-0123456789', ROUTER_ENVIRONMENT: 'production' };

  it('in production, refuses to start without NATS credentials, naming the variables', async () => {
    const router = await launch(ROUTER_MAIN, { ...production, NATS_URL: open.url });
    apps.push(router);
    // The output goes with the exit code, so a failure shows why the app stopped.
    expect({ exit: await router.exited, output: router.output() }).toMatchObject({ exit: 78 });
    expect(router.output()).toContain('NATS_CREDS, NATS_NKEY_SEED_FILE, NATS_USER + NATS_PASSWORD, NATS_TOKEN: none is set, and NODE_ENV=production needs NATS credentials');
  });

  it('in production, refuses a NATS server that does not require authentication with one clear line and a non-zero exit', async () => {
    const router = await launch(ROUTER_MAIN, { ...production, NATS_URL: open.url, NATS_USER: 'llm-router', NATS_PASSWORD: 'whatever-password' });
    apps.push(router);
    expect({ exit: await router.exited, output: router.output() }).toMatchObject({ exit: 1 });
    const why = router.output().split('\n').filter((line) => line.includes('does not require authentication'));
    expect(why).toHaveLength(1);
    expect(why[0]).toContain(`refusing to start: the NATS server at ${open.url} does not require authentication`);
    expect(why[0]).toContain('set NATS_ALLOW_ANONYMOUS=true to allow it on purpose');
  });

  it('never prints a password carried in NATS_URL, while NATS is down and once it is up', async () => {
    const where = `127.0.0.1:${secured.port}`;
    await secured.stop();
    // Until the app has tried and failed once, its port answers with a closed connection (the retry warning's path).
    let attempts = 0;
    const down = createServer((socket) => (attempts++, socket.destroy()));
    await new Promise<void>((resolve) => down.listen(secured.port, '127.0.0.1', resolve));
    const registry = await launch(REGISTRY_MAIN, {
      NATS_URL: `nats://sb:secretpw@${where}`,
      SUBJECT_PREFIX: env.subjectPrefix,
      DATABASE_URL: env.databaseUrl,
      DATABASE_CREATE_IF_MISSING: 'false',
      CACHE_ENABLED: 'false',
    });
    apps.push(registry);
    await waitFor(() => attempts > 0, 20_000, 'a connection attempt while NATS is down');
    await new Promise((resolve) => down.close(resolve));
    await secured.start();
    await waitFor(async () => (await fetch(`${registry.url}/health`).catch(() => undefined))?.status === 200, 30_000, `registry-api healthy:\n${registry.output()}`);
    await waitFor(() => registry.output().includes('listening on'), 10_000, 'the start-up line with the config');
    await stop(registry);
    const output = registry.output();
    expect(output).toContain(`NATS at nats://${where} not reachable`);
    expect(output).toContain(`NATS_URL\\":\\"nats://***@${where}`);
    expect(output).not.toContain('secretpw');
  });
});

import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '@switchboard/testing';
import { REGISTRY_TOKEN, System } from './support/system.util';

const PACKAGE_DIR = 'dist/libs/sdk';
const README = 'libs/sdk/README.md';

/** The first ```js block after the README's "## Quick start" heading: what a user copies. */
function quickStart(): string {
  const readme = readFileSync(README, 'utf8');
  const section = readme.slice(readme.indexOf('## Quick start'));
  const block = /```js\n([\s\S]*?)```/.exec(section);
  if (!block) throw new Error(`${README} has no js block under "## Quick start"`);
  return block[1];
}

function run(command: string, args: string[], cwd: string, env: Record<string, string> = {}): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { cwd, env: { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d) => (output += String(d)));
    child.stderr.on('data', (d) => (output += String(d)));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

/**
 * @switchboard/client as people outside the monorepo get it: `npm pack` of the built package,
 * installed into an empty project in a temporary folder (its dependencies from the npm registry or
 * cache, nothing from this repository), then the README's quick start, copied as written, run there
 * against the real registry-api, NATS and PostgreSQL: register, heartbeat, discover, call.
 */
describe('@switchboard/client, packed and installed outside the monorepo', () => {
  let system: System;
  let project: string;

  beforeAll(async () => {
    if (!existsSync(join(PACKAGE_DIR, 'package.json'))) throw new Error(`${PACKAGE_DIR} is not built: run npx nx build sdk (npm test builds it)`);
    system = await System.start('sdkpackage');
    project = mkdtempSync(join(tmpdir(), 'sb-sdk-consumer-'));
    execFileSync('npm', ['pack', join(process.cwd(), PACKAGE_DIR), '--pack-destination', project], { cwd: project, stdio: 'pipe' });
    const tarball = readdirSync(project).find((f) => f.endsWith('.tgz'));
    if (!tarball) throw new Error('npm pack made no tarball');
    writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'sdk-consumer', version: '1.0.0', private: true }));
    execFileSync('npm', ['install', `./${tarball}`, '--prefer-offline', '--no-audit', '--no-fund'], { cwd: project, stdio: 'pipe' });
  }, 180_000);

  afterAll(async () => {
    await system?.stop();
    if (project) rmSync(project, { recursive: true, force: true });
  });

  it('installs with its declared dependencies only (no @switchboard/* package but itself, no NestJS)', () => {
    const installed = readdirSync(join(project, 'node_modules'));
    expect(readdirSync(join(project, 'node_modules/@switchboard'))).toEqual(['client']);
    expect(installed).not.toContain('@nestjs');
    expect(installed).toEqual(expect.arrayContaining(['nats', 'class-validator']));
  });

  it("runs the README's quick start as written: a service registers and heartbeats, a caller discovers it and calls it by name", async () => {
    writeFileSync(join(project, 'quickstart.mjs'), quickStart());
    const { code, output } = await run(process.execPath, ['quickstart.mjs'], project, {
      SERVICE_REGISTRY_URL: system.registry.url,
      SERVICE_REGISTRY_TOKEN: REGISTRY_TOKEN,
      NATS_URL: system.env.natsUrl,
      SUBJECT_PREFIX: system.env.subjectPrefix,
      VM_IP: '127.0.0.1',
      PORT: String(await freePort()),
    });
    expect({ code, output }).toMatchObject({ code: 0 });
    expect(output).toContain("{ hello: 'world' }");
    // It was really in the registry (it deregisters when it closes: the registry has the tombstone).
    const snapshot = await system.registryCall('GET', '/api/v2/services/registry/snapshot', undefined, { 'x-admin-token': 'dev-admin-token' });
    expect((snapshot.body.tombstones as [string, number][]).some(([id]) => id.startsWith('greeter-'))).toBe(true);
  });

  it('type-checks a TypeScript caller against the published declarations alone', async () => {
    writeFileSync(
      join(project, 'typed.ts'),
      [
        "import { register, SwitchboardClient, type SwitchboardConnectionOptions } from '@switchboard/client';",
        "const options: SwitchboardConnectionOptions = { registryUrl: 'http://127.0.0.1:3013' };",
        'export async function main(): Promise<void> {',
        "  const service = await register({ ...options, serviceName: 'typed', internalPort: 8000 });",
        '  const client = await SwitchboardClient.connect(options);',
        "  const reply: unknown = await client.request('typed', '/x', { a: 1 }, { timeout: 1000, maxRetries: 1 });",
        '  console.log(reply, service.serviceId);',
        '}',
      ].join('\n'),
    );
    const tsc = join(process.cwd(), 'node_modules/typescript/bin/tsc');
    const { code, output } = await run(
      process.execPath,
      [tsc, '--noEmit', '--strict', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2022', '--typeRoots', join(process.cwd(), 'node_modules/@types'), '--types', 'node', 'typed.ts'],
      project,
    );
    expect({ code, output }).toEqual({ code: 0, output: '' });
  });
});

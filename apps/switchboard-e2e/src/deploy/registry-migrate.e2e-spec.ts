/**
 * The migration one-shot as docker-compose.yml's `registry-migrate` and the k8s Job run it: registry-api's
 * built main.js with `migrate`, in production mode, with the compose service's variables (hosts and
 * secrets replaced by this suite's), must apply the schema and exit 0.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { createTestEnvironment, TestEnvironment } from '@switchboard/testing';
import { REGISTRY_MAIN } from '../support/registry-stream.util';
import { parseYaml, readRepoFile, ROOT } from './deploy-checks.util';

/** Bounded: a migration that hangs is killed and reported, not waited for. */
const MIGRATE_TIMEOUT_MS = 30_000;

function run(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d) => (output += String(d)));
    child.stderr.on('data', (d) => (output += String(d)));
    const timer = setTimeout(() => child.kill('SIGKILL'), MIGRATE_TIMEOUT_MS);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

describe('registry-migrate (compose one-shot, k8s Job)', () => {
  let env: TestEnvironment;
  let identities: string;

  beforeAll(async () => {
    env = await createTestEnvironment('deploy-migrate');
    identities = mkdtempSync(join(tmpdir(), 'sb-deploy-nats-'));
    const generated = await run(['deploy/nats/identities.mjs', '--out', identities], { ...process.env });
    expect(generated.code).toBe(0);
  });

  afterAll(async () => {
    rmSync(identities, { recursive: true, force: true });
    await env?.dispose();
  });

  it('applies the schema and exits 0 with the compose service environment in production mode', async () => {
    const compose = parseYaml(readRepoFile('docker-compose.yml')) as { services: Record<string, { command: string[]; environment: Record<string, string> }> };
    const service = compose.services['registry-migrate'];
    expect(service?.command.slice(1)).toEqual(['dist/apps/registry-api/src/main.js', 'migrate']);
    const token = () => randomBytes(24).toString('hex');
    const migrate = await run([REGISTRY_MAIN, 'migrate'], {
      ...process.env,
      ...service?.environment,
      NODE_ENV: 'production',
      DATABASE_URL: env.databaseUrl,
      REDIS_URL: env.redisUrl,
      NATS_URL: env.natsUrl,
      NATS_NKEY_SEED_FILE: join(identities, 'seeds/registry-api.nk'),
      REGISTRY_TOKEN: token(),
      ADMIN_TOKEN: token(),
      SUBJECT_PREFIX: '',
    });
    expect([migrate.code, migrate.output]).toEqual([0, expect.stringContaining('applied migrations')]);
    const db = new Client({ connectionString: env.databaseUrl });
    await db.connect();
    try {
      const { rows } = await db.query<{ n: string }>('SELECT count(*) AS n FROM registry_migrations');
      expect(Number(rows[0]?.n)).toBeGreaterThan(0);
    } finally {
      await db.end();
    }
  }, MIGRATE_TIMEOUT_MS + 10_000);
});

import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startMockBackend, MockBackend } from '@switchboard/mock-llm-backend';
import { freePort, parseCsv, waitFor } from '@switchboard/testing';
import { REGISTRY_TOKEN, ROUTER_MAIN, System } from './support/system.util';

const CLI_MAIN = 'dist/apps/admin-cli/apps/admin-cli/src/main.js';
const MODEL = 'llama-2-7b';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs a command as an operator would, without blocking this process (the mock backends live in it).
 * One that has not ended after `limitMs` is killed (code null), so a regression fails the test instead
 * of leaving a process behind.
 */
function run(command: string, args: string[], env: Record<string, string>, limitMs = 45_000): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const limit = setTimeout(() => child.kill('SIGKILL'), limitMs);
    child.stdout.on('data', (d) => (stdout += String(d)));
    child.stderr.on('data', (d) => (stderr += String(d)));
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(limit);
      resolve({ code, stdout, stderr });
    });
  });
}

/**
 * The model registration workflow (reference 001) line by line, with the built admin-cli and the
 * scripts as processes against registry-api and llm-router (real PostgreSQL and NATS). The router
 * runs without API keys, as the workflow's CI step calls it.
 */
describe('admin-cli and the registration scripts follow the model registration workflow', () => {
  let system: System;
  let backend: MockBackend;
  let env: Record<string, string>;

  const cli = (...args: string[]) => run(process.execPath, [CLI_MAIN, ...args], env);
  const listJson = async (...filters: string[]) => {
    const result = await cli('registry', 'list', '--format', 'json', ...filters);
    expect(result).toMatchObject({ code: 0, stderr: '' });
    return JSON.parse(result.stdout) as { serviceId: string; modelName: string; status: string; endpoint: string; revision: number }[];
  };
  /** The workflow's CI step: a completion without an API key. */
  const complete = async (model = MODEL) => {
    const response = await fetch(`${system.router.url}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model, prompt: 'test', max_tokens: 1 }),
    });
    return { status: response.status, body: (await response.json()) as any };
  };

  beforeAll(async () => {
    system = await System.start('admin-cli', {}, { ROUTER_API_KEYS: '' });
    backend = await startMockBackend({ name: 'vllm-llama', models: [MODEL] });
    env = { SWITCHBOARD_REGISTRY_URL: system.registry.url, SWITCHBOARD_REGISTRY_TOKEN: REGISTRY_TOKEN, ADMIN_CLI: `${process.execPath} ${CLI_MAIN}`, KUBECTL: '' };
  }, 120_000);
  afterAll(async () => {
    await backend?.close();
    await system?.stop();
  });

  it('registers a model deployment after a dry run that writes nothing, lists it in three formats, and the router routes it', async () => {
    const endpoint = `127.0.0.1:${backend.port}`;
    const flags = ['--model-name', MODEL, '--endpoint', endpoint, '--environment', 'development', '--namespace', 'system'];

    const dryRun = await cli('registry', 'register', ...flags, '--dry-run');
    expect(dryRun.code).toBe(0);
    expect(dryRun.stdout).toContain(`Dry run: model deployment ${MODEL} in development would be created (nothing written)`);
    expect(dryRun.stdout).toContain(endpoint);
    expect(await listJson()).toEqual([]);

    const registered = await cli('registry', 'register', ...flags, '--format', 'json');
    expect(registered.code).toBe(0);
    const registration = JSON.parse(registered.stdout);
    expect(registration).toMatchObject({ dryRun: false, created: true, models: [{ modelName: MODEL, endpoint, status: 'ready', namespace: 'system' }] });
    await system.waitForRevision(registration.models[0].revision);

    const table = await cli('registry', 'list');
    expect(table.code).toBe(0);
    const lines = table.stdout.split('\n');
    expect(lines[0]).toBe('Found 1 model deployment(s)');
    expect(lines[2].split(/\s{2,}/)).toEqual(['ID', 'Model Name', 'Endpoint', 'Status', 'Environment', 'Namespace', 'Last Health', 'Updated']);
    expect(lines[3]).toMatch(new RegExp(`^${registration.models[0].serviceId}\\s+${MODEL}\\s+${endpoint}\\s+ready\\s+development\\s+system\\s+\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d`));

    expect(await listJson('--environment', 'development', '--status', 'ready', '--model-name', MODEL)).toEqual([expect.objectContaining({ modelName: MODEL, endpoint, status: 'ready' })]);
    expect(await listJson('--environment', 'production')).toEqual([]);

    const csv = await cli('registry', 'list', '--format', 'csv');
    expect(csv.code).toBe(0);
    const records = parseCsv(csv.stdout);
    expect(records[0]).toEqual(['ID', 'Model Name', 'Endpoint', 'Status', 'Environment', 'Namespace', 'Last Health', 'Updated']);
    expect(records.slice(1)).toEqual([[registration.models[0].serviceId, MODEL, endpoint, 'ready', 'development', 'system', expect.any(String), registration.models[0].updatedAt]]);

    const routed = await complete();
    expect(routed.status).toBe(200);
    expect(routed.body.choices).toHaveLength(1);
  });

  it('disable → 503 model not ready; enable → routes; deregister → listed as disabled; --purge → gone and 404', async () => {
    const selector = ['--model-name', MODEL, '--environment', 'development', '--format', 'json'];
    const state = async (...args: string[]) => {
      const result = await cli('registry', ...args, ...selector);
      expect(result).toMatchObject({ code: 0, stderr: '' });
      return JSON.parse(result.stdout);
    };

    const disabled = await state('disable');
    expect(disabled.models).toEqual([expect.objectContaining({ status: 'disabled' })]);
    await system.waitForRevision(disabled.models[0].revision);
    expect(await complete()).toMatchObject({ status: 503, body: { error: { message: `model not ready: ${MODEL} (status: disabled)` } } });

    const enabled = await state('enable');
    await system.waitForRevision(enabled.models[0].revision);
    expect((await complete()).status).toBe(200);

    const deregistered = await state('deregister');
    await system.waitForRevision(deregistered.models[0].revision);
    expect(await listJson('--model-name', MODEL)).toEqual([expect.objectContaining({ status: 'disabled' })]);
    expect(await complete()).toMatchObject({ status: 503, body: { error: { message: `model not ready: ${MODEL} (status: disabled)` } } });

    const purged = await state('deregister', '--purge');
    expect(purged.deregistered).toHaveLength(1);
    await system.waitForRevision(purged.deregistered[0].revision);
    expect(await listJson('--model-name', MODEL)).toEqual([]);
    expect(await complete()).toMatchObject({ status: 404, body: { error: { message: `model not found in registry: ${MODEL}` } } });

    const again = await cli('registry', 'enable', ...selector);
    expect(again.code).toBe(1);
    expect(again.stderr).toBe(`admin-cli: model not found in registry: ${MODEL} (environment: development)\n`);
  });

  it('exits 2 with one line naming the variable when the registry refuses the token or cannot be reached', async () => {
    const refused = await run(process.execPath, [CLI_MAIN, 'registry', 'disable', '--model-name', MODEL, '--environment', 'development'], { ...env, SWITCHBOARD_REGISTRY_TOKEN: 'not-the-token' });
    expect(refused.code).toBe(2);
    expect(refused.stderr.trim().split('\n')).toEqual([expect.stringContaining('set SWITCHBOARD_REGISTRY_TOKEN')]);

    const unreachable = await run(process.execPath, [CLI_MAIN, 'registry', 'list'], { ...env, SWITCHBOARD_REGISTRY_URL: `http://127.0.0.1:${await freePort()}` });
    expect(unreachable.code).toBe(2);
    expect(unreachable.stderr).toContain('cannot reach the registry');
  });

  it('register-model.sh verifies a healthy deployment and registers it, with the workflow\'s [INFO] lines', async () => {
    const healthy = await startMockBackend({ name: 'vllm-mistral', models: ['mistral-7b'] });
    try {
      const result = await run('scripts/vllm/register-model.sh', ['mistral-7b', 'development', 'system'], { ...env, MODEL_ENDPOINT: `127.0.0.1:${healthy.port}` });
      expect(result.stderr).toBe('');
      expect(result.code).toBe(0);
      expect(result.stdout.split('\n').filter(Boolean)).toEqual([
        '[INFO] Registering model deployment...',
        '[INFO]   Model: mistral-7b',
        '[INFO]   Environment: development',
        '[INFO]   Namespace: system',
        `[INFO]   Endpoint: 127.0.0.1:${healthy.port}`,
        '[INFO] Verifying deployment...',
        expect.stringMatching(/^\[INFO\] ✓ Deployment is healthy \(.*GET \/health: 200\)$/),
        '[INFO] Registering model in registry...',
        '[INFO] ✓ Model registered successfully',
      ]);
      expect(await listJson('--model-name', 'mistral-7b')).toEqual([expect.objectContaining({ endpoint: `127.0.0.1:${healthy.port}`, status: 'ready' })]);
    } finally {
      await healthy.close();
    }
  });

  it('register-model.sh refuses a deployment that is down: non-zero exit, a clear message, nothing written', async () => {
    const down = `127.0.0.1:${await freePort()}`;
    const result = await run('scripts/vllm/register-model.sh', ['falcon-7b', 'development'], { ...env, MODEL_ENDPOINT: down });
    expect(result.code).toBe(1);
    expect(result.stdout).toContain('[INFO] Verifying deployment...');
    expect(result.stdout).not.toContain('Registering model in registry');
    expect(result.stderr).toContain(`[ERROR] ✗ Deployment is not healthy: ${down} is not healthy (GET /health: ECONNREFUSED; GET /v1/models: ECONNREFUSED)`);
    expect(result.stderr).toContain('--force');
    expect(await listJson('--model-name', 'falcon-7b')).toEqual([]);
  });

  it('register-model.sh asks Kubernetes when a cluster answers: ready replicas register, none refuse', async () => {
    // A stand-in kubectl: the cluster answers, and the deployment has READY of 2 replicas ready.
    const dir = mkdtempSync(join(tmpdir(), 'sb-kubectl-'));
    const kubectl = join(dir, 'kubectl');
    writeFileSync(kubectl, '#!/usr/bin/env bash\nif [[ "$1 $2" == "get namespace" ]]; then exit 0; fi\nif [[ "$1 $2 $3" == "get deployment qwen-7b-development" ]]; then printf "%s/2" "$READY"; exit 0; fi\nexit 1\n');
    chmodSync(kubectl, 0o755);
    try {
      const notReady = await run('scripts/vllm/register-model.sh', ['qwen-7b', 'development'], { ...env, KUBECTL: kubectl, READY: '' });
      expect(notReady.code).toBe(1);
      expect(notReady.stderr).toContain('[ERROR] ✗ Deployment is not healthy: deployment qwen-7b-development in namespace system has 0/2 replicas ready');
      expect(await listJson('--model-name', 'qwen-7b')).toEqual([]);

      const ready = await run('scripts/vllm/register-model.sh', ['qwen-7b', 'development'], { ...env, KUBECTL: kubectl, READY: '2' });
      expect(ready.code).toBe(0);
      expect(ready.stdout).toContain('[INFO]   Endpoint: qwen-7b-development.system.svc.cluster.local:8000\n');
      expect(ready.stdout).toContain('[INFO] ✓ Deployment is healthy (2/2 replicas ready)\n');
      expect(await listJson('--model-name', 'qwen-7b')).toEqual([expect.objectContaining({ endpoint: 'qwen-7b-development.system.svc.cluster.local:8000' })]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('register-service.sh registers an instance from the registry guide\'s variables', async () => {
    const result = await run('scripts/register-service.sh', ['--format', 'json'], {
      SERVICE_REGISTRY_URL: system.registry.url,
      SERVICE_REGISTRY_TOKEN: REGISTRY_TOKEN,
      ADMIN_CLI: env.ADMIN_CLI,
      VM_IP: '127.0.0.1',
      EXTERNAL_DOMAIN: 'llm.example.com',
      SERVICE_ENVIRONMENT: 'production',
      SERVICE_REGION: 'nyc1',
      SERVICE_NAME: 'mech-llms',
      SERVICE_ID: 'mech-llms-prod-1',
      SERVICE_PORT: '3008',
      SERVICE_CAPABILITIES: 'llm,streaming',
    });
    expect(result.code).toBe(0);
    const answer = JSON.parse(result.stdout.slice(result.stdout.indexOf('{')));
    expect(answer).toMatchObject({ created: true, service: { serviceId: 'mech-llms-prod-1', internalUrl: 'http://127.0.0.1:3008', externalUrl: 'https://llm.example.com', region: 'nyc1', capabilities: ['llm', 'streaming'] } });

    const got = await cli('services', 'get', 'mech-llms-prod-1', '--format', 'json');
    expect(JSON.parse(got.stdout)).toMatchObject({ serviceName: 'mech-llms', environment: 'production' });
  });

  it('services get, discover, heartbeat, status, list and delete follow the registry guide; health-checks needs the admin token', async () => {
    const json = async (...args: string[]) => {
      const result = await cli('services', ...args, '--format', 'json');
      expect(result).toMatchObject({ code: 0, stderr: '' });
      return JSON.parse(result.stdout);
    };
    const id = 'guide-svc-1';
    const registered = await json('register', '--service-name', 'guide-svc', '--service-id', id, '--vm-ip', '127.0.0.1', '--internal-port', String(backend.port), '--external-domain', 'guide.example.com', '--version', '1.2.0', '--deployment-id', 'manual-registration', '--environment', 'staging', '--region', 'nyc1');
    expect(registered).toMatchObject({ created: true, service: { serviceId: id } });

    expect(await json('discover', 'guide-svc', '--environment', 'staging')).toMatchObject({ serviceId: id, status: 'healthy' });
    expect(await json('heartbeat', id, '--requests-per-minute', '45', '--average-latency', '250', '--error-rate', '0.01')).toMatchObject({ serviceId: id, lastSeen: expect.any(String) });
    expect(await json('status', id, '--status', 'degraded', '--reason', 'e2e')).toMatchObject({ changed: true, service: { status: 'degraded' } });
    expect(await json('list', '--service-name', 'guide-svc', '--status', 'degraded')).toEqual([expect.objectContaining({ serviceId: id })]);

    const table = await cli('services', 'list', '--environment', 'staging');
    expect(table.stdout.split('\n')[0]).toBe('Found 1 service instance(s)');

    expect(await json('delete', id)).toMatchObject({ serviceId: id, revision: expect.any(Number) });
    const gone = await cli('services', 'get', id);
    expect(gone.code).toBe(1);
    expect(gone.stderr).toBe(`admin-cli: service instance not found in registry: ${id}\n`);

    const noAdmin = await cli('health-checks');
    expect(noAdmin.code).toBe(2);
    expect(noAdmin.stderr).toContain('set SWITCHBOARD_ADMIN_TOKEN');
    // No health-prober runs in this system: the registry says so, and that is the registry failing to serve (2).
    const noProber = await run(process.execPath, [CLI_MAIN, 'health-checks'], { ...env, SWITCHBOARD_ADMIN_TOKEN: 'dev-admin-token' });
    expect(noProber.code).toBe(2);
    expect(noProber.stderr).toContain('no health-prober is running');
  });

  it('watch prints the registry events live, one line each', async () => {
    const watcher = spawn(process.execPath, [CLI_MAIN, 'watch', '--environment', 'staging'], {
      env: { ...process.env, ...env, NATS_URL: system.env.natsUrl, SUBJECT_PREFIX: system.env.subjectPrefix },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    watcher.stdout.on('data', (d) => (stdout += String(d)));
    watcher.stderr.on('data', (d) => (stderr += String(d)));
    try {
      await waitFor(() => stderr.includes('Ctrl-C to stop'), 20_000, 'watch to subscribe');
      expect((await cli('registry', 'register', '--model-name', 'gpt-neo', '--endpoint', '127.0.0.1:9000', '--environment', 'development')).code).toBe(0);
      expect((await cli('registry', 'register', '--model-name', 'gpt-neo', '--endpoint', '127.0.0.1:9000', '--environment', 'staging')).code).toBe(0);
      await waitFor(() => stdout.includes('registered  staging'), 10_000, 'the staging registration on watch');
      const lines = stdout.split('\n').filter(Boolean);
      expect(lines).toEqual([expect.stringMatching(/^\S+Z {2}registered {2}staging {2}gpt-neo\/gpt-neo-staging-[0-9a-f]{8} {2}rev \d+ {2}healthy\/enabled {2}models=gpt-neo {2}http:\/\/127\.0\.0\.1:9000$/)]);
    } finally {
      const exited = new Promise<number | null>((resolve) => watcher.once('exit', (code) => resolve(code)));
      watcher.kill('SIGINT');
      expect(await exited).toBe(0);
    }
  });

  it('the router serves without keys in development with one warning, and refuses to start without keys in production', async () => {
    const warnings = system.router.output.join('').split('\n').filter((l) => l.includes('ROUTER_API_KEYS is not set'));
    expect(warnings).toHaveLength(1);

    const production = await run(process.execPath, [ROUTER_MAIN], {
      NODE_ENV: 'production',
      NATS_URL: system.env.natsUrl,
      NATS_ALLOW_ANONYMOUS: 'true',
      ROUTER_API_KEYS: '',
      PORT: String(await freePort()),
    }, 20_000);
    // 78 (EX_CONFIG): how every app stops on a configuration it refuses.
    expect(production.code).toBe(78);
    expect(production.stdout + production.stderr).toContain('ROUTER_API_KEYS: required in production');
  });

  it('registry-api that cannot reach PostgreSQL says `failed to connect to database` with the cause', async () => {
    const port = await freePort();
    const registry = spawn(process.execPath, ['dist/apps/registry-api/apps/registry-api/src/main.js'], {
      env: { ...process.env, PORT: String(await freePort()), HOST: '127.0.0.1', NATS_URL: system.env.natsUrl, SUBJECT_PREFIX: system.env.subjectPrefix, DATABASE_URL: `postgres://postgres:not-logged-secret@127.0.0.1:${port}/nowhere` },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    registry.stdout.on('data', (d) => (output += String(d)));
    registry.stderr.on('data', (d) => (output += String(d)));
    try {
      await waitFor(() => output.includes('failed to connect to database'), 30_000, 'the database error line');
      expect(output).toContain(`failed to connect to database: connect ECONNREFUSED 127.0.0.1:${port}`);
      expect(output).not.toContain('not-logged-secret');
    } finally {
      registry.kill('SIGKILL');
    }
  });
});

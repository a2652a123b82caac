import { ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { MockBackend, startMockBackend } from '@switchboard/mock-llm-backend';
import { createTestEnvironment, freePort, TestEnvironment, waitFor } from '@switchboard/testing';

export const API_KEY = 'sk-e2e-key-0123456789';
export const REGISTRY_TOKEN = 'dev-registry-token';
const REGISTRY = '/api/v2/services/registry';

export const PROBER_MAIN = 'dist/apps/health-prober/apps/health-prober/src/main.js';
export const ROUTER_MAIN = 'dist/apps/llm-router/apps/llm-router/src/main.js';

export interface RunningApp {
  url: string;
  process: ChildProcess;
  output: string[];
}

export async function startApp(main: string, env: Record<string, string>, healthPath = '/health'): Promise<RunningApp> {
  // A caller may pin the port (a restart on the same port); otherwise any free one.
  const port = env.PORT ? Number(env.PORT) : await freePort();
  const child = spawn(process.execPath, [main], {
    env: { ...process.env, ...env, PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output: string[] = [];
  child.stdout?.on('data', (d) => output.push(String(d)));
  child.stderr?.on('data', (d) => output.push(String(d)));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${main} exited (${child.exitCode}): ${output.join('')}`);
    if ((await fetch(`${url}${healthPath}`).catch(() => undefined))?.status === 200) break;
    if (Date.now() > deadline) throw new Error(`${main} did not answer ${healthPath} within 30 s: ${output.join('')}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return { url, process: child, output };
}

export async function stopApp(app: RunningApp | undefined, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  // Killed by a signal, a process has no exit code but a signal code: it is gone either way.
  if (!app || app.process.exitCode !== null || app.process.signalCode !== null) return;
  await new Promise<void>((resolve) => {
    app.process.once('exit', () => resolve());
    app.process.kill(signal);
    setTimeout(() => app.process.kill('SIGKILL'), 5000).unref();
  });
}

/** llm-router as built, routing development with the e2e API key; `env` adds or overrides variables. */
export function startRouter(natsUrl: string, subjectPrefix: string, env: Record<string, string> = {}): Promise<RunningApp> {
  return startApp(ROUTER_MAIN, { NATS_URL: natsUrl, SUBJECT_PREFIX: subjectPrefix, ROUTER_ENVIRONMENT: 'development', ROUTER_API_KEYS: API_KEY, ...env });
}

/** Registers an instance in development over registry-api's REST API (the e2e suites' defaults); resolves to its revision. */
export async function registerInstance(
  registryUrl: string,
  instance: { serviceId: string; serviceName: string; port: number; models?: string[] } & Record<string, unknown>,
): Promise<number> {
  const { port, ...rest } = instance;
  const response = await fetch(`${registryUrl}${REGISTRY}/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-registry-token': REGISTRY_TOKEN },
    body: JSON.stringify({
      vmIp: '127.0.0.1',
      internalPort: port,
      externalDomain: `${instance.serviceId}.example.com`,
      version: '1.0.0',
      deploymentId: 'e2e',
      environment: 'development',
      region: 'local',
      ...rest,
    }),
  });
  const body = (await response.json()) as { service?: { revision: number } };
  if (response.status !== 201 || !body.service) throw new Error(`registering ${instance.serviceId}: ${response.status} ${JSON.stringify(body)}`);
  return body.service.revision;
}

/**
 * The system as a user runs it: registry-api and llm-router as built processes, real PostgreSQL and
 * NATS (own database and subject prefix), OpenAI-compatible mock backends registered over REST, and
 * the official `openai` client pointed at the router.
 */
export class System {
  readonly backends: MockBackend[] = [];
  readonly probers: RunningApp[] = [];
  readonly policyFile: string;

  private constructor(
    readonly env: TestEnvironment,
    readonly registry: RunningApp,
    readonly router: RunningApp,
    policyFile: string,
    private readonly dir: string,
  ) {
    this.policyFile = policyFile;
  }

  static async start(label: string, policy: object = {}, routerEnv: Record<string, string> = {}): Promise<System> {
    const env = await createTestEnvironment(label);
    const dir = mkdtempSync(join(tmpdir(), 'sb-e2e-policy-'));
    const policyFile = join(dir, 'routing-policy.json');
    writeFileSync(policyFile, JSON.stringify(policy));
    const common = { NATS_URL: env.natsUrl, SUBJECT_PREFIX: env.subjectPrefix };
    const registry = await startApp('dist/apps/registry-api/apps/registry-api/src/main.js', {
      ...common,
      DATABASE_URL: env.databaseUrl,
      DATABASE_CREATE_IF_MISSING: 'false',
      HEARTBEAT_FLUSH_INTERVAL_MS: '50',
    });
    const router = await startRouter(env.natsUrl, env.subjectPrefix, { ROUTER_POLICY_FILE: policyFile, DRIFT_CHECK_INTERVAL_MS: '1000', ...routerEnv });
    return new System(env, registry, router, policyFile, dir);
  }

  client(options: { maxRetries?: number; apiKey?: string } = {}): OpenAI {
    return new OpenAI({ baseURL: `${this.router.url}/v1`, apiKey: options.apiKey ?? API_KEY, maxRetries: options.maxRetries ?? 0, timeout: 30_000 });
  }

  /** Starts a health-prober replica against this system (fast settings unless overridden). */
  async addProber(env: Record<string, string> = {}): Promise<RunningApp> {
    const prober = await startApp(PROBER_MAIN, {
      NATS_URL: this.env.natsUrl,
      SUBJECT_PREFIX: this.env.subjectPrefix,
      REGISTRY_URL: this.registry.url,
      PROBER_ENVIRONMENT: 'development',
      CHECK_INTERVAL_MS: '200',
      // Below the production floor on purpose: the e2e suites need failures found within a second.
      PROBE_MIN_INTERVAL_MS: '100',
      CHECK_TIMEOUT_MS: '200',
      UNHEALTHY_THRESHOLD: '2',
      HEALTHY_THRESHOLD: '2',
      MEMBER_HEARTBEAT_INTERVAL_MS: '200',
      ...env,
    });
    this.probers.push(prober);
    return prober;
  }

  /** Starts a mock backend serving `models` and registers it in development over registry-api's REST API. */
  async addBackend(name: string, models: string[], options: Parameters<typeof startMockBackend>[0] = {}, registration: Record<string, unknown> = {}): Promise<MockBackend> {
    const backend = await startMockBackend({ name, models, ...options });
    this.backends.push(backend);
    const res = await this.registryCall('POST', `${REGISTRY}/register`, {
      serviceName: 'vllm',
      serviceId: name,
      vmIp: '127.0.0.1',
      internalPort: backend.port,
      externalDomain: `${name}.example.com`,
      version: '0.6.0',
      deploymentId: 'e2e',
      environment: 'development',
      region: 'local',
      models,
      ...registration,
    });
    if (res.status !== 201) throw new Error(`registering ${name} failed: ${res.status} ${JSON.stringify(res.body)}`);
    await this.waitForRevision(res.body.service.revision);
    return backend;
  }

  async registryCall(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: any }> {
    const response = await fetch(`${this.registry.url}${path}`, {
      method,
      headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), 'x-registry-token': REGISTRY_TOKEN, ...headers },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: response.status, body: await response.json() };
  }

  async routerHealth(): Promise<{ table: { revision: number; instances: number }; policy: { loads: number; sha256?: string } }> {
    return (await fetch(`${this.router.url}/health`)).json() as never;
  }

  /** Waits until the router's table holds `revision` (what the registry just answered). */
  async waitForRevision(revision: number): Promise<void> {
    await waitFor(async () => (await this.routerHealth()).table.revision >= revision, 10_000, `router table at revision ${revision}`);
  }

  /** Rewrites the policy file; resolves once the router runs that version (unless it must refuse it). */
  async writePolicy(policy: object, expectRefused = false): Promise<void> {
    const text = JSON.stringify(policy);
    writeFileSync(this.policyFile, text);
    if (expectRefused) return;
    const sha256 = createHash('sha256').update(text).digest('hex');
    await waitFor(async () => (await this.routerHealth()).policy.sha256 === sha256, 5000, 'the router to load the new policy');
  }

  /** The registry's view of one instance (404 → undefined). */
  async instance(serviceId: string): Promise<{ status: string; adminState: string } | undefined> {
    const res = await this.registryCall('GET', `${REGISTRY}/services/${serviceId}`);
    return res.status === 200 ? res.body.service : undefined;
  }

  async stop(): Promise<void> {
    await Promise.all(this.backends.map((b) => b.close()));
    await Promise.all(this.probers.map((p) => stopApp(p)));
    await stopApp(this.router);
    await stopApp(this.registry);
    await this.env.dispose();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Posts to the router without the openai client, to see raw status, headers and body. */
export async function rawRouterCall(system: System, path: string, body: unknown, headers: Record<string, string> = {}) {
  const response = await fetch(`${system.router.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${API_KEY}`, ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: response.status, headers: response.headers, body: (await response.json().catch(() => undefined)) as any };
}

import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createTestEnvironment, freePort, TestEnvironment, waitFor } from '@switchboard/testing';
import { OtlpReceiver } from './support/otlp-receiver.util';
import { REGISTRY_TOKEN, stopApp } from './support/system.util';

const REGISTRY_MAIN = 'dist/apps/registry-api/apps/registry-api/src/main.js';
const PRETTY = 'tools/scripts/pretty-logs.mjs';

/**
 * Logs as people and machines get them: registry-api (built, traced, LOG_LEVEL=info) writes JSON with
 * the trace and span ids on each line inside a trace; `tools/scripts/pretty-logs.mjs` (what `npm start`
 * shows) turns each line into one readable line, or passes JSON through for LOG_FORMAT=json.
 */
describe('logs (built registry-api at info level)', () => {
  let env: TestEnvironment;
  let receiver: OtlpReceiver;
  let registry: { url: string; process: ChildProcess; output: string[] };
  const stdout = () => registry.output.join('');

  beforeAll(async () => {
    env = await createTestEnvironment('logs');
    receiver = await OtlpReceiver.start();
    const port = await freePort();
    const child = spawn(process.execPath, [REGISTRY_MAIN], {
      env: {
        ...process.env,
        ...receiver.env(),
        NATS_URL: env.natsUrl,
        SUBJECT_PREFIX: env.subjectPrefix,
        DATABASE_URL: env.databaseUrl,
        DATABASE_CREATE_IF_MISSING: 'false',
        CACHE_ENABLED: 'false',
        HOST: '127.0.0.1',
        PORT: String(port),
        LOG_LEVEL: 'info',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    registry = { url: `http://127.0.0.1:${port}`, process: child, output: [] };
    child.stdout?.on('data', (d) => registry.output.push(String(d)));
    await waitFor(async () => (await fetch(`${registry.url}/health`).catch(() => undefined))?.status === 200, 30_000, 'registry-api to answer /health');
  }, 60_000);

  afterAll(async () => {
    await stopApp(registry);
    await receiver?.close();
    await env?.dispose();
  });

  it('a request\'s log line carries its trace id and a span id of that trace; the pretty filter makes every line one readable line', async () => {
    const traceId = randomBytes(16).toString('hex');
    const response = await fetch(`${registry.url}/api/v2/services/registry/services`, {
      headers: { 'x-registry-token': REGISTRY_TOKEN, traceparent: `00-${traceId}-${randomBytes(8).toString('hex')}-01` },
    });
    expect(response.status).toBe(200);

    const line = await waitFor(
      () => stdout().split('\n').find((l) => l.startsWith('{') && (JSON.parse(l) as { trace_id?: string }).trace_id === traceId),
      10_000,
      'a log line in the request\'s trace',
    );
    const logged = JSON.parse(line) as { msg: string; span_id: string; app: string };
    expect(logged).toMatchObject({ msg: 'request completed', app: 'registry-api' });
    await waitFor(() => receiver.trace(traceId).some((s) => s.spanId === logged.span_id), 10_000, 'the logged span among the exported ones');

    const raw = stdout().split('\n').filter(Boolean);
    expect(raw.filter((l) => l.startsWith('{')).length).toBeGreaterThan(3);
    const pretty = spawnSync(process.execPath, [PRETTY, '--format', 'pretty'], { input: `${raw.join('\n')}\n`, encoding: 'utf8' });
    expect(pretty.status).toBe(0);
    const out = pretty.stdout.split('\n').filter(Boolean);
    expect(out).toHaveLength(raw.length); // one line per event
    expect(out.filter((l) => l.startsWith('{'))).toEqual([]);
    expect(out).toContainEqual(expect.stringMatching(new RegExp(`INFO: request completed GET /api/v2/services/registry/services → 200 in \\d+ ms .*${traceId}`)));
    expect(out).toContainEqual(expect.stringMatching(/INFO: \[registry-api\] listening on http:\/\/127\.0\.0\.1:\d+/));

    const json = spawnSync(process.execPath, [PRETTY], { input: `${raw.join('\n')}\n`, encoding: 'utf8', env: { ...process.env, LOG_FORMAT: 'json' } });
    expect(json.stdout).toBe(`${raw.join('\n')}\n`);
  });
});

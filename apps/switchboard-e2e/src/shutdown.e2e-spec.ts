import { request as httpRequest } from 'node:http';
import { connect, type NatsConnection, StringCodec } from 'nats';
import { Client } from 'pg';
import { SubjectSpace } from '@switchboard/contracts';
import { createTestEnvironment, TestEnvironment, waitFor } from '@switchboard/testing';
import { API_KEY, PROBER_MAIN, ROUTER_MAIN, RunningApp, startApp, stopApp, System } from './support/system.util';

const REGISTRY_MAIN = 'dist/apps/registry-api/apps/registry-api/src/main.js';
const INVALIDATOR_MAIN = 'dist/apps/cache-invalidator/apps/cache-invalidator/src/main.js';

/** What the apps are given; the SIGKILL fallback fires this long after it, so exiting 1 on the grace comes first. */
const GRACE_MS = 6000;
const KILL_FALLBACK_MS = GRACE_MS + 6000;

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  killed: boolean;
}

/** Sends SIGTERM and reports how the process ended; `killed` when the SIGKILL fallback had to end it. */
function terminate(app: RunningApp, fallbackMs = KILL_FALLBACK_MS): Promise<Exit> {
  return new Promise((resolve) => {
    let killed = false;
    const fallback = setTimeout(() => {
      killed = true;
      app.process.kill('SIGKILL');
    }, fallbackMs);
    app.process.once('exit', (code, signal) => {
      clearTimeout(fallback);
      resolve({ code, signal, killed });
    });
    app.process.kill('SIGTERM');
  });
}

/** A streamed chat completion read as raw SSE text, chunk by chunk. */
function openStream(url: string, model: string, maxTokens: number) {
  let text = '';
  let firstChunk!: () => void;
  let failed!: (error: unknown) => void;
  const started = new Promise<void>((resolve, reject) => ((firstChunk = resolve), (failed = reject)));
  const done = (async () => {
    const response = await fetch(`${url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${API_KEY}` },
      body: JSON.stringify({ model, stream: true, max_tokens: maxTokens, messages: [{ role: 'user', content: 'count slowly' }] }),
    });
    expect(response.status).toBe(200);
    const decoder = new TextDecoder();
    for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
      text += decoder.decode(chunk, { stream: true });
      firstChunk();
    }
    return text;
  })();
  done.catch(failed);
  return { started, done };
}

/** The `data:` payloads of an SSE text, in order. */
function sseData(text: string): string[] {
  return text
    .split(/\r?\n\r?\n/)
    .map((event) => event.split(/\r?\n/).filter((line) => line.startsWith('data:')).map((line) => line.slice(5).trim()).join('\n'))
    .filter(Boolean);
}

/** One POST on a fresh connection, with the raw response headers (fetch hides `connection`). */
function rawPost(url: string, path: string, body: unknown): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  return new Promise((resolve, reject) => {
    const payload = JSON.stringify(body);
    const req = httpRequest(`${url}${path}`, {
      method: 'POST',
      agent: false,
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload), authorization: `Bearer ${API_KEY}` },
    });
    req.on('response', (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(payload);
  });
}

describe('graceful shutdown on SIGTERM (built apps as processes)', () => {
  describe('every app', () => {
    let env: TestEnvironment;
    const apps: RunningApp[] = [];

    beforeAll(async () => {
      env = await createTestEnvironment('shutdown-all');
    });
    afterAll(async () => {
      await Promise.all(apps.map((app) => stopApp(app, 'SIGKILL')));
      await env?.dispose();
    });

    it('exits 0 (not by a signal) before the SIGKILL fallback: prober, router and invalidator, then registry-api', async () => {
      const common = { NATS_URL: env.natsUrl, SUBJECT_PREFIX: env.subjectPrefix, SHUTDOWN_GRACE_MS: String(GRACE_MS) };
      const registry = await startApp(REGISTRY_MAIN, { ...common, DATABASE_URL: env.databaseUrl, DATABASE_CREATE_IF_MISSING: 'false', REDIS_URL: env.redisUrl });
      apps.push(registry);
      const others: [string, RunningApp][] = [
        ['health-prober', await startApp(PROBER_MAIN, { ...common, REGISTRY_URL: registry.url, PROBER_ENVIRONMENT: 'development', MEMBER_HEARTBEAT_INTERVAL_MS: '200' })],
        ['llm-router', await startApp(ROUTER_MAIN, { ...common, ROUTER_ENVIRONMENT: 'development', ROUTER_API_KEYS: API_KEY })],
        ['cache-invalidator', await startApp(INVALIDATOR_MAIN, { ...common, REDIS_URL: env.redisUrl })],
      ];
      apps.push(...others.map(([, app]) => app));

      // The registry last: the prober deregisters itself through it while it stops.
      const exits: Record<string, Exit> = {};
      for (const [name, app] of others) exits[name] = await terminate(app);
      exits['registry-api'] = await terminate(registry);

      const clean: Exit = { code: 0, signal: null, killed: false };
      expect(exits).toEqual({ 'health-prober': clean, 'llm-router': clean, 'cache-invalidator': clean, 'registry-api': clean });
    });
  });

  describe('llm-router draining its streams (SHUTDOWN_GRACE_MS=3000)', () => {
    const MODEL = 'slow-model';
    let system: System;

    beforeAll(async () => {
      system = await System.start('shutdown-router', {}, { SHUTDOWN_GRACE_MS: '3000' });
      // 10 tokens a second: 8 tokens take ~0.8 s, 300 would take 30 s.
      await system.addBackend('slow-1', [MODEL], { tokensPerSecond: 10, completionTokens: 300 });
    });
    afterAll(async () => {
      await system?.stop();
    });

    it('finishes a short stream, ends a long one with an SSE error, refuses new requests, and exits 0', async () => {
      const short = openStream(system.router.url, MODEL, 8);
      const long = openStream(system.router.url, MODEL, 300);
      await Promise.all([short.started, long.started]);

      const exit = terminate(system.router);

      // Draining: not ready, and a new request is refused on the spot with OpenAI's error shape.
      const health = await waitFor(async () => {
        const res = await fetch(`${system.router.url}/health`);
        const body = (await res.json()) as { status: string };
        return body.status === 'draining' && { status: res.status, body };
      }, 2000, 'the router to report draining');
      expect(health.status).toBe(503);
      const refused = await rawPost(system.router.url, '/v1/chat/completions', { model: MODEL, messages: [{ role: 'user', content: 'too late' }] });
      expect(refused.status).toBe(503);
      expect(refused.headers['connection']).toBe('close');
      expect(JSON.parse(refused.body)).toEqual({ error: { message: 'router shutting down', type: 'service_unavailable', param: null, code: 'router_shutting_down' } });
      // Refused on arrival: no backend saw it (the two streams are all it got).
      expect(system.backends[0].stats().byPath['/v1/chat/completions']).toBe(2);

      const shortEvents = sseData(await short.done);
      expect(shortEvents.at(-1)).toBe('[DONE]');
      expect(shortEvents.filter((d) => d !== '[DONE]').map((d) => JSON.parse(d).choices[0]?.finish_reason).at(-1)).toBe('length');

      const longEvents = sseData(await long.done);
      expect(longEvents).not.toContain('[DONE]');
      expect(longEvents.length).toBeGreaterThan(2);
      expect(JSON.parse(longEvents.at(-1) as string)).toEqual({ error: { message: 'router shutting down', type: 'service_unavailable', param: null, code: 'router_shutting_down' } });
      // The upstream request was aborted, not left generating for nobody.
      await waitFor(() => system.backends[0].stats().aborted === 1, 5000, 'the backend to see the long stream aborted');

      expect(await exit).toEqual({ code: 0, signal: null, killed: false });
    });
  });

  describe('registry-api final outbox sweep', () => {
    let env: TestEnvironment;
    let registry: RunningApp | undefined;
    let nats: NatsConnection;
    let db: Client;

    beforeAll(async () => {
      env = await createTestEnvironment('shutdown-outbox');
      nats = await connect({ servers: env.natsUrl });
      db = new Client({ connectionString: env.databaseUrl });
      await db.connect();
    });
    afterAll(async () => {
      await stopApp(registry, 'SIGKILL');
      await db?.end();
      await nats?.close();
      await env?.dispose();
    });

    it('publishes a committed, unpublished outbox row on SIGTERM, before NATS closes', async () => {
      // The periodic sweep only takes rows older than 10 minutes: the row below can only leave by the final sweep.
      registry = await startApp(REGISTRY_MAIN, {
        NATS_URL: env.natsUrl,
        SUBJECT_PREFIX: env.subjectPrefix,
        DATABASE_URL: env.databaseUrl,
        DATABASE_CREATE_IF_MISSING: 'false',
        CACHE_ENABLED: 'false',
        OUTBOX_SWEEP_INTERVAL_MS: '60000',
        OUTBOX_SWEEP_MIN_AGE_MS: '600000',
        SHUTDOWN_GRACE_MS: String(GRACE_MS),
      });
      const subjects = new SubjectSpace(env.subjectPrefix);
      const subject = `${subjects.registryEventsAll.slice(0, -1)}shutdown-probe`;
      // A row as a write leaves it when its own publish failed (NATS away at that moment).
      await db.query(`INSERT INTO registry_outbox (revision, subject, payload) VALUES ($1, $2, $3)`, [424242, subject, JSON.stringify({ probe: 'final-sweep' })]);
      const jsm = await nats.jetstreamManager();
      const lastOnSubject = () => jsm.streams.getMessage(subjects.registryStream, { last_by_subj: subject }).then((m) => m, () => undefined);
      expect(await lastOnSubject()).toBeUndefined();

      expect(await terminate(registry)).toEqual({ code: 0, signal: null, killed: false });

      const message = await lastOnSubject();
      expect(message && JSON.parse(StringCodec().decode(message.data))).toEqual({ probe: 'final-sweep' });
      expect(message?.header.get('Nats-Msg-Id')).toBe('424242');
      expect((await db.query('SELECT count(*)::int AS n FROM registry_outbox')).rows[0].n).toBe(0);
    });
  });
});

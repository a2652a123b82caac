import { SubjectSpace } from '@switchboard/contracts';
import { NatsClient } from '@switchboard/messaging';
import { createTestEnvironment, TcpProxy, TestEnvironment, waitFor } from '@switchboard/testing';
import { REGISTRY_TOKEN, RunningApp, startApp, stopApp } from './support/system.util';

const REGISTRY_MAIN = 'dist/apps/registry-api/apps/registry-api/src/main.js';
const REGISTRY = '/api/v2/services/registry';
const UNKNOWN_IDS = 100_000;
const MAX_PENDING = 1000;
const CHUNK = 10_000;
/** Generous: the bounded batcher holds ~2,000 small entries; the flood's garbage is all that may show. */
const HEAP_GROWTH_LIMIT = 64 * 1024 * 1024;

/** A sample of `name` carrying `labels` (and whatever default labels the app adds), 0 when absent. */
function metric(text: string, name: string, labels = ''): number {
  const line = text.split('\n').find((l) => (l.startsWith(`${name}{`) || l.startsWith(`${name} `)) && (!labels || l.includes(labels)));
  return line ? Number(line.split(' ').pop()) : 0;
}

/**
 * Heartbeats for 100,000 ids no registration knows, sent while registry-api cannot reach PostgreSQL
 * (a TCP proxy in front of the shared server, cut): the batcher holds at most HEARTBEAT_MAX_PENDING
 * of them (plus the batch being retried) and sheds the rest, so the heap stays bounded; when the
 * database is back, registry-api recovers on its own and a known instance's heartbeats are written again.
 */
describe('registry-api under a heartbeat flood during a PostgreSQL outage (built process, TCP proxy)', () => {
  let env: TestEnvironment;
  let proxy: TcpProxy;
  let registry: RunningApp;
  let nats: NatsClient;
  let subjects: SubjectSpace;

  const scrape = async () => (await fetch(`${registry.url}/metrics`)).text();
  const call = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${registry.url}${path}`, {
      method,
      headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), 'x-registry-token': REGISTRY_TOKEN },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json().catch(() => undefined)) as any };
  };
  const lastSeen = async (serviceId: string) => Date.parse((await call('GET', `${REGISTRY}/services/${serviceId}`)).body.service.lastSeen as string);

  beforeAll(async () => {
    env = await createTestEnvironment('hbflood');
    const database = new URL(env.databaseUrl);
    proxy = await TcpProxy.start(Number(database.port || 5432), database.hostname);
    database.port = String(proxy.port);
    registry = await startApp(REGISTRY_MAIN, {
      NATS_URL: env.natsUrl,
      SUBJECT_PREFIX: env.subjectPrefix,
      DATABASE_URL: database.toString(),
      DATABASE_CREATE_IF_MISSING: 'false',
      CACHE_ENABLED: 'false',
      HEARTBEAT_FLUSH_INTERVAL_MS: '50',
      HEARTBEAT_MAX_PENDING: String(MAX_PENDING),
    });
    nats = await NatsClient.connect({ servers: env.natsUrl, name: 'e2e-heartbeat-flood' });
    subjects = new SubjectSpace(env.subjectPrefix);
  }, 60_000);

  afterAll(async () => {
    await nats?.close();
    await stopApp(registry);
    await proxy?.close();
    await env?.dispose();
  });

  it('holds at most HEARTBEAT_MAX_PENDING heartbeats, sheds and counts the rest, keeps its heap bounded and persists heartbeats again once PostgreSQL is back', async () => {
    const registered = await call('POST', `${REGISTRY}/register`, {
      serviceName: 'flood-svc',
      serviceId: 'flood-known-1',
      vmIp: '127.0.0.1',
      internalPort: 9,
      externalDomain: 'flood.example.com',
      version: '1.0.0',
      deploymentId: 'e2e',
      environment: 'development',
      region: 'local',
    });
    expect(registered.status).toBe(201);
    const knownSubject = subjects.heartbeat('development', 'flood-svc', 'flood-known-1');

    const before = await scrape();
    const heapBefore = metric(before, 'nodejs_heap_size_used_bytes');
    expect(heapBefore).toBeGreaterThan(0);

    await proxy.cut();
    // The outage as registry-api sees it: a write fails.
    await waitFor(async () => (await call('GET', `${REGISTRY}/services/flood-known-1`)).status >= 500, 30_000, 'registry-api to lose PostgreSQL');

    let heapPeak = 0;
    for (let sent = 0; sent < UNKNOWN_IDS; sent += CHUNK) {
      for (let i = sent; i < sent + CHUNK; i++) nats.publish(subjects.heartbeat('development', 'flood-svc', `flood-unknown-${i}`), { metadata: { inflight: i } });
      await nats.connection.flush();
      // In step with registry-api, so none is lost as a slow consumer and every one is accounted for.
      const target = metric(before, 'registry_heartbeats_received_total', 'transport="nats"') + sent + CHUNK;
      const text = await waitFor(async () => {
        const t = await scrape();
        return metric(t, 'registry_heartbeats_received_total', 'transport="nats"') >= target ? t : undefined;
      }, 60_000, `registry-api to receive ${sent + CHUNK} heartbeats`);
      heapPeak = Math.max(heapPeak, metric(text, 'nodejs_heap_size_used_bytes'));
    }

    const during = await scrape();
    const shed = metric(during, 'registry_heartbeats_dropped_total', 'reason="overflow"') - metric(before, 'registry_heartbeats_dropped_total', 'reason="overflow"');
    // Held: at most MAX_PENDING waiting plus the batch being retried; everything else was shed.
    expect(shed).toBeGreaterThanOrEqual(UNKNOWN_IDS - 2 * MAX_PENDING);
    expect(shed).toBeLessThanOrEqual(UNKNOWN_IDS);
    expect(registry.process.exitCode).toBeNull();
    expect(heapPeak - heapBefore).toBeLessThan(HEAP_GROWTH_LIMIT);

    await proxy.restore();
    const restoredAt = Date.now();
    // Recovers by itself: a known instance's heartbeat is written again, with no restart.
    const persistedBefore = metric(await scrape(), 'registry_heartbeats_persisted_total');
    await waitFor(
      async () => {
        nats.publish(knownSubject, { metadata: { inflight: 1 } });
        const seen = await lastSeen('flood-known-1').catch(() => 0);
        return seen >= restoredAt;
      },
      60_000,
      'the known instance’s heartbeat to be persisted after PostgreSQL returns',
    );
    expect(metric(await scrape(), 'registry_heartbeats_persisted_total')).toBeGreaterThan(persistedBefore);
    // The unknown ids held through the outage were written (and found unknown), not kept.
    await waitFor(
      async () => metric(await scrape(), 'registry_heartbeats_dropped_total', 'reason="unknown_instance"') > 0,
      30_000,
      'the held unknown heartbeats to be flushed and dropped as unknown',
    );
    expect(registry.process.exitCode).toBeNull();
  });
});

import { Client } from 'pg';
import { SubjectSpace } from '@switchboard/contracts';
import { NatsClient } from '@switchboard/messaging';
import { createTestEnvironment, PrivateNatsServer, TestEnvironment, waitFor } from '@switchboard/testing';
import { register, registryStream, startRegistry, waitForRouterRevision } from './support/registry-stream.util';
import { RunningApp, startApp, startRouter, stopApp } from './support/system.util';

const INVALIDATOR_MAIN = 'dist/apps/cache-invalidator/apps/cache-invalidator/src/main.js';

/** Registry events cache-invalidator has applied (its durable JetStream consumer), all kinds together. */
async function invalidations(invalidator: RunningApp): Promise<number> {
  const text = await (await fetch(`${invalidator.url}/metrics`)).text();
  return text
    .split('\n')
    .filter((l) => l.startsWith('cache_invalidations_total{'))
    .reduce((sum, l) => sum + Number(l.split(' ').pop()), 0);
}

async function outboxRevisions(databaseUrl: string): Promise<number[]> {
  const client = new Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const { rows } = await client.query<{ revision: string }>('SELECT revision FROM registry_outbox ORDER BY revision');
    return rows.map((r) => Number(r.revision));
  } finally {
    await client.end();
  }
}

/**
 * registry-api dies (SIGKILL) after a write committed but before its event was published. The
 * honest way to get there: NATS is down when the write commits, so the event can only wait in the
 * outbox; the process is then killed, NATS returns, and a fresh registry-api on the same database
 * must publish it — exactly once on the stream (Nats-Msg-Id = revision) — and the router applies it.
 */
describe('registry-api SIGKILLed between commit and publish (built processes, private NATS)', () => {
  let env: TestEnvironment;
  let nats: PrivateNatsServer;
  let registry: RunningApp | undefined;
  let router: RunningApp;
  let invalidator: RunningApp;
  let client: NatsClient;
  let subjects: SubjectSpace;

  beforeAll(async () => {
    env = await createTestEnvironment('crashrelay');
    nats = await PrivateNatsServer.start();
    subjects = new SubjectSpace(env.subjectPrefix);
    registry = await startRegistry(nats.url, env.subjectPrefix, env.databaseUrl);
    router = await startRouter(nats.url, env.subjectPrefix, { DRIFT_CHECK_INTERVAL_MS: '1000' });
    invalidator = await startApp(INVALIDATOR_MAIN, { NATS_URL: nats.url, SUBJECT_PREFIX: env.subjectPrefix, REDIS_URL: env.redisUrl, REDIS_KEY_PREFIX: env.redisKeyPrefix });
    client = await NatsClient.connect({ servers: nats.url, name: 'e2e-crash-relay', reconnectTimeWaitMs: 100 });
  }, 90_000);

  afterAll(async () => {
    await client?.close();
    await stopApp(router);
    await stopApp(invalidator);
    await stopApp(registry);
    await nats?.dispose();
    await env?.dispose();
  });

  it('publishes the committed event after a restart, once on the stream, and the router and cache-invalidator apply it', async () => {
    const first = await register(registry as RunningApp, 'crash-a');
    await waitForRouterRevision(router, first);
    await waitFor(async () => (await invalidations(invalidator)) === 1, 30_000, 'cache-invalidator to apply the first event');
    await waitFor(async () => (await outboxRevisions(env.databaseUrl)).length === 0, 30_000, 'the first event to leave the outbox');

    await nats.stop();
    // Committed while NATS is down: the write succeeds, its event stays in the outbox.
    const orphan = await register(registry as RunningApp, 'crash-b');
    expect(orphan).toBeGreaterThan(first);
    expect(await outboxRevisions(env.databaseUrl)).toEqual([orphan]);

    await stopApp(registry, 'SIGKILL');
    expect(registry?.process.signalCode).toBe('SIGKILL');
    registry = undefined;
    await nats.start();
    // Nothing has published it yet: the only process that could is dead.
    expect(await outboxRevisions(env.databaseUrl)).toEqual([orphan]);

    registry = await startRegistry(nats.url, env.subjectPrefix, env.databaseUrl);
    await waitFor(async () => (await outboxRevisions(env.databaseUrl)).length === 0, 30_000, 'the restarted registry-api to relay the orphaned event');

    const events = await waitFor(async () => {
      const all = await registryStream(client, subjects).catch(() => undefined);
      return all?.some((e) => e.revision === orphan) ? all : undefined;
    }, 30_000, `revision ${orphan} on the stream`);
    expect(events.filter((e) => e.revision === orphan)).toEqual([expect.objectContaining({ msgId: String(orphan), serviceId: 'crash-b' })]);
    expect(events.map((e) => e.revision)).toEqual([first, orphan]);

    // The router applies it: its table reaches the revision and holds both instances.
    const table = await waitForRouterRevision(router, orphan);
    expect(table).toMatchObject({ revision: orphan, instances: 2 });
    // cache-invalidator's durable consumer, through the outage: one application per stream message.
    await waitFor(async () => (await invalidations(invalidator)) >= 2, 30_000, 'cache-invalidator to apply the relayed event');
    expect(await invalidations(invalidator)).toBe(events.length);
  });
});

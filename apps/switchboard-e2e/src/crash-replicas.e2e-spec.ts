import { Client } from 'pg';
import { SubjectSpace } from '@switchboard/contracts';
import { NatsClient } from '@switchboard/messaging';
import { createTestEnvironment, PrivateNatsServer, TestEnvironment, waitFor } from '@switchboard/testing';
import { register, registryStream, startRegistry, StreamedEvent, waitForRouterRevision } from './support/registry-stream.util';
import { RunningApp, startRouter, stopApp } from './support/system.util';

const PER_PHASE = 20;

async function outboxDepth(databaseUrl: string): Promise<number> {
  const client = new Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    return Number((await client.query<{ n: string }>('SELECT count(*) AS n FROM registry_outbox')).rows[0].n);
  } finally {
    await client.end();
  }
}

/**
 * Two registry-api replicas on one database and one NATS, both relaying their outbox (fast path and
 * sweep, FOR UPDATE SKIP LOCKED) while writes go through both, with NATS stopped in the middle so
 * both outboxes fill. Every committed revision must reach the REGISTRY stream, once
 * (Nats-Msg-Id = revision), and a consumer (the router) must end with the registry's state.
 */
describe('two registry-api replicas relaying at once under writes and a NATS outage (built processes)', () => {
  let env: TestEnvironment;
  let nats: PrivateNatsServer;
  let replicas: RunningApp[] = [];
  let router: RunningApp;
  let client: NatsClient;
  let subjects: SubjectSpace;

  beforeAll(async () => {
    env = await createTestEnvironment('crashreplicas');
    nats = await PrivateNatsServer.start();
    subjects = new SubjectSpace(env.subjectPrefix);
    // Sweeps that claim rows at once and often: each replica's sweep races both fast paths, so the
    // same row is really published twice and JetStream's dedup is what keeps it once.
    const relay = { OUTBOX_SWEEP_MIN_AGE_MS: '0', OUTBOX_SWEEP_INTERVAL_MS: '50' };
    replicas = [await startRegistry(nats.url, env.subjectPrefix, env.databaseUrl, relay), await startRegistry(nats.url, env.subjectPrefix, env.databaseUrl, relay)];
    router = await startRouter(nats.url, env.subjectPrefix, { DRIFT_CHECK_INTERVAL_MS: '1000' });
    client = await NatsClient.connect({ servers: nats.url, name: 'e2e-crash-replicas', reconnectTimeWaitMs: 100 });
  }, 90_000);

  afterAll(async () => {
    await client?.close();
    await stopApp(router);
    await Promise.all(replicas.map((r) => stopApp(r)));
    await nats?.dispose();
    await env?.dispose();
  });

  /** `count` writes, alternating between the replicas, four at a time; the committed revisions. */
  async function writes(ids: string[], version: string): Promise<number[]> {
    const revisions: number[] = [];
    for (let i = 0; i < ids.length; i += 4) {
      revisions.push(...(await Promise.all(ids.slice(i, i + 4).map((id, j) => register(replicas[(i + j) % 2], id, version)))));
    }
    return revisions;
  }

  it('gets every committed revision onto the stream once, and the router ends with the registry’s state', async () => {
    const ids = (phase: number) => Array.from({ length: PER_PHASE }, (_, i) => `replica-${phase}-${i}`);
    const committed: number[] = [];

    committed.push(...(await writes(ids(1), '1.0.0')));
    await nats.stop();
    // Both replicas keep committing; the events wait in the shared outbox.
    committed.push(...(await writes(ids(2), '1.0.0')));
    expect(await outboxDepth(env.databaseUrl)).toBeGreaterThanOrEqual(PER_PHASE);
    await nats.start();
    // Re-registrations of the first phase's instances: new revisions for instances already known.
    committed.push(...(await writes(ids(1), '2.0.0')));

    expect(new Set(committed).size).toBe(3 * PER_PHASE);
    await waitFor(async () => (await outboxDepth(env.databaseUrl)) === 0, 60_000, 'both replicas to empty the outbox');
    const stream = await waitFor(async () => {
      const events = await registryStream(client, subjects).catch(() => undefined);
      return events && committed.every((r) => events.some((e) => e.revision === r)) ? events : undefined;
    }, 60_000, 'every committed revision on the stream');

    // Each revision once: both replicas may have published a row, JetStream kept one copy.
    const byRevision = new Map<number, StreamedEvent[]>();
    for (const e of stream) byRevision.set(e.revision, [...(byRevision.get(e.revision) ?? []), e]);
    expect([...byRevision.entries()].filter(([, copies]) => copies.length !== 1)).toEqual([]);
    expect(stream.every((e) => e.msgId === String(e.revision))).toBe(true);
    expect([...byRevision.keys()].sort((a, b) => a - b)).toEqual([...committed].sort((a, b) => a - b));

    // The consumer's view: the router holds every instance at the highest revision.
    const table = await waitForRouterRevision(router, Math.max(...committed), 60_000);
    expect(table).toMatchObject({ revision: Math.max(...committed), instances: 2 * PER_PHASE });
  });
});

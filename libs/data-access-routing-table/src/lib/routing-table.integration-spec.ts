import { buildRegistryEvent, RegistrySnapshot, ServiceInstanceView, SubjectSpace } from '@switchboard/contracts';
import { encodeJson, NatsClient } from '@switchboard/messaging';
import { createTestEnvironment, TestEnvironment, waitFor } from '@switchboard/testing';
import { RevisionRejectReason } from './revision-guard.util';
import { RoutingTable, RoutingTableLogger } from './routing-table.service';

/**
 * Drives the table over the real NATS with a stand-in for registry-api's side of the contract
 * (events on the subjects, snapshot and revision answered on the command subjects). The e2e suite
 * of the router runs it against the real registry-api.
 */
describe('RoutingTable: list, then watch (real NATS)', () => {
  let env: TestEnvironment;
  /** The stand-in registry's connection (and the publisher of events); each table gets its own, as the router has. */
  let nats: NatsClient;
  let subjects: SubjectSpace;
  let registry: RegistrySnapshot;
  let snapshotDelayMs = 0;
  let duringSnapshot: (() => void) | undefined;
  const tables: { table: RoutingTable; connection: NatsClient }[] = [];

  const instance = (serviceId: string, revision: number, patch: Partial<ServiceInstanceView> = {}): ServiceInstanceView =>
    ({
      serviceId,
      serviceName: 'vllm',
      environment: 'production',
      models: ['llama-2-7b'],
      internalUrl: `http://${serviceId}:8000`,
      status: 'healthy',
      adminState: 'enabled',
      routable: true,
      revision,
      load: {},
      ...patch,
    }) as ServiceInstanceView;

  function publish(kind: 'registered' | 'statusChanged' | 'deregistered', view: ServiceInstanceView, via: NatsClient = nats, space: SubjectSpace = subjects): void {
    const data =
      kind === 'deregistered'
        ? { revision: view.revision, serviceId: view.serviceId, serviceName: view.serviceName, environment: view.environment }
        : kind === 'statusChanged'
          ? { revision: view.revision, instance: view, from: { status: 'healthy', adminState: 'enabled' }, to: { status: view.status, adminState: view.adminState } }
          : { revision: view.revision, instance: view };
    via.publish(space.registryEvent(kind, view.environment, view.serviceName), buildRegistryEvent(kind, view.serviceId, data as never, new Date()));
  }

  function newTable(tableSubjects: SubjectSpace, connection: NatsClient, driftCheckIntervalMs = 0, onRejected?: (reason: RevisionRejectReason) => void, logger?: RoutingTableLogger): RoutingTable {
    const table = new RoutingTable({ nats: connection, subjects: tableSubjects, driftCheckIntervalMs, onRejected, logger });
    tables.push({ table, connection });
    return table;
  }

  async function startTable(driftCheckIntervalMs = 0, onRejected?: (reason: RevisionRejectReason) => void): Promise<RoutingTable> {
    const connection = await NatsClient.connect({ servers: env.natsUrl, name: 'routing-table-spec-table' });
    const table = newTable(subjects, connection, driftCheckIntervalMs, onRejected);
    await table.start();
    return table;
  }

  beforeAll(async () => {
    env = await createTestEnvironment('routingtable');
    subjects = new SubjectSpace(env.subjectPrefix);
    nats = await NatsClient.connect({ servers: env.natsUrl, name: 'routing-table-spec' });
    // registry-api creates it at start; events published on the subjects (ours too) land in it.
    await nats.ensureStream(streamSpec(subjects));
    nats.subscribe(subjects.snapshotCommand, (msg) => {
      const answer: RegistrySnapshot = { ...registry };
      try {
        duringSnapshot?.();
      } catch (error) {
        NatsClient.respondInChunks(msg, [{ error: { message: (error as Error).message } }]);
        return;
      }
      // Two chunks and the sentinel, as registry-api answers.
      const half = Math.ceil(answer.instances.length / 2);
      setTimeout(
        () => NatsClient.respondInChunks(msg, [{ ...answer, instances: answer.instances.slice(0, half) }, { ...answer, instances: answer.instances.slice(half) }]),
        snapshotDelayMs,
      );
    });
    nats.subscribe(subjects.revisionCommand, (msg) => msg.respond(encodeJson({ revision: registry.revision })));
  });
  beforeEach(() => {
    registry = { revision: 0, instances: [] };
    snapshotDelayMs = 0;
    duringSnapshot = undefined;
  });
  afterEach(async () => {
    for (const { table, connection } of tables.splice(0)) {
      table.stop();
      await connection.close();
    }
  });
  afterAll(async () => {
    await nats.close();
    await env.dispose();
  });

  it('loads the snapshot, then applies events that arrived while it was being taken', async () => {
    registry = { revision: 2, instances: [instance('a', 1), instance('b', 2)] };
    snapshotDelayMs = 100;
    // Newer than the snapshot: must be kept. Older than the snapshot's copy: must be ignored.
    duringSnapshot = () => {
      publish('statusChanged', instance('a', 3, { status: 'unhealthy' }));
      publish('registered', instance('b', 1, { internalUrl: 'http://stale:1' }));
    };
    const table = await startTable();

    expect(table.revision).toBe(3);
    expect(table.get('a')).toMatchObject({ status: 'unhealthy', routable: false, revision: 3 });
    expect(table.get('b')).toMatchObject({ internalUrl: 'http://b:8000', revision: 2 });
    expect(table.routable('production', 'llama-2-7b').map((i) => i.serviceId)).toEqual(['b']);
    expect(table.stats.eventsIgnored).toBe(1);
  });

  it('applies newer events only, keeps tombstones, and answers by (environment, model)', async () => {
    const table = await startTable();
    const models = ['mistral-7b', 'llama-2-7b'];
    publish('registered', instance('c', 10, { models }));
    await waitFor(() => table.get('c'));
    publish('statusChanged', instance('c', 12, { models, adminState: 'disabled' }));
    publish('statusChanged', instance('c', 11, { models, status: 'degraded' })); // late: older than 12
    await waitFor(() => table.revision === 12 && table.stats.eventsIgnored === 1);
    expect(table.get('c')).toMatchObject({ adminState: 'disabled', status: 'healthy', routable: false });
    expect(table.instancesFor('production', 'mistral-7b')).toHaveLength(1);
    expect(table.routableModels('production')).toEqual([]);

    publish('deregistered', instance('c', 13));
    publish('registered', instance('c', 12, { adminState: 'enabled' })); // a duplicate from before the delete
    // Published after the duplicate on the same connection, so it arrives after it: once it is in, the duplicate was seen.
    publish('registered', instance('sentinel', 14, { models: ['sentinel-model'] }));
    await waitFor(() => table.get('sentinel'), 5000, 'the sentinel event');
    expect(table.get('c')).toBeUndefined();
    expect(table.stats.eventsIgnored).toBe(2);
    expect(table.instancesFor('production', 'llama-2-7b')).toEqual([]);
    expect(table.instancesFor('staging', 'llama-2-7b')).toEqual([]);
  });

  it('answers by (environment, serviceName) from the snapshot and from events, without changing a list it handed out', async () => {
    registry = { revision: 2, instances: [instance('s1', 1, { serviceName: 'mech-llms', models: [] }), instance('s2', 2, { serviceName: 'mech-llms', environment: 'staging', models: [] })] };
    const table = await startTable();
    expect(table.instancesOfService('production', 'mech-llms').map((i) => i.serviceId)).toEqual(['s1']);
    expect(table.instancesOfService('staging', 'mech-llms').map((i) => i.serviceId)).toEqual(['s2']);
    const before = table.instancesOfService('production', 'mech-llms');

    publish('registered', instance('s3', 3, { serviceName: 'mech-llms', models: [] }));
    await waitFor(() => table.instancesOfService('production', 'mech-llms').length === 2, 5000, 's3 indexed by service');
    // Copy-on-write: a caller iterating the old list sees it unchanged.
    expect(before.map((i) => i.serviceId)).toEqual(['s1']);

    publish('statusChanged', instance('s1', 4, { serviceName: 'mech-llms', models: [], status: 'degraded' }));
    await waitFor(() => table.get('s1')?.status === 'degraded');
    expect(table.instancesOfService('production', 'mech-llms').map((i) => `${i.serviceId}:${i.status}`).sort()).toEqual(['s1:degraded', 's3:healthy']);

    publish('deregistered', instance('s3', 5, { serviceName: 'mech-llms' }));
    publish('deregistered', instance('s1', 6, { serviceName: 'mech-llms' }));
    await waitFor(() => table.revision === 6);
    expect(table.instancesOfService('production', 'mech-llms')).toEqual([]);
    expect(table.instancesOfService('production', 'vllm')).toEqual([]);
  });

  it('takes a fresh snapshot when the drift check finds it missed an event', async () => {
    registry = { revision: 1, instances: [instance('d', 1)] };
    const table = await startTable(100);
    // A change whose event never reached us.
    registry = { revision: 5, instances: [instance('d', 5, { status: 'offline' })] };
    await waitFor(() => table.get('d')?.status === 'offline', 5000, 'the drift check to resync');
    expect(table.stats.resyncs).toBe(2);
    expect(table.revision).toBe(5);
  });

  describe('forged events (anyone who can publish on the open bus)', () => {
    let attacker: NatsClient;
    beforeAll(async () => {
      attacker = await NatsClient.connect({ servers: env.natsUrl, name: 'attacker' });
    });
    afterAll(async () => {
      await attacker.close();
    });

    it('rejects an event with a revision far ahead of the registry: traffic stays on the real instance and later real changes still apply', async () => {
      registry = { revision: 5, instances: [instance('real', 5)] };
      const rejected: RevisionRejectReason[] = [];
      const table = await startTable(0, (reason) => rejected.push(reason));

      publish('registered', instance('real', 1_000_000, { internalUrl: 'http://attacker.example:8000' }), attacker);
      await waitFor(() => rejected.length === 1, 5000, 'the forged event to be rejected');
      expect(rejected).toEqual(['ahead_of_registry']);
      expect(table.stats.eventsRejected).toBe(1);
      expect(table.routable('production', 'llama-2-7b').map((i) => i.internalUrl)).toEqual(['http://real:8000']);

      registry = { revision: 6, instances: [instance('real', 6, { status: 'degraded' })] };
      publish('statusChanged', instance('real', 6, { status: 'degraded' }));
      await waitFor(() => table.get('real')?.status === 'degraded', 5000, 'the real status change');
      expect(table.get('real')).toMatchObject({ internalUrl: 'http://real:8000', revision: 6 });
    });

    it('applies an event far ahead of what it knew once the registry confirms it has reached that revision', async () => {
      registry = { revision: 5, instances: [instance('busy', 5)] };
      const rejected: RevisionRejectReason[] = [];
      const table = await startTable(0, (reason) => rejected.push(reason));
      // Thousands of writes elsewhere since the snapshot, and this instance's real change among them.
      registry = { revision: 4000, instances: [instance('busy', 3000, { status: 'unhealthy' })] };
      publish('statusChanged', instance('busy', 3000, { status: 'unhealthy' }));
      await waitFor(() => table.get('busy')?.status === 'unhealthy', 5000, 'the confirmed event');
      expect(rejected).toEqual([]);
    });

    it('heals a forged event slightly ahead of the registry at the next drift check, so real changes apply again', async () => {
      registry = { revision: 5, instances: [instance('real', 5)] };
      const rejected: RevisionRejectReason[] = [];
      const table = await startTable(100, (reason) => rejected.push(reason));

      // Within the plausible window: applied at once, until the drift check sees the registry never issued it.
      publish('registered', instance('real', 50, { internalUrl: 'http://attacker.example:8000' }), attacker);
      publish('deregistered', instance('other', 60), attacker);
      await waitFor(() => rejected.includes('table_ahead_of_registry'), 5000, 'the drift check to find the table ahead');
      await waitFor(() => table.get('real')?.internalUrl === 'http://real:8000', 5000, 'the fresh snapshot');
      expect(table.revision).toBe(5);

      registry = { revision: 7, instances: [instance('real', 6, { status: 'degraded' }), instance('other', 7)] };
      publish('statusChanged', instance('real', 6, { status: 'degraded' }));
      publish('registered', instance('other', 7));
      await waitFor(() => table.get('real')?.status === 'degraded' && table.get('other'), 5000, 'the real changes after the heal');
      expect(table.routable('production', 'llama-2-7b').map((i) => i.internalUrl).sort()).toEqual(['http://other:8000', 'http://real:8000']);
    });
  });

  describe('nothing missed (the REGISTRY stream as the watch)', () => {
    it('gets an event the network lost, followed by a later one, without waiting for a drift check', async () => {
      registry = { revision: 1, instances: [instance('m1', 1)] };
      const connection = await NatsClient.connect({ servers: env.natsUrl, name: 'routing-table-spec-lossy' });
      let dropped = 0;
      const table = new RoutingTable({
        nats: connection,
        subjects,
        driftCheckIntervalMs: 0,
        feedHeartbeatMs: 200,
        // The first event on the wire never arrives.
        eventTransport: (msg, deliver) => (msg.data.length && dropped++ === 0 ? undefined : deliver(msg)),
      });
      tables.push({ table, connection });
      await table.start();
      publish('statusChanged', instance('m1', 2, { status: 'unhealthy' }));
      publish('registered', instance('m2', 3));
      await waitFor(() => table.get('m1')?.status === 'unhealthy' && table.get('m2'), 10_000, 'both events, the lost one included');
      expect(dropped).toBeGreaterThan(1);
      expect(table.stats.resyncs).toBe(1);
      expect(table.feedRestarts).toBeGreaterThan(1);
    });

    it("keeps a late, older event of an instance the snapshot shows deleted out, and applies a re-registration committed just after it", async () => {
      registry = { revision: 5, instances: [instance('x', 5), instance('y', 4)] };
      const table = await startTable();
      // Meanwhile x was deregistered (8) and re-registered (10, still in flight when the snapshot was read,
      // which shows 11 from another writer); 'gone' was deleted at 9.
      registry = { revision: 11, instances: [instance('y', 11)], tombstones: [['x', 8], ['gone', 9]] } as typeof registry;
      await table.resync();
      expect(table.get('x')).toBeUndefined();
      publish('registered', instance('gone', 7, { internalUrl: 'http://ghost:1' })); // late, from before its deletion
      publish('registered', instance('x', 10, { internalUrl: 'http://x-again:8000' }));
      await waitFor(() => table.get('x'), 5000, 'the re-registration');
      expect(table.get('x')).toMatchObject({ internalUrl: 'http://x-again:8000', revision: 10 });
      // Published before the re-registration on the same connection: already seen.
      expect(table.get('gone')).toBeUndefined();
      expect(table.stats.eventsIgnored).toBe(1);
    });

    it('retries a snapshot that fails instead of abandoning it, and keeps applying events meanwhile', async () => {
      registry = { revision: 1, instances: [instance('r1', 1)] };
      const table = await startTable();
      // The registry cannot answer until the table has applied an event published meanwhile.
      duringSnapshot = () => {
        if (!table.get('r3')) throw new Error('PostgreSQL is down');
      };
      registry = { revision: 4, instances: [instance('r1', 1), instance('r2', 3), instance('r3', 4)] };
      const resynced = table.resync();
      await waitFor(() => table.stats.resyncFailures > 0, 5000, 'a failed snapshot');
      publish('registered', instance('r3', 4));
      await resynced;
      expect(table.stats.resyncFailures).toBeGreaterThan(0);
      expect(table.get('r2')).toMatchObject({ revision: 3 });
      expect(table.get('r3')).toMatchObject({ revision: 4 });
    });

    it('takes a fresh snapshot when the stream no longer holds what it has not read (stream recreated)', async () => {
      const own = new SubjectSpace(`${env.subjectPrefix}lost`);
      await nats.ensureStream(streamSpec(own));
      const responder = nats.subscribe(own.snapshotCommand, (msg) => NatsClient.respondInChunks(msg, [{ revision: registry.revision, instances: registry.instances }]));
      try {
        registry = { revision: 1, instances: [instance('s1', 1)] };
        const connection = await NatsClient.connect({ servers: env.natsUrl, name: 'routing-table-spec-lost' });
        const table = new RoutingTable({ nats: connection, subjects: own, driftCheckIntervalMs: 0, feedHeartbeatMs: 200 });
        tables.push({ table, connection });
        await table.start();
        nats.publish(own.registryEvent('registered', 'production', 'vllm'), buildRegistryEvent('registered', 's2', { revision: 2, instance: instance('s2', 2) } as never, new Date()));
        await waitFor(() => table.get('s2'), 5000, 'the first event');
        // An operator deletes and recreates the stream: its sequence starts again below the table's position.
        await (await nats.jsm()).streams.delete(own.registryStream);
        await nats.ensureStream(streamSpec(own));
        registry = { revision: 3, instances: [instance('s1', 3, { status: 'offline' }), instance('s2', 2)] };
        await waitFor(() => table.get('s1')?.status === 'offline', 10_000, 'a fresh snapshot');
        expect(table.stats.resyncs).toBe(2);
      } finally {
        responder.unsubscribe();
      }
    });
  });

  it('waits for the registry when it starts first, then loads the snapshot', async () => {
    const late = new SubjectSpace(`${env.subjectPrefix}late`);
    // The registry comes up only once the table has asked, found nobody answering, and said so.
    const warnings: string[] = [];
    const logger: RoutingTableLogger = { log: () => undefined, warn: (message: string) => warnings.push(message) };
    const table = newTable(late, await NatsClient.connect({ servers: env.natsUrl, name: 'routing-table-spec-late' }), 0, undefined, logger);
    let loaded = false;
    const started = table.start().then(() => (loaded = true));
    await waitFor(() => warnings.some((w) => w.includes('registry snapshot not available')), 5000, 'the table to find no registry');
    expect(loaded).toBe(false);
    // As registry-api starts: its stream, then its answers.
    await nats.ensureStream(streamSpec(late));
    const responder = nats.subscribe(late.snapshotCommand, (msg) => NatsClient.respondInChunks(msg, [{ revision: 7, instances: [instance('late-1', 7)] }]));
    await started;
    expect(table.get('late-1')).toMatchObject({ revision: 7 });
    responder.unsubscribe();
  });

  describe('snapshots in many chunks', () => {
    /** A registry of its own: answers `chunks()` as separate messages, then the sentinel. */
    async function ownRegistry(label: string, chunks: () => unknown[]) {
      const own = new SubjectSpace(`${env.subjectPrefix}${label}`);
      await nats.ensureStream(streamSpec(own));
      const asked: unknown[] = [];
      const responder = nats.subscribe(own.snapshotCommand, (msg) => {
        asked.push(JSON.parse(Buffer.from(msg.data).toString() || 'null'));
        NatsClient.respondInChunks(msg, chunks());
      });
      return { own, asked, responder };
    }

    it('loads a multi-chunk snapshot with tombstones exactly: every instance once, tombstones at their own revisions', async () => {
      // 1,000 instances and 40 tombstones over 10 chunks; ids 0..39 are deleted, some re-registered after their tombstone.
      const views = Array.from({ length: 1000 }, (_, i) => instance(`m-${i}`, 100 + i, { models: [`model-${i % 7}`], status: i % 5 === 0 ? 'degraded' : 'healthy' }));
      const dead: [string, number][] = Array.from({ length: 40 }, (_, i) => [`gone-${i}`, 50 + i]);
      const revision = 1200;
      const { own, asked, responder } = await ownRegistry('chunks', () =>
        Array.from({ length: 10 }, (_, c) => ({ revision, instances: views.slice(c * 100, c * 100 + 100), tombstones: dead.slice(c * 4, c * 4 + 4) })),
      );
      try {
        const connection = await NatsClient.connect({ servers: env.natsUrl, name: 'routing-table-spec-chunks' });
        const table = newTable(own, connection);
        await table.start();

        expect(asked).toEqual([{ view: 'routing' }]);
        expect(table.size).toBe(1000);
        expect(table.revision).toBe(revision);
        for (const view of views) expect(table.get(view.serviceId)).toMatchObject({ revision: view.revision, status: view.status, models: view.models, healthCheckEndpoint: '/health', healthCheck: {} });
        expect(table.instancesFor('production', 'model-3')).toHaveLength(views.filter((v) => v.models[0] === 'model-3').length);
        // gone-3's tombstone is at revision 53: an older registration stays out, a newer one (after the snapshot) applies.
        publish('registered', instance('gone-3', 52), nats, own);
        publish('registered', instance('gone-4', 60), nats, own);
        await waitFor(() => table.get('gone-4'), 5000, 'the newer re-registration');
        expect(table.get('gone-3')).toBeUndefined();
        expect(table.stats.eventsIgnored).toBe(1);
        expect(table.stats.snapshotChunksRejected).toBe(0);
      } finally {
        responder.unsubscribe();
      }
    });

    it('refuses a malformed chunk, counts it, applies nothing of that snapshot, and loads the next good one', async () => {
      const rejected: { subject: string; reason: string }[] = [];
      let bad: unknown = { revision: 9, instances: [instance('x-2', 9, { status: 'sleepy' as never })] };
      const { own, responder } = await ownRegistry('malformed', () => [{ revision: 9, instances: [instance('x-1', 8)] }, bad, { revision: 9, instances: [instance('x-3', 9)] }]);
      const warnings: string[] = [];
      try {
        const connection = await NatsClient.connect({ servers: env.natsUrl, name: 'routing-table-spec-malformed' });
        const table = new RoutingTable({
          nats: connection,
          subjects: own,
          driftCheckIntervalMs: 0,
          messagesRejected: { inc: (labels) => rejected.push(labels) },
          logger: { log: () => undefined, warn: (message) => warnings.push(message) },
        });
        tables.push({ table, connection });
        let loaded = false;
        const started = table.start().then(() => (loaded = true));
        await waitFor(() => table.stats.snapshotChunksRejected >= 2, 10_000, 'two refused snapshots');
        expect(loaded).toBe(false);
        expect(table.size).toBe(0);
        expect(rejected[0]).toEqual({ subject: own.snapshotCommand, reason: 'invalid' });
        expect(warnings[0]).toContain('malformed snapshot chunk: instances[0].status');
        // Not JSON at all: refused the same way, by its own reason.
        bad = undefined;
        const before = rejected.length;
        responder.unsubscribe();
        const raw = nats.subscribe(own.snapshotCommand, (msg) => {
          msg.respond(Buffer.from('{"revision": 9, "instances": [tru'));
          msg.respond(new Uint8Array(0));
        });
        await waitFor(() => rejected.slice(before).some((r) => r.reason === 'not_json'), 10_000, 'a refused non-JSON chunk');
        raw.unsubscribe();
        const good = nats.subscribe(own.snapshotCommand, (msg) => NatsClient.respondInChunks(msg, [{ revision: 9, instances: [instance('x-1', 8)] }, { revision: 9, instances: [instance('x-2', 9), instance('x-3', 9)] }]));
        try {
          await started;
          expect(table.size).toBe(3);
          expect(table.stats.resyncFailures).toBeGreaterThanOrEqual(3);
        } finally {
          good.unsubscribe();
        }
      } finally {
        responder.unsubscribe();
      }
    });
  });

  it('feeds heartbeat load figures to the instances it holds, and ignores invalid events', async () => {
    registry = { revision: 1, instances: [instance('e', 1)] };
    const table = await startTable();
    nats.publish(subjects.heartbeat('production', 'vllm', 'e'), { metadata: { inflight: 7, averageLatency: 120 } });
    nats.publish(subjects.registryEvent('registered', 'production', 'vllm'), { specversion: '1.0', type: 'nonsense' });
    await waitFor(() => table.get('e')?.load.inflight === 7 && table.stats.invalidEvents === 1);
    expect(table.get('e')?.load).toEqual({ inflight: 7, averageLatency: 120 });
  });
});

function streamSpec(subjects: SubjectSpace) {
  return { name: subjects.registryStream, subjects: [subjects.registryEventsAll], maxAgeMs: 3_600_000, duplicateWindowMs: 120_000 };
}

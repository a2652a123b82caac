import { DataSource } from 'typeorm';
import { createTestEnvironment, TestEnvironment, waitFor } from '@switchboard/testing';
import { migrateWithLock, registryDataSourceOptions } from './data-source.config';
import { RegistryRepository, RegistryTransaction } from './registry.repository';
import { ServiceInstanceEntity } from './service-instance.entity';

/** A transaction held open at a point of the test's choosing. */
function holdOpen<T>(repository: RegistryRepository, before: (tx: RegistryTransaction) => Promise<T>) {
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  let reached!: (value: T) => void;
  const atHold = new Promise<T>((r) => (reached = r));
  const done = repository.transaction(async (tx) => {
    const value = await before(tx);
    reached(value);
    await released;
    return value;
  });
  return { atHold, release, done };
}

function instance(serviceId: string, at: Date): ServiceInstanceEntity {
  return Object.assign(new ServiceInstanceEntity(), {
    serviceId, serviceName: 'svc', environment: 'production', region: 'eu1', vmIp: '10.0.0.1', internalPort: 8080,
    externalDomain: null, version: '1.0.0', deploymentId: 'd1', namespace: null, kind: 'service', capabilities: ['chat'],
    models: ['m-1'], healthCheckEndpoint: '/health', healthCheck: { intervalMs: 5000 }, metadata: { team: 'a', n: [1, 2] },
    requiredEnvironmentVars: [{ name: 'A', type: 'string', required: true }], status: 'healthy', adminState: 'enabled',
    load: { inflight: 1 }, lastSeen: at, registeredAt: at, updatedAt: at, revision: 0,
  });
}

describe('RegistryTransaction: fewer round trips, same locks (real PostgreSQL)', () => {
  let env: TestEnvironment;
  let dataSource: DataSource;
  let repository: RegistryRepository;
  const waitingAdvisoryLocks = async () =>
    Number((await dataSource.query(`SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND NOT granted`))[0].n);

  beforeAll(async () => {
    env = await createTestEnvironment('regtx');
    dataSource = await new DataSource(registryDataSourceOptions(env.databaseUrl, 4)).initialize();
    await migrateWithLock(dataSource);
    repository = new RegistryRepository(dataSource);
  });
  afterAll(async () => {
    await dataSource?.destroy();
    await env?.dispose();
  });

  /** One save of a whole row (revision taken), with its outbox row, as the registry writer does it. */
  async function save(tx: RegistryTransaction, row: ServiceInstanceEntity, isNew: boolean): Promise<number> {
    [row.revision] = await tx.takeRevisions(1);
    await tx.write({ saves: [{ instance: row, isNew }], states: [], deletes: [], outbox: [{ revision: row.revision, subject: 's', payload: {}, headers: {} }] });
    return row.revision;
  }
  const none = { saves: [], states: [], deletes: [], outbox: [] };

  it('a writer that waited for the instance lock reads the row its previous holder committed (lock and read in one round trip)', async () => {
    const at = new Date('2026-01-01T00:00:00.000Z');
    // Writer A creates the instance and holds its lock.
    const a = holdOpen(repository, async (tx) => {
      expect((await tx.lockInstances(['race-1'])).size).toBe(0);
      return save(tx, instance('race-1', at), true);
    });
    const revisionA = await a.atHold;
    // Writer B asks for the same instance (among others) while A holds it: it must wait, and then see A's row.
    const b = repository.transaction((tx) => tx.lockInstances(['race-0', 'race-1', 'race-2']));
    await waitFor(async () => (await waitingAdvisoryLocks()) === 1, 20_000, 'writer B waiting for the instance lock');
    a.release();
    await a.done;
    const seen = await b;
    expect([...seen.keys()]).toEqual(['race-1']);
    expect(seen.get('race-1')).toEqual({ ...instance('race-1', at), revision: revisionA });
  });

  it('locks a batch in the order of the lock keys, not the order given, so overlapping batches cannot deadlock', async () => {
    const [{ first, second }] = await dataSource.query(
      `SELECT CASE WHEN hashtextextended('order-a', 0) < hashtextextended('order-b', 0) THEN 'order-a' ELSE 'order-b' END AS first,
              CASE WHEN hashtextextended('order-a', 0) < hashtextextended('order-b', 0) THEN 'order-b' ELSE 'order-a' END AS second`,
    );
    // A holds the first key; B asks for [second, first]: in key order it waits for `first` while holding nothing.
    const a = holdOpen(repository, (tx) => tx.lockInstances([first]));
    await a.atHold;
    const b = repository.transaction((tx) => tx.lockInstances([second, first]));
    await waitFor(async () => (await waitingAdvisoryLocks()) === 1, 20_000, 'B waiting for the first key');
    // So C can take `second` now (had B locked in the order given, C would wait behind B, and B behind A).
    const c = await repository.transaction(async (tx) => {
      await tx.lockInstances([second]);
      return waitingAdvisoryLocks();
    });
    expect(c).toBe(1);
    a.release();
    await a.done;
    await b;
  });

  it('locks the rows in serviceId order, as heartbeat flushes do, so a batch and a flush cannot deadlock', async () => {
    const at = new Date('2026-01-04T00:00:00.000Z');
    // Inserted z first, so a scan in physical order meets it before a.
    for (const id of ['rows-z', 'rows-a']) await repository.transaction(async (tx) => save(tx, instance(id, at), true));
    const rowLocked = async (id: string) => {
      const runner = dataSource.createQueryRunner();
      try {
        await runner.startTransaction();
        await runner.query('SELECT 1 FROM service_instances WHERE service_id = $1 FOR UPDATE NOWAIT', [id]);
        return false;
      } catch (error) {
        if ((error as { driverError?: { code?: string } }).driverError?.code === '55P03') return true;
        throw error;
      } finally {
        await runner.rollbackTransaction();
        await runner.release();
      }
    };
    for (const [name, lockBoth] of [
      ['a batch', () => repository.transaction((tx) => tx.lockInstances(['rows-z', 'rows-a']))],
      ['a heartbeat flush', () => repository.applyHeartbeats(['rows-z', 'rows-a'].map((serviceId) => ({ serviceId, lastSeen: at, load: { inflight: 2 } })))],
    ] as const) {
      // z is held elsewhere: in serviceId order the writer holds a and waits for z (in any other order it would wait holding nothing).
      const blocker = holdOpen(repository, async (tx) => (await tx.manager.query('SELECT 1 FROM service_instances WHERE service_id = $1 FOR UPDATE', ['rows-z'])).length);
      await blocker.atHold;
      const writer = lockBoth();
      await waitFor(async () => (await dataSource.query(`SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'transactionid' AND NOT granted`))[0].n === 1, 20_000, `${name} waiting for z`);
      expect({ name, aLocked: await rowLocked('rows-a') }).toEqual({ name, aLocked: true });
      blocker.release();
      await blocker.done;
      await writer;
    }
  });

  it('takes the revision lock with the revisions, so listAsOfRevision never caches past an uncommitted one', async () => {
    const at = new Date('2026-01-02T00:00:00.000Z');
    await repository.transaction(async (tx) => save(tx, instance('fence-1', at), true));
    const writes: [string, (tx: RegistryTransaction, row: ServiceInstanceEntity) => Promise<number>][] = [
      ['save', (tx, row) => save(tx, Object.assign(row, { version: '2.0.0' }), false)],
      ['state', async (tx, row) => {
        [row.revision] = await tx.takeRevisions(1);
        await tx.write({ ...none, states: [Object.assign(row, { status: 'degraded' })] });
        return row.revision;
      }],
      ['delete', async (tx, row) => {
        [row.revision] = await tx.takeRevisions(1);
        await tx.write({ ...none, deletes: [{ instance: row, deletedAt: at }] });
        return row.revision;
      }],
    ];
    for (const [name, write] of writes) {
      const writer = holdOpen(repository, async (tx) => write(tx, (await tx.lockInstances(['fence-1'])).get('fence-1') as ServiceInstanceEntity));
      const revision = await writer.atHold;
      expect({ name, inFlight: (await repository.listAsOfRevision({})).revision }).toEqual({ name, inFlight: null });
      writer.release();
      await writer.done;
      expect({ name, committed: (await repository.listAsOfRevision({})).revision }).toEqual({ name, committed: revision });
      expect(await repository.highestRevision()).toBe(revision);
    }
    expect(await repository.findById('fence-1')).toBeNull();
    const snapshot = await repository.snapshot();
    expect(snapshot.tombstones).toEqual([['fence-1', await repository.highestRevision()]]);
  });

  it('writes a whole batch in one statement: rows, states, tombstones and outbox rows, ids in the order given', async () => {
    const at = new Date('2026-01-03T00:00:00.000Z');
    const gone = instance('tomb-1', at);
    await repository.transaction(async (tx) => {
      [gone.revision] = await tx.takeRevisions(1);
      await tx.write({ ...none, deletes: [{ instance: gone, deletedAt: at }] });
    });
    await repository.transaction(async (tx) => save(tx, instance('batch-state', at), true));
    expect((await repository.snapshot()).tombstones.map(([id]) => id)).toContain('tomb-1');

    const back = instance('tomb-1', at);
    const fresh = instance('batch-new', at);
    const state = Object.assign(instance('batch-state', at), { status: 'offline', adminState: 'draining', load: { inflight: 99 } });
    const { revisions, ids } = await repository.transaction(async (tx) => {
      const taken = await tx.takeRevisions(3);
      [back.revision, fresh.revision, state.revision] = taken;
      // Outbox records deliberately not in revision order: the ids must still come back in this order.
      const outbox = [state, back, fresh].map((i) => ({ revision: i.revision, subject: `s.${i.serviceId}`, payload: { id: String(i.revision), data: { a: [1, 'x'] } }, headers: { traceparent: 't' } }));
      return { revisions: taken, ids: await tx.write({ saves: [{ instance: back, isNew: true }, { instance: fresh, isNew: true }], states: [state], deletes: [], outbox }) };
    });
    expect(revisions).toEqual([...revisions].sort((x, y) => x - y));
    expect((await repository.snapshot()).tombstones.map(([tid]) => tid)).not.toContain('tomb-1');
    expect(await repository.findById('tomb-1')).toEqual(back);
    expect(await repository.findById('batch-new')).toEqual(fresh);
    // A state change writes its columns only: the load a heartbeat wrote stays.
    expect(await repository.findById('batch-state')).toEqual({ ...state, load: { inflight: 1 } });
    const rows = await dataSource.query('SELECT id::int AS id, revision::int AS revision, subject, payload, headers FROM registry_outbox WHERE id = ANY($1) ORDER BY id', [ids]);
    expect(rows).toEqual(
      [back, fresh, state].map((i) => ({ id: ids[[state, back, fresh].indexOf(i)], revision: i.revision, subject: `s.${i.serviceId}`, payload: { id: String(i.revision), data: { a: [1, 'x'] } }, headers: { traceparent: 't' } })),
    );
  });
});

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

  it('a writer that waited for the instance lock reads the row its previous holder committed (lock and read in one round trip)', async () => {
    const at = new Date('2026-01-01T00:00:00.000Z');
    // Writer A creates the instance and holds its lock.
    const a = holdOpen(repository, async (tx) => {
      expect(await tx.lockInstance('race-1')).toBeNull();
      return tx.saveInstance(instance('race-1', at), true);
    });
    const revisionA = await a.atHold;
    // Writer B asks for the same instance while A holds it: it must wait, and then see A's row.
    const b = repository.transaction((tx) => tx.lockInstance('race-1'));
    await waitFor(async () => (await waitingAdvisoryLocks()) === 1, 20_000, 'writer B waiting for the instance lock');
    a.release();
    await a.done;
    const seen = await b;
    expect(seen).not.toBeNull();
    expect(seen).toEqual({ ...instance('race-1', at), revision: revisionA });
  });

  it('takes the revision lock with the revision in every write, so listAsOfRevision never caches past an uncommitted one', async () => {
    const at = new Date('2026-01-02T00:00:00.000Z');
    await repository.transaction(async (tx) => {
      await tx.lockInstance('fence-1');
      await tx.saveInstance(instance('fence-1', at), true);
    });
    const writes: [string, (tx: RegistryTransaction, row: ServiceInstanceEntity) => Promise<number>][] = [
      ['saveInstance', (tx, row) => tx.saveInstance(Object.assign(row, { version: '2.0.0' }), false)],
      ['saveState', (tx, row) => tx.saveState(Object.assign(row, { status: 'degraded' }))],
      ['deleteInstance', (tx, row) => tx.deleteInstance(row, at)],
    ];
    for (const [name, write] of writes) {
      const writer = holdOpen(repository, async (tx) => write(tx, (await tx.lockInstance('fence-1')) as ServiceInstanceEntity));
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

  it('re-registering a deregistered id clears its tombstone; the outbox row carries the record as given', async () => {
    const at = new Date('2026-01-03T00:00:00.000Z');
    await repository.transaction(async (tx) => tx.deleteInstance(instance('tomb-1', at), at));
    expect((await repository.snapshot()).tombstones.map(([id]) => id)).toContain('tomb-1');
    const { revision, id } = await repository.transaction(async (tx) => {
      const rev = await tx.saveInstance(instance('tomb-1', at), true);
      return { revision: rev, id: await tx.appendOutbox({ revision: rev, subject: 's.tomb-1', payload: { id: String(rev), data: { a: [1, 'x'] } }, headers: { traceparent: 't' } }) };
    });
    expect((await repository.snapshot()).tombstones.map(([tid]) => tid)).not.toContain('tomb-1');
    expect((await repository.findById('tomb-1'))?.revision).toBe(revision);
    const rows = await dataSource.query('SELECT id::int AS id, revision::int AS revision, subject, payload, headers FROM registry_outbox WHERE id = $1', [id]);
    expect(rows).toEqual([{ id, revision, subject: 's.tomb-1', payload: { id: String(revision), data: { a: [1, 'x'] } }, headers: { traceparent: 't' } }]);
  });
});

import { Client } from 'pg';
import type { RegisterServiceDto } from '@switchboard/contracts';
import { RegistryRepository, RegistryTransaction, RegistryWrites } from '@switchboard/persistence';
import { createTestEnvironment, TcpProxy, TestEnvironment, waitFor } from '@switchboard/testing';
import { InstanceRegistryService } from '../registry/instance-registry.service';
import { RegistryErrorCode, RegistryException } from '../registry/registry.exception';
import { registration, RunningRegistryApi, startRegistryApi } from '../testing/registry-api-harness.util';

const TRACE = `00-${'ab'.repeat(16)}-${'cd'.repeat(8)}-01`;

/** The changes of one batch, as the writer hands them to PostgreSQL. */
function recordWrites(): RegistryWrites[] {
  const seen: RegistryWrites[] = [];
  const original = RegistryTransaction.prototype.write;
  jest.spyOn(RegistryTransaction.prototype, 'write').mockImplementation(function (this: RegistryTransaction, writes: RegistryWrites) {
    seen.push(writes);
    return original.call(this, writes);
  });
  return seen;
}

describe('group commit: concurrent writes share transactions, each keeps its own result (real PostgreSQL and NATS)', () => {
  let api: RunningRegistryApi;
  let registry: InstanceRegistryService;
  const register = (serviceId: string, overrides: Record<string, unknown> = {}) =>
    registry.register(registration({ serviceId, ...overrides }) as unknown as RegisterServiceDto, TRACE);
  const setStatus = (serviceId: string, status: 'healthy' | 'degraded' | 'offline') => registry.updateStatus(serviceId, { status }, TRACE);

  beforeAll(async () => {
    api = await startRegistryApi('groupcommit');
    registry = api.app.get(InstanceRegistryService);
  });
  afterEach(() => jest.restoreAllMocks());
  afterAll(async () => {
    await api?.close();
  });

  it('commits many ids together and one id in arrival order: per-instance revisions ascend in commit order, one outbox row and one event per change', async () => {
    const before = (await api.settledEvents()).length;
    const writes = recordWrites();
    // All submitted in one tick: they reach the group commit together, in this order.
    const many = Array.from({ length: 30 }, (_, i) => register(`gc-${i}`));
    const chain = [setStatus('gc-0', 'degraded'), setStatus('gc-0', 'healthy'), setStatus('gc-0', 'degraded'), setStatus('gc-0', 'offline')];
    const gone = registry.deregister('gc-1', TRACE);
    const back = register('gc-1', { version: '2.0.0' });
    const registered = await Promise.all(many);
    const states = await Promise.all(chain);
    const removal = await gone;
    const again = await back;

    // The 30 registrations went in one transaction; gc-0's and gc-1's later changes each waited for the batch holding the earlier one.
    expect(writes[0].saves.map((s) => s.instance.serviceId)).toEqual(registered.map((r) => r.instance.serviceId));
    expect(writes.length).toBe(5);
    expect(registered.every((r) => r.created && r.changed)).toBe(true);
    expect(states.every((s) => s.changed)).toBe(true); // each saw its predecessor: degraded → healthy → degraded → offline
    const gc0 = [registered[0].instance.revision, ...states.map((s) => s.instance.revision)];
    expect(gc0).toEqual([...gc0].sort((a, b) => a - b));
    expect(new Set(gc0).size).toBe(gc0.length);
    expect(registered[1].instance.revision).toBeLessThan(removal.revision);
    expect(removal.revision).toBeLessThan(again.instance.revision);
    expect(again).toMatchObject({ created: true, changed: true });

    const events = (await api.settledEvents()).slice(before);
    const revisions = [...registered.map((r) => r.instance.revision), ...states.map((s) => s.instance.revision), removal.revision, again.instance.revision];
    // Exactly one event per change, under its revision, and no outbox row left behind.
    expect(events.map((e) => e.event.data.revision).sort((a, b) => a - b)).toEqual([...revisions].sort((a, b) => a - b));
    expect(events.map((e) => e.msgId)).toEqual(events.map((e) => String(e.event.data.revision)));
    expect((await api.writeState()).outbox).toBe(0);
    // Per instance, the stream holds the changes in revision order, each statusChanged starting where the previous one ended.
    const ofGc0 = events.filter((e) => e.event.subject === 'gc-0');
    expect(ofGc0.map((e) => e.event.data.revision)).toEqual(gc0);
    const transitions = ofGc0.flatMap((e) => (e.kind === 'statusChanged' ? [[e.event.data.from.status, e.event.data.to.status]] : []));
    expect(transitions).toEqual([['healthy', 'degraded'], ['degraded', 'healthy'], ['healthy', 'degraded'], ['degraded', 'offline']]);
    expect(events.filter((e) => e.event.subject === 'gc-1').map((e) => e.kind)).toEqual(['registered', 'deregistered', 'registered']);
    const repository = api.app.get(RegistryRepository);
    expect((await repository.findById('gc-0'))?.revision).toBe(gc0.at(-1));
    expect((await repository.findById('gc-1'))?.revision).toBe(again.instance.revision);
  });

  it('fails an unknown instance alone within its batch', async () => {
    const before = (await api.settledEvents()).length;
    const writes = recordWrites();
    const results = await Promise.allSettled([register('alone-a'), setStatus('alone-missing', 'offline'), registry.deregister('alone-gone', TRACE), register('alone-b')]);

    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'rejected', 'fulfilled']);
    for (const r of results.filter((x): x is PromiseRejectedResult => x.status === 'rejected')) {
      expect(r.reason).toBeInstanceOf(RegistryException);
      expect((r.reason as RegistryException).code).toBe(RegistryErrorCode.InstanceNotFound);
    }
    expect(writes).toHaveLength(1);
    expect(writes[0].saves.map((s) => s.instance.serviceId)).toEqual(['alone-a', 'alone-b']);
    const events = (await api.settledEvents()).slice(before);
    expect(events.map((e) => e.event.subject)).toEqual(['alone-a', 'alone-b']);
  });

  it('fails a change the database refuses alone: the batch is retried one change per transaction', async () => {
    // A rule only the database knows, as a constraint added after the API's checks would be.
    const db = new Client({ connectionString: api.env.databaseUrl });
    await db.connect();
    await db.query(`
      CREATE FUNCTION refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF NEW.service_name = 'poison' THEN RAISE EXCEPTION 'poison refused' USING ERRCODE = 'check_violation'; END IF;
        RETURN NEW;
      END $$;
      CREATE TRIGGER refuse_poison BEFORE INSERT OR UPDATE ON service_instances FOR EACH ROW EXECUTE FUNCTION refuse_poison();`);
    await db.end();
    const before = (await api.settledEvents()).length;
    const writes = recordWrites();
    const results = await Promise.allSettled([register('refused-a'), register('refused-p', { serviceName: 'poison' }), register('refused-b')]);

    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect(String((results[1] as PromiseRejectedResult).reason)).toContain('poison refused');
    // First together (refused), then each alone.
    expect(writes.map((w) => w.saves.map((s) => s.instance.serviceId))).toEqual([['refused-a', 'refused-p', 'refused-b'], ['refused-a'], ['refused-p'], ['refused-b']]);
    const events = (await api.settledEvents()).slice(before);
    expect(events.map((e) => e.event.subject)).toEqual(['refused-a', 'refused-b']);
    expect((await api.writeState()).outbox).toBe(0);
  });
});

describe('group commit: the connection to PostgreSQL killed mid-batch (TcpProxy)', () => {
  let env: TestEnvironment;
  let proxy: TcpProxy;
  let api: RunningRegistryApi;
  let db: Client;
  let registry: InstanceRegistryService;
  const ids = (prefix: string) => Array.from({ length: 12 }, (_, i) => `${prefix}-${i}`);
  const registerAll = (serviceIds: string[]) =>
    Promise.allSettled(serviceIds.map((serviceId) => registry.register(registration({ serviceId }) as unknown as RegisterServiceDto, TRACE)));
  /** What the database holds of these ids: rows, and outbox rows whose event names them. */
  const stored = async (serviceIds: string[]) => {
    const rows = await db.query('SELECT service_id, revision::int AS revision FROM service_instances WHERE service_id = ANY($1) ORDER BY revision', [serviceIds]);
    const outbox = await db.query(`SELECT revision::int AS revision FROM registry_outbox WHERE payload->>'subject' = ANY($1) ORDER BY revision`, [serviceIds]);
    return { rows: rows.rows as { service_id: string; revision: number }[], outbox: outbox.rows.map((r: { revision: number }) => r.revision) };
  };

  beforeAll(async () => {
    env = await createTestEnvironment('groupcrash');
    const database = new URL(env.databaseUrl);
    proxy = await TcpProxy.start(Number(database.port || 5432), database.hostname);
    const viaProxy = new URL(env.databaseUrl);
    viaProxy.hostname = '127.0.0.1';
    viaProxy.port = String(proxy.port);
    api = await startRegistryApi('groupcrash', { DATABASE_URL: viaProxy.toString(), OUTBOX_SWEEP_INTERVAL_MS: '100', OUTBOX_SWEEP_MIN_AGE_MS: '0' }, env);
    registry = api.app.get(InstanceRegistryService);
    db = new Client({ connectionString: env.databaseUrl });
    await db.connect();
  });
  afterEach(() => jest.restoreAllMocks());
  afterAll(async () => {
    await db?.end();
    await api?.close();
    await proxy?.close();
    await env?.dispose();
  });

  it('killed after the batch is written but before COMMIT: none of the batch is stored, no outbox row, no event; the retry stores each once', async () => {
    const batch = ids('crash-none');
    const original = RegistryTransaction.prototype.write;
    const written: number[] = [];
    jest.spyOn(RegistryTransaction.prototype, 'write').mockImplementation(async function (this: RegistryTransaction, writes: RegistryWrites) {
      const outboxIds = await original.call(this, writes);
      written.push(writes.saves.length);
      await proxy.cut();
      return outboxIds;
    });
    const results = await registerAll(batch);
    expect(written).toEqual([batch.length]); // one batch, fully written when the connection died
    expect(results.every((r) => r.status === 'rejected')).toBe(true);
    expect(await stored(batch)).toEqual({ rows: [], outbox: [] });

    jest.restoreAllMocks();
    await proxy.restore();
    const retried = await waitFor(async () => {
      const attempt = await registerAll(batch);
      return attempt.every((r) => r.status === 'fulfilled') ? attempt : undefined;
    }, 20_000, 'the registrations to succeed once PostgreSQL is reachable again');
    expect(retried.every((r) => r.status === 'fulfilled' && r.value.created)).toBe(true);
    const events = await waitFor(async () => {
      const mine = (await api.streamEvents()).filter((e) => batch.includes(e.event.subject));
      return mine.length >= batch.length ? mine : undefined;
    }, 20_000, 'the events of the retried batch');
    expect(events.map((e) => e.event.subject).sort()).toEqual([...batch].sort());
  });

  it('killed right after COMMIT: the whole batch is stored with its outbox rows, and every change is published exactly once', async () => {
    const batch = ids('crash-all');
    const original = RegistryRepository.prototype.transaction;
    let cuts = 0;
    jest.spyOn(RegistryRepository.prototype, 'transaction').mockImplementation(async function <T>(this: RegistryRepository, work: (tx: RegistryTransaction) => Promise<T>) {
      const committed = await original.call(this, work);
      if (cuts++ === 0) await proxy.cut();
      return committed as T;
    });
    const results = await registerAll(batch);
    expect(cuts).toBe(1);
    expect(results.every((r) => r.status === 'fulfilled')).toBe(true);
    const revisions = results.map((r) => (r as PromiseFulfilledResult<{ instance: { revision: number } }>).value.instance.revision).sort((a, b) => a - b);
    const atCut = await stored(batch);
    expect(atCut.rows.map((r) => r.revision)).toEqual(revisions);
    // The relay could not delete what it published (or publish: its rows wait for the sweep): each row is still there or already out.
    expect(atCut.outbox.every((r) => revisions.includes(r))).toBe(true);

    jest.restoreAllMocks();
    await proxy.restore();
    await waitFor(async () => (await stored(batch)).outbox.length === 0, 20_000, 'the sweep to clear the outbox');
    const events = (await api.streamEvents()).filter((e) => batch.includes(e.event.subject));
    expect(events.map((e) => e.event.data.revision).sort((a, b) => a - b)).toEqual(revisions);
  });
});

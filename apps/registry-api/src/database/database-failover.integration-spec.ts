import { Client } from 'pg';
import { createTestEnvironment, TestEnvironment, waitFor } from '@switchboard/testing';
import { BASE, registration, RunningRegistryApi, startRegistryApi, writeHeaders } from '../testing/registry-api-harness.util';

const WRITES = 240;
const CONCURRENCY = 16;
/** Every this many answered writes, registry-api's backends are terminated (while others are in flight). */
const KILL_EVERY = 30;
const DATABASE_POOL_SIZE = 4;

/**
 * PostgreSQL connections lost mid-transaction (pg_terminate_backend on registry-api's backends, as a
 * primary failing over does) during a burst of registrations: each write is confirmed with its row and
 * exactly one event, or refused with a 503 and written whole or not at all; the pool reconnects by
 * itself, and retrying the refused writes applies every write exactly once.
 */
describe('registry-api writes while its PostgreSQL connections are killed', () => {
  let env: TestEnvironment;
  let api: RunningRegistryApi;
  let admin: Client;

  beforeAll(async () => {
    env = await createTestEnvironment('dbfailover');
    api = await startRegistryApi('dbfailover', { DATABASE_POOL_SIZE: String(DATABASE_POOL_SIZE) }, env);
    admin = new Client({ connectionString: env.databaseUrl });
    await admin.connect();
  }, 60_000);

  afterAll(async () => {
    await admin?.end();
    await api?.close();
    await env?.dispose();
  });

  /** Terminates every backend of this database but ours: registry-api's pool, busy or idle. */
  async function killConnections(): Promise<number> {
    const { rowCount } = await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()');
    return rowCount ?? 0;
  }

  it('confirms a write with its row and one event, or refuses it with a 503 and nothing half-written; the next write and the retries succeed', async () => {
    const outcomes: { serviceId: string; status: number; error?: string; revision?: number }[] = [];
    const kills: Promise<number>[] = [];
    let next = 0;
    const worker = async () => {
      while (next < WRITES) {
        const serviceId = `failover-${next++}`;
        const res = await api.http('POST', `${BASE}/register`, registration({ serviceId }), writeHeaders);
        outcomes.push({ serviceId, status: res.status, error: res.body?.error, revision: res.body?.service?.revision });
        // Kill while the other workers' transactions are in flight.
        if (outcomes.length % KILL_EVERY === 0) kills.push(killConnections());
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    expect((await Promise.all(kills)).reduce((a, b) => a + b, 0)).toBeGreaterThan(0);

    const confirmed = outcomes.filter((o) => o.status === 201);
    const refused = outcomes.filter((o) => o.status !== 201);
    // Only the clean refusal, never a 500; and the kills did hit transactions (else this proves nothing).
    expect(refused.filter((o) => o.status !== 503 || o.error !== 'DATABASE_UNAVAILABLE')).toEqual([]);
    expect(refused.length).toBeGreaterThan(0);
    expect(confirmed.length).toBeGreaterThan(0);

    // The pool reconnects: a write succeeds without a restart, once the pool has dropped the clients it
    // has not yet found dead (a client retrying on 503, as Retry-After says).
    let attempts = 0;
    const after = await waitFor(async () => {
      attempts++;
      const res = await api.http('POST', `${BASE}/register`, registration({ serviceId: 'failover-after' }), writeHeaders);
      return res.status === 201 ? res : undefined;
    }, 10_000, 'a write after the last kill');
    expect(attempts).toBeLessThanOrEqual(DATABASE_POOL_SIZE + 1);
    confirmed.push({ serviceId: 'failover-after', status: 201, revision: after.body.service.revision });

    // The database: a row for every confirmed write, at its revision; no outbox row left once relayed.
    const rows = await admin.query<{ service_id: string; revision: string }>('SELECT service_id, revision FROM service_instances');
    const stored = new Map(rows.rows.map((r) => [r.service_id, Number(r.revision)]));
    expect(confirmed.filter((o) => stored.get(o.serviceId) !== o.revision)).toEqual([]);
    const events = await api.settledEvents();
    expect(await api.writeState()).toMatchObject({ outbox: 0 });
    const eventsOf = (serviceId: string) => events.filter((e) => e.event.subject === serviceId);
    // The stream: exactly one event per confirmed write, at its revision.
    expect(confirmed.filter((o) => eventsOf(o.serviceId).length !== 1 || eventsOf(o.serviceId)[0].event.data.revision !== o.revision)).toEqual([]);
    // A refused write left nothing, or, when the connection died as its COMMIT was being answered, all
    // of it: the row and exactly one event at that row's revision. Never a row without its event or the reverse.
    const halfWritten = refused.filter((o) => {
      const own = eventsOf(o.serviceId);
      return stored.has(o.serviceId) ? own.length !== 1 || own[0].event.data.revision !== stored.get(o.serviceId) : own.length !== 0;
    });
    expect(halfWritten).toEqual([]);
    const unconfirmedCommits = refused.filter((o) => stored.has(o.serviceId)).length;
    expect(events).toHaveLength(confirmed.length + unconfirmedCommits);

    // What a client does with a 503: retry. Every write is idempotent, so afterwards each one is
    // applied exactly once (a retry of an unconfirmed commit changes nothing and publishes nothing).
    for (const o of refused) {
      const retry = await api.http('POST', `${BASE}/register`, registration({ serviceId: o.serviceId }), writeHeaders);
      expect([o.serviceId, retry.status]).toEqual([o.serviceId, stored.has(o.serviceId) ? 200 : 201]);
    }
    const final = await api.settledEvents();
    expect(final).toHaveLength(WRITES + 1);
    expect(new Set(final.map((e) => e.event.subject)).size).toBe(WRITES + 1);
    console.log(`database failover: ${WRITES} writes, ${confirmed.length - 1} confirmed, ${refused.length} refused with 503 (${unconfirmedCommits} of them committed as the connection died), backends terminated ${kills.length} times`);
  });
});

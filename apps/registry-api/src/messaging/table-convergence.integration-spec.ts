import { Logger } from '@nestjs/common';
import fc from 'fast-check';
import { RegistrySnapshot } from '@switchboard/contracts';
import { Msg, NatsClient } from '@switchboard/messaging';
import { RoutingTable } from '@switchboard/routing-table';
import { seededRandom, waitFor } from '@switchboard/testing';
import { OutboxRelayService } from '../outbox/outbox-relay.service';
import { adminHeaders, BASE, registration, RunningRegistryApi, startRegistryApi, writeHeaders } from '../testing/registry-api-harness.util';

/**
 * Issue 9 §3, as a property: random registrations, status and admin changes, deregistrations and
 * resyncs go through registry-api's REST API (several at once, so publishers interleave), while the
 * network between NATS and a RoutingTable drops, duplicates and reorders its event messages (and the
 * stream's heartbeats). Once the writes stop, the table must equal the registry, with no drift check
 * to help: the stream feed alone must notice every loss. The seed is printed first; replay a failure
 * with TABLE_CONVERGENCE_SEED=<seed>.
 */

const IDS = ['p-0', 'p-1', 'p-2', 'p-3', 'p-4', 'p-5'];
const MODELS = ['m-a', 'm-b', 'm-c'];

type Op =
  | { kind: 'register'; id: string; models: string[] }
  | { kind: 'status'; id: string; status: 'healthy' | 'degraded' | 'unhealthy' | 'offline' }
  | { kind: 'admin'; id: string; adminState: 'enabled' | 'disabled' | 'draining' }
  | { kind: 'deregister'; id: string }
  | { kind: 'resync' };

const id = fc.constantFrom(...IDS);
const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('register' as const), id, models: fc.subarray(MODELS, { minLength: 1 }) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('status' as const), id, status: fc.constantFrom('healthy' as const, 'degraded' as const, 'unhealthy' as const, 'offline' as const) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('admin' as const), id, adminState: fc.constantFrom('enabled' as const, 'disabled' as const, 'draining' as const) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('deregister' as const), id }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'resync' as const }) },
);

/** What the network does to each message: most arrive, some vanish, some twice, some later than the next. */
interface Chaos {
  drop: number;
  duplicate: number;
  delay: number;
}
const chaos: fc.Arbitrary<Chaos> = fc.record({ drop: fc.double({ min: 0, max: 0.3, noNaN: true }), duplicate: fc.double({ min: 0, max: 0.3, noNaN: true }), delay: fc.double({ min: 0, max: 0.3, noNaN: true }) });

function lossyTransport(settings: Chaos, flip: () => number, timers: Set<NodeJS.Timeout>) {
  return (msg: Msg, deliver: (msg: Msg) => void) => {
    if (flip() < settings.drop) return;
    const copies = flip() < settings.duplicate ? 2 : 1;
    for (let i = 0; i < copies; i++) {
      if (flip() < settings.delay) {
        // Overtaken by whatever comes in the next few milliseconds.
        const timer = setTimeout(() => (timers.delete(timer), deliver(msg)), 1 + Math.floor(flip() * 20));
        timers.add(timer);
      } else {
        deliver(msg);
      }
    }
  };
}

type Row = { revision: number; status: string; adminState: string; routable: boolean; models: string };

describe('RoutingTable converges on the registry whatever the network does (property, real registry-api)', () => {
  let api: RunningRegistryApi;
  const seed = Number(process.env['TABLE_CONVERGENCE_SEED'] ?? Date.now() % 2_147_483_647);

  beforeAll(async () => {
    api = await startRegistryApi('convergence');
  });
  afterAll(async () => {
    await api?.close();
  });

  async function registryRows(): Promise<Map<string, Row>> {
    const snapshot = (await api.http('GET', `${BASE}/snapshot`, undefined, adminHeaders)).body as RegistrySnapshot;
    return new Map(snapshot.instances.map((i) => [i.serviceId, { revision: i.revision, status: i.status, adminState: i.adminState, routable: i.routable, models: i.models.join(',') }]));
  }

  function tableRows(table: RoutingTable): Map<string, Row> {
    return new Map([...table.all()].map((i) => [i.serviceId, { revision: i.revision, status: i.status, adminState: i.adminState, routable: i.routable, models: i.models.join(',') }]));
  }

  async function run(ops: Op[], table: RoutingTable): Promise<void> {
    // Four writers at once: their commits and publishes interleave.
    for (let i = 0; i < ops.length; i += 4) {
      await Promise.all(
        ops.slice(i, i + 4).map(async (o) => {
          switch (o.kind) {
            case 'register':
              return api.http('POST', `${BASE}/register`, registration({ serviceName: 'prop', serviceId: o.id, models: o.models }), writeHeaders);
            case 'status':
              return api.http('PUT', `${BASE}/${o.id}/status`, { status: o.status }, writeHeaders);
            case 'admin':
              return api.http('PUT', `${BASE}/${o.id}/status`, { adminState: o.adminState }, writeHeaders);
            case 'deregister':
              return api.http('DELETE', `${BASE}/services/${o.id}`, undefined, writeHeaders);
            case 'resync':
              return table.resync();
          }
        }),
      );
    }
  }

  it('equals the registry after quiescence, for random changes and a lossy, duplicating, reordering network', async () => {
    // First, so a failing or hanging run can still be replayed.
    process.stdout.write(`[table-convergence] seed ${seed} (replay: TABLE_CONVERGENCE_SEED=${seed})\n`);
    let runs = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 5, maxLength: 40 }), chaos, fc.integer(), async (ops, settings, coinSeed) => {
        runs++;
        const timers = new Set<NodeJS.Timeout>();
        const connection = await NatsClient.connect({ servers: api.env.natsUrl, name: `convergence-${runs}` });
        const table = new RoutingTable({
          nats: connection,
          subjects: api.subjects,
          driftCheckIntervalMs: 0,
          feedHeartbeatMs: 100,
          logger: new Logger('convergence-table'),
          eventTransport: lossyTransport(settings, seededRandom(coinSeed), timers),
        });
        try {
          await table.start();
          await run(ops, table);
          await api.app.get(OutboxRelayService).flush();
          const expected = await registryRows();
          await waitFor(() => same(tableRows(table), expected), 15_000, 'the table to equal the registry').catch(() => undefined);
          expect(Object.fromEntries(tableRows(table))).toEqual(Object.fromEntries(expected));
        } finally {
          table.stop();
          for (const timer of timers) clearTimeout(timer);
          await connection.close();
        }
      }),
      { seed, numRuns: Number(process.env['TABLE_CONVERGENCE_RUNS'] ?? 12), endOnFailure: true },
    );
    expect(runs).toBeGreaterThanOrEqual(1);
  });
});

function same(a: Map<string, Row>, b: Map<string, Row>): boolean {
  if (a.size !== b.size) return false;
  for (const [key, row] of a) {
    const other = b.get(key);
    if (!other || JSON.stringify(other) !== JSON.stringify(row)) return false;
  }
  return true;
}

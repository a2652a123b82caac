import { waitFor } from '@switchboard/testing';
import { BASE, registration, RunningRegistryApi, startRegistryApi, writeHeaders } from '../testing/registry-api-harness.util';

const INSTANCES = 1000;
const ROUNDS = 5;

function metric(text: string, name: string, labels = ''): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name}${labels ? `{${labels}` : ''}`));
  return line ? Number(line.split(' ').pop()) : 0;
}

describe('heartbeats over NATS and REST (real PostgreSQL and NATS)', () => {
  let api: RunningRegistryApi;
  const ids = Array.from({ length: INSTANCES }, (_, i) => `hb-${i}`);

  beforeAll(async () => {
    api = await startRegistryApi('heartbeats');
    // Register in parallel lanes of 16 requests.
    for (let lane = 0; lane < INSTANCES; lane += 16) {
      await Promise.all(
        ids.slice(lane, lane + 16).map((serviceId, j) =>
          // ~2 KiB of metadata each: 1,000 of them make a snapshot larger than one NATS message.
          api.http('POST', `${BASE}/register`, registration({ serviceName: `hb-svc-${(lane + j) % 10}`, serviceId, environment: 'staging', metadata: { notes: 'n'.repeat(2000) } }), writeHeaders),
        ),
      );
    }
  });
  afterAll(async () => {
    await api?.close();
  });

  it('persists lastSeen and load for 1,000 instances heartbeating concurrently, in batched writes', async () => {
    const scrape = async () => (await fetch(`${api.url}/metrics`)).text();
    const before = await scrape();
    const started = new Date();

    // NATS heartbeats, as services publish them, interleaved with REST heartbeats for some.
    for (let round = 1; round <= ROUNDS; round++) {
      ids.forEach((serviceId, i) =>
        api.nats.publish(api.subjects.heartbeat('staging', `hb-svc-${i % 10}`, serviceId), { metadata: { requestsPerMinute: round * 10, inflight: round } }),
      );
    }
    await Promise.all(ids.slice(0, 50).map((id) => api.http('POST', `${BASE}/${id}/heartbeat`, { metadata: { requestsPerMinute: ROUNDS * 10, averageLatency: 42 } }, writeHeaders)));
    await api.nats.connection.flush();

    const services = await waitFor(
      async () => {
        const list = (await api.http('GET', `${BASE}/services?environment=staging&limit=1000`)).body.services as { serviceId: string; lastSeen: string; load: Record<string, number> }[];
        const fresh = list.filter((s) => s.load['requestsPerMinute'] === ROUNDS * 10 && s.load['inflight'] === ROUNDS && Date.parse(s.lastSeen) >= started.getTime() - 5);
        const viaRest = list.filter((s) => s.load['averageLatency'] === 42);
        return fresh.length === INSTANCES && viaRest.length === 50 ? list : undefined;
      },
      30_000,
      'every instance to show its last heartbeat',
    );
    expect(services.filter((s) => s.load['averageLatency'] === 42).map((s) => s.serviceId).sort()).toEqual(ids.slice(0, 50).sort());

    const after = await scrape();
    const received = metric(after, 'registry_heartbeats_received_total', 'transport="nats"') - metric(before, 'registry_heartbeats_received_total', 'transport="nats"');
    const flushes = metric(after, 'registry_heartbeat_flush_seconds_count') - metric(before, 'registry_heartbeat_flush_seconds_count');
    const persisted = metric(after, 'registry_heartbeats_persisted_total') - metric(before, 'registry_heartbeats_persisted_total');
    const unknown = metric(after, 'registry_heartbeats_dropped_total', 'reason="unknown_instance"') - metric(before, 'registry_heartbeats_dropped_total', 'reason="unknown_instance"');
    expect(received).toBeGreaterThanOrEqual(INSTANCES * ROUNDS);
    expect(persisted).toBeGreaterThanOrEqual(INSTANCES);
    expect(unknown).toBe(0);
    // Coalesced: a handful of statements, not one per heartbeat.
    expect(flushes).toBeGreaterThan(0);
    expect(flushes).toBeLessThan(received / 50);
  });

  it('answers a snapshot larger than one NATS message in chunks over registry.cmd.snapshot', async () => {
    const chunks = await api.nats.requestChunks<{ revision: number; instances: { serviceId: string }[] }>(api.subjects.snapshotCommand, {});
    expect(chunks.length).toBeGreaterThan(2);
    const ids = chunks.flatMap((c) => c.instances.map((i) => i.serviceId));
    expect(ids.filter((id) => id.startsWith('hb-'))).toHaveLength(INSTANCES);
    expect(new Set(chunks.map((c) => c.revision)).size).toBe(1);
    // Read in pages of 1,000: none lost or repeated at a page boundary, the same set as the one-query REST snapshot.
    expect(new Set(ids).size).toBe(ids.length);
    const rest = await api.http('GET', '/api/v2/services/registry/snapshot', undefined, { 'x-admin-token': 'dev-admin-token' });
    expect([...ids].sort()).toEqual((rest.body.instances as { serviceId: string }[]).map((i) => i.serviceId).sort());
  });

  it('counts and drops heartbeats for unknown instances and malformed payloads', async () => {
    const scrape = async () => (await fetch(`${api.url}/metrics`)).text();
    const before = await scrape();
    for (let i = 0; i < 7; i++) api.nats.publish(api.subjects.heartbeat('staging', 'ghost', `ghost-${i}`), {});
    api.nats.publish(api.subjects.heartbeat('staging', 'hb-svc-0', 'hb-0'), { metadata: { errorRate: 'high' } });
    api.nats.connection.publish(api.subjects.heartbeat('staging', 'hb-svc-0', 'hb-0'), new TextEncoder().encode('not json'));
    await api.nats.connection.flush();

    await waitFor(async () => {
      const text = await scrape();
      const unknown = metric(text, 'registry_heartbeats_dropped_total', 'reason="unknown_instance"') - metric(before, 'registry_heartbeats_dropped_total', 'reason="unknown_instance"');
      const invalid = metric(text, 'registry_heartbeats_dropped_total', 'reason="invalid"') - metric(before, 'registry_heartbeats_dropped_total', 'reason="invalid"');
      return unknown === 7 && invalid === 2;
    }, 10_000, 'the dropped heartbeats to be counted');
    expect((await api.http('GET', `${BASE}/services/ghost-0`)).status).toBe(404);
  });
});

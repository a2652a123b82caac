import { createTestEnvironment, NatsCluster, TestEnvironment, waitFor } from '@switchboard/testing';
import { BASE, registration, RunningRegistryApi, startRegistryApi, writeHeaders } from '../testing/registry-api-harness.util';

/**
 * EVENT_STREAM_REPLICAS on a 3-node JetStream cluster: registry-api creates REGISTRY with one
 * replica; restarted with 3 it scales the same stream in place (same creation time, same messages),
 * and the stream then outlives its leader's node.
 */
describe('REGISTRY stream replicas on a 3-node JetStream cluster', () => {
  let cluster: NatsCluster;
  let env: TestEnvironment;
  let api: RunningRegistryApi | undefined;

  beforeAll(async () => {
    cluster = await NatsCluster.start();
    env = await createTestEnvironment('streamreplicas');
  }, 60_000);

  afterAll(async () => {
    await api?.close();
    await env?.dispose();
    await cluster?.dispose();
  });

  async function registerSome(running: RunningRegistryApi, from: number, count: number): Promise<void> {
    for (let i = from; i < from + count; i++) {
      const res = await running.http('POST', `${BASE}/register`, registration({ serviceId: `replicated-${i}` }), writeHeaders);
      expect(res.status).toBe(201);
    }
  }

  it('creates the stream with 1 replica, scales it to 3 in place on restart, keeping its messages, and survives its leader node', async () => {
    api = await startRegistryApi('streamreplicas', { NATS_URL: cluster.url, EVENT_STREAM_REPLICAS: '1' }, env);
    const stream = api.subjects.registryStream;
    await registerSome(api, 0, 5);
    const before = await api.settledEvents();
    expect(before.map((e) => e.event.data.revision)).toHaveLength(5);
    const jsm = await api.nats.jsm();
    const created = await jsm.streams.info(stream);
    expect(created.config.num_replicas).toBe(1);
    expect(created.cluster?.replicas ?? []).toEqual([]);
    await api.close();

    api = await startRegistryApi('streamreplicas', { NATS_URL: cluster.url, EVENT_STREAM_REPLICAS: '3' }, env);
    const scaled = await (await api.nats.jsm()).streams.info(stream);
    expect(scaled.config.num_replicas).toBe(3);
    // The same stream, not a new one: same creation time, same messages at the same sequences.
    expect(scaled.created).toBe(created.created);
    // Every peer caught up, as the leader sees them (the stream may answer nothing while it scales).
    const view = await waitFor(async () => {
      const v = await cluster.stream(stream);
      return v && v.replicas.length === 2 && v.replicas.every((r) => r.current) ? v : undefined;
    }, 20_000, 'both new replicas current');
    expect(view.messages).toBe(5);
    expect((await api.streamEvents()).map((e) => e.event.data.revision)).toEqual(before.map((e) => e.event.data.revision));

    // With three copies, the leader's node can die: a new leader keeps the history and takes writes.
    const leader = view.leader ?? '';
    await cluster.killNode(leader);
    await registerSome(api, 5, 3);
    const running = api;
    const after = await waitFor(async () => {
      const events = await running.settledEvents().catch(() => undefined);
      return events && events.length === 8 ? events : undefined;
    }, 30_000, 'the 8 events on the stream after the leader died');
    expect(after.slice(0, 5).map((e) => e.event.data.revision)).toEqual(before.map((e) => e.event.data.revision));
    const newLeader = (await cluster.stream(stream))?.leader;
    expect(newLeader).toBeDefined();
    expect(newLeader).not.toBe(leader);
  });
});

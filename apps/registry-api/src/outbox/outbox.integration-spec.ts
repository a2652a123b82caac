import { PrivateNatsServer, waitFor } from '@switchboard/testing';
import { BASE, registration, RunningRegistryApi, startRegistryApi, writeHeaders } from '../testing/registry-api-harness.util';

describe('transactional outbox across a NATS outage (private nats-server)', () => {
  let nats: PrivateNatsServer;
  let api: RunningRegistryApi;

  beforeAll(async () => {
    nats = await PrivateNatsServer.start();
    api = await startRegistryApi('outbox', { NATS_URL: nats.url, OUTBOX_SWEEP_INTERVAL_MS: '200' });
  });
  afterAll(async () => {
    await api?.close();
    await nats?.dispose();
  });

  async function outboxDepthMetric(): Promise<number> {
    const text = await (await fetch(`${api.url}/metrics`)).text();
    const line = text.split('\n').find((l) => /^registry_outbox_depth[ {]/.test(l));
    if (!line) throw new Error('registry_outbox_depth is not exposed');
    return Number(line.slice(line.lastIndexOf(' ') + 1));
  }

  it('keeps accepting writes while NATS is down and publishes every event exactly once when it returns', async () => {
    const first = await api.http('POST', `${BASE}/register`, registration({ serviceId: 'out-0' }), writeHeaders);
    expect(first.status).toBe(201);
    await waitFor(async () => (await api.settledEvents()).length === 1);

    await nats.stop();
    await waitFor(async () => (await api.http('GET', '/health')).status === 503, 10_000, '/health to report NATS down');

    const revisions: number[] = [first.body.service.revision];
    for (let i = 1; i <= 5; i++) {
      const res = await api.http('POST', `${BASE}/register`, registration({ serviceId: `out-${i}` }), writeHeaders);
      expect(res.status).toBe(201);
      revisions.push(res.body.service.revision);
    }
    const status = await api.http('PUT', `${BASE}/out-1/status`, { status: 'unhealthy' }, writeHeaders);
    revisions.push(status.body.service.revision);
    const gone = await api.http('DELETE', `${BASE}/services/out-2`, undefined, writeHeaders);
    revisions.push(gone.body.revision);
    expect((await api.http('GET', '/health')).body.details.outbox.pending).toBeGreaterThan(0);
    // The seven changes of the outage wait in the outbox, and the gauge a dashboard reads says so.
    expect(await outboxDepthMetric()).toBe(7);

    await nats.start();
    const events = await waitFor(
      async () => {
        const all = await api.streamEvents();
        return all.length >= revisions.length ? all : undefined;
      },
      20_000,
      'the events written during the outage',
    );
    // A moment more, to see that nothing arrives twice.
    await new Promise((r) => setTimeout(r, 500));
    const final = await api.streamEvents();
    expect(final.map((e) => e.event.data.revision)).toEqual(revisions);
    expect(final.map((e) => e.kind)).toEqual(['registered', 'registered', 'registered', 'registered', 'registered', 'registered', 'statusChanged', 'deregistered']);
    expect(events.length).toBe(final.length);
    await waitFor(async () => (await api.http('GET', '/health')).status === 200, 10_000, '/health to recover');
    await waitFor(async () => (await outboxDepthMetric()) === 0, 10_000, 'registry_outbox_depth back to 0');
  });
});

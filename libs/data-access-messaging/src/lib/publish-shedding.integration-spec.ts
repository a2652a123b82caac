import { metricsRegistry } from '@switchboard/observability';
import { PrivateNatsServer, waitFor } from '@switchboard/testing';
import { NatsClient, NatsNotConnectedError } from './nats.client';

const BOUND = 200;

async function shedMetric(connection: string): Promise<number> {
  const text = await metricsRegistry.metrics();
  const line = text.split('\n').find((l) => l.startsWith(`nats_publishes_shed_total{connection="${connection}"}`));
  return line ? Number(line.split(' ').pop()) : 0;
}

describe('NatsClient.publish while NATS is down (a private nats-server, stopped and started)', () => {
  let server: PrivateNatsServer;
  let publisher: NatsClient;
  let listener: NatsClient;

  beforeAll(async () => {
    server = await PrivateNatsServer.start();
    publisher = await NatsClient.connect({ servers: server.url, name: 'shedding-publisher', maxBufferedPublishes: BOUND, reconnectTimeWaitMs: 100 });
    listener = await NatsClient.connect({ servers: server.url, name: 'shedding-listener', reconnectTimeWaitMs: 100 });
  });

  afterAll(async () => {
    await publisher?.close();
    await listener?.close();
    await server?.dispose();
  });

  it('hands nats.js at most maxBufferedPublishes during an outage, sheds and counts the rest, and publishes again after the reconnect', async () => {
    await server.stop();
    await waitFor(() => !publisher.isConnected, 10_000, 'the publisher to see the outage');
    const outBefore = publisher.connection.stats().outMsgs;
    const accepted = Array.from({ length: 10_000 }, (_, i) => publisher.publish('beats.x', { i }));

    // What nats.js was given (and buffers) is the bound; the rest never reached it.
    expect(accepted.filter(Boolean)).toHaveLength(BOUND);
    expect(publisher.connection.stats().outMsgs - outBefore).toBe(BOUND);
    expect(publisher.publishesShed).toBe(10_000 - BOUND);
    expect(await shedMetric('shedding-publisher')).toBe(10_000 - BOUND);

    // JetStream publishes fail at once instead of queueing behind the outage.
    await expect(publisher.publishToStream('beats.stream', {}, { msgID: '1' })).rejects.toBeInstanceOf(NatsNotConnectedError);

    await server.start();
    await waitFor(() => publisher.isConnected && listener.isConnected, 20_000, 'both clients to reconnect');
    const received: number[] = [];
    listener.subscribe('beats.after', (msg) => received.push((JSON.parse(new TextDecoder().decode(msg.data)) as { i: number }).i));
    await listener.connection.flush();
    // A fresh budget after the reconnect: more than the bound goes through.
    for (let i = 0; i < BOUND * 2; i++) expect(publisher.publish('beats.after', { i })).toBe(true);
    await publisher.connection.flush();
    await waitFor(() => received.length === BOUND * 2, 10_000, 'every publish after the reconnect to arrive');
    expect(publisher.publishesShed).toBe(10_000 - BOUND);
  });
});

import { context, propagation, ROOT_CONTEXT, SpanKind, trace } from '@opentelemetry/api';
import { InMemorySpanExporter, ReadableSpan, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import type { Msg } from 'nats';
import { PrivateNatsServer, waitFor } from '@switchboard/testing';
import { processStreamMessage } from './message-tracing.util';
import { NatsClient } from './nats.client';
import { StreamFeed } from './stream-feed';
import { childTraceparent } from './trace-context.util';

const STREAM = 'TRACED';
const STORED_TRACEPARENT = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

function headersOf(msg: Msg): Record<string, string> {
  const out: Record<string, string> = {};
  for (const key of msg.headers?.keys() ?? []) out[key] = msg.headers?.get(key) ?? '';
  return out;
}

describe('NATS trace context (a private nats-server with JetStream)', () => {
  let server: PrivateNatsServer;
  let a: NatsClient;
  let b: NatsClient;

  beforeAll(async () => {
    server = await PrivateNatsServer.start();
    a = await NatsClient.connect({ servers: server.url, name: 'trace-a' });
    b = await NatsClient.connect({ servers: server.url, name: 'trace-b' });
    await a.ensureStream({ name: STREAM, subjects: ['traced.events.>'], maxAgeMs: 60_000, duplicateWindowMs: 60_000 });
  });

  afterAll(async () => {
    await a?.close();
    await b?.close();
    await server?.dispose();
  });

  // Runs before any SDK is registered: the path every test, bench and `npm start` takes.
  describe('without an OpenTelemetry SDK', () => {
    it('adds no header to a publish or a request, and passes an outbox row\'s traceparent through unchanged', async () => {
      const seen: Msg[] = [];
      b.subscribe('plain.>', (msg) => {
        seen.push(msg);
        if (msg.reply) msg.respond(new Uint8Array([0x7b, 0x7d]));
      });
      await b.connection.flush();
      a.publish('plain.beat', { n: 1 });
      await a.request('plain.cmd', {});
      const feedSeen: Msg[] = [];
      const feed = new StreamFeed({ nats: b, stream: STREAM, onMessage: (msg) => feedSeen.push(msg), onLost: () => undefined });
      await feed.start((await feed.lastSequence()) + 1);
      await a.publishToStream('traced.events.plain', { n: 2 }, { msgID: 'plain-1', headers: { traceparent: STORED_TRACEPARENT } });
      await waitFor(() => seen.length === 2 && feedSeen.length === 1, 5000, 'the three messages');
      feed.stop();
      expect(seen.map((m) => m.headers)).toEqual([undefined, undefined]);
      expect(headersOf(feedSeen[0])).toMatchObject({ traceparent: STORED_TRACEPARENT });
      expect(trace.getActiveSpan()).toBeUndefined();
    });
  });

  describe('with an SDK registered (in-memory exporter)', () => {
    const exporter = new InMemorySpanExporter();
    let provider: NodeTracerProvider;
    const tracer = () => trace.getTracer('test');
    const spans = (name: string) => exporter.getFinishedSpans().filter((s) => s.name === name);
    const parentOf = (span: ReadableSpan) => span.parentSpanContext?.spanId;

    beforeAll(() => {
      provider = new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
      provider.register();
    });

    afterAll(async () => {
      await provider.shutdown();
      trace.disable();
      context.disable();
      propagation.disable();
    });

    beforeEach(() => exporter.reset());

    it('core publish inside a trace: a producer span, its context in the headers, and the handler runs in a consumer span under it', async () => {
      let inHandler: string | undefined;
      let headers: Record<string, string> = {};
      b.subscribe('core.>', (msg) => {
        inHandler = trace.getActiveSpan()?.spanContext().spanId;
        headers = headersOf(msg);
      });
      await b.connection.flush();
      const root = tracer().startSpan('http request');
      await context.with(trace.setSpan(ROOT_CONTEXT, root), async () => {
        a.publish('core.beat.x', { n: 1 });
      });
      root.end();
      await waitFor(() => spans('process core.>').length === 1, 5000, 'the consumer span');
      const [producer] = spans('publish core.beat.x');
      const [consumer] = spans('process core.>');
      expect(producer.kind).toBe(SpanKind.PRODUCER);
      expect(parentOf(producer)).toBe(root.spanContext().spanId);
      expect(producer.attributes).toMatchObject({ 'messaging.system': 'nats', 'messaging.destination.name': 'core.beat.x', 'messaging.operation.type': 'send' });
      expect(headers['traceparent']).toBe(`00-${root.spanContext().traceId}-${producer.spanContext().spanId}-01`);
      expect(consumer.kind).toBe(SpanKind.CONSUMER);
      expect(consumer.spanContext().traceId).toBe(root.spanContext().traceId);
      expect(parentOf(consumer)).toBe(producer.spanContext().spanId);
      expect(consumer.attributes).toMatchObject({ 'messaging.operation.type': 'process', 'messaging.destination.name': 'core.beat.x', 'messaging.destination.template': 'core.>' });
      expect(inHandler).toBe(consumer.spanContext().spanId);
    });

    it('core publish outside any trace (a timer\'s heartbeat): no span and no header', async () => {
      const seen: Msg[] = [];
      b.subscribe('beat.>', (msg) => seen.push(msg));
      await b.connection.flush();
      a.publish('beat.y', { n: 1 });
      await waitFor(() => seen.length === 1, 5000, 'the beat');
      expect(seen[0].headers).toBeUndefined();
      expect(exporter.getFinishedSpans()).toEqual([]);
    });

    it('request/reply: a client span, and the responder runs in a server span under it, in the same trace; a thrown handler marks it an error', async () => {
      let inResponder: string | undefined;
      b.subscribe('cmd.>', (msg) => {
        inResponder = trace.getActiveSpan()?.spanContext().spanId;
        if (msg.subject === 'cmd.fail') throw new Error('handler broke');
        msg.respond(new TextEncoder().encode('{"ok":true}'));
      });
      await b.connection.flush();
      const answer = await a.request<{ ok: boolean }>('cmd.do', {});
      expect(answer).toEqual({ ok: true });
      await expect(a.request('cmd.fail', {}, 300)).rejects.toThrow();
      await waitFor(() => spans('process cmd.>').length === 2 && spans('request cmd.fail').length === 1, 5000, 'the spans');
      const [client] = spans('request cmd.do');
      const server = spans('process cmd.>').find((s) => s.attributes['messaging.destination.name'] === 'cmd.do');
      expect(client.kind).toBe(SpanKind.CLIENT);
      expect(server?.kind).toBe(SpanKind.SERVER);
      expect(server?.spanContext().traceId).toBe(client.spanContext().traceId);
      expect(server && parentOf(server)).toBe(client.spanContext().spanId);
      const failed = spans('process cmd.>').find((s) => s.attributes['messaging.destination.name'] === 'cmd.fail');
      expect(failed?.status.code).toBe(2); // ERROR
      expect(inResponder).toBe(failed?.spanContext().spanId);
    });

    it('JetStream publish continues the stored trace (the outbox row), and a StreamFeed consumer and a pull consumer run under the producer span', async () => {
      const inFeed: string[] = [];
      const feed = new StreamFeed({
        nats: b,
        stream: STREAM,
        label: 'traced.events.>',
        onMessage: () => inFeed.push(trace.getActiveSpan()?.spanContext().spanId ?? 'none'),
        onLost: () => undefined,
      });
      await feed.start((await feed.lastSequence()) + 1);
      const ack = await a.publishToStream('traced.events.changed', { n: 1 }, { msgID: 'traced-1', headers: { traceparent: STORED_TRACEPARENT, 'Content-Type': 'application/json' } });
      await waitFor(() => inFeed.length === 1, 5000, 'the feed to deliver');
      feed.stop();

      const [producer] = spans('publish traced.events.changed');
      expect(producer.kind).toBe(SpanKind.PRODUCER);
      expect(producer.spanContext().traceId).toBe('4bf92f3577b34da6a3ce929d0e0e4736');
      expect(parentOf(producer)).toBe('00f067aa0ba902b7');
      expect(producer.attributes).toMatchObject({ 'messaging.message.id': 'traced-1', 'messaging.nats.stream_sequence': ack.seq });
      const [consumer] = spans('process traced.events.>');
      expect(consumer.kind).toBe(SpanKind.CONSUMER);
      expect(parentOf(consumer)).toBe(producer.spanContext().spanId);
      expect(inFeed).toEqual([consumer.spanContext().spanId]);

      // The cache-invalidator's way: its own pull loop, one consumer span per message.
      const stored = await (await a.jsm()).streams.getMessage(STREAM, { seq: ack.seq });
      let inPull: string | undefined;
      processStreamMessage(STREAM, { subject: stored.subject, headers: stored.header, data: stored.data }, () => {
        inPull = trace.getActiveSpan()?.spanContext().spanId;
      });
      const [pulled] = spans(`process ${STREAM}`);
      expect(parentOf(pulled)).toBe(producer.spanContext().spanId);
      expect(inPull).toBe(pulled.spanContext().spanId);
    });

    it('childTraceparent (what an outbox row stores) is the active span\'s context inside a trace', () => {
      const span = tracer().startSpan('PUT /status');
      const stored = context.with(trace.setSpan(ROOT_CONTEXT, span), () => childTraceparent('00-11111111111111111111111111111111-2222222222222222-01'));
      span.end();
      expect(stored).toBe(`00-${span.spanContext().traceId}-${span.spanContext().spanId}-01`);
    });
  });
});

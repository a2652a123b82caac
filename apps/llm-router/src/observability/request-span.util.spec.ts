import { context, ROOT_CONTEXT, trace } from '@opentelemetry/api';
import { AlwaysOffSampler, InMemorySpanExporter, ReadableSpan, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { attachRequestSpan, MAX_READ_BYTES, RequestSpan, requestSpanOf } from './request-span.util';

const exporter = new InMemorySpanExporter();
const provider = new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
provider.register();

afterAll(async () => {
  await provider.shutdown();
  trace.disable();
  context.disable();
});

/** Runs `work` inside an HTTP server span, as the router's request handler runs, and returns that span once ended. */
function inServerSpan(work: () => void, tracer = trace.getTracer('test')): ReadableSpan {
  exporter.reset();
  const span = tracer.startSpan('POST');
  context.with(trace.setSpan(ROOT_CONTEXT, span), work);
  span.end();
  return exporter.getFinishedSpans()[0];
}

const json = (value: unknown) => Buffer.from(JSON.stringify(value));

describe('RequestSpan (GenAI attributes on the router\'s server span)', () => {
  it('a plain chat answer: operation, requested and answering model, usage tokens, instance, attempts and time to first byte', () => {
    const span = inServerSpan(() => {
      const request = RequestSpan.start('chat', 'llama-2-7b', false);
      request?.attempt('vllm-1', 'llama-2-7b');
      request?.firstByte(12.3456);
      const body = json({ id: 'chatcmpl-1', model: 'meta-llama/Llama-2-7b-hf', usage: { prompt_tokens: 11, completion_tokens: 7, total_tokens: 18 } });
      request?.chunk(body.subarray(0, 20));
      request?.chunk(body.subarray(20));
      request?.end(200);
    });
    expect(span.name).toBe('POST /v1/chat/completions');
    expect(span.attributes).toMatchObject({
      'http.route': '/v1/chat/completions',
      'gen_ai.operation.name': 'chat',
      'gen_ai.request.model': 'llama-2-7b',
      'gen_ai.response.model': 'meta-llama/Llama-2-7b-hf',
      'gen_ai.response.id': 'chatcmpl-1',
      'gen_ai.usage.input_tokens': 11,
      'gen_ai.usage.output_tokens': 7,
      'switchboard.instance': 'vllm-1',
      'switchboard.attempts': 1,
      'switchboard.failover': false,
      'switchboard.time_to_first_byte_ms': 12.346,
    });
  });

  it('a retry on another instance, or a fallback model, is a failover; the last instance is the one that answered', () => {
    const span = inServerSpan(() => {
      const request = RequestSpan.start('completions', 'alias', false);
      request?.attempt('a', 'alias');
      request?.attempt('b', 'fallback-model');
    });
    expect(span.attributes).toMatchObject({ 'gen_ai.operation.name': 'text_completion', 'switchboard.instance': 'b', 'switchboard.model': 'fallback-model', 'switchboard.attempts': 2, 'switchboard.failover': true });
  });

  it('a stream: the model and usage of its last events, from a bounded tail', () => {
    const events = [
      ...Array.from({ length: 2000 }, (_, i) => `data: ${JSON.stringify({ model: 'm-served', choices: [{ delta: { content: `token ${i}` } }] })}\n\n`),
      `data: ${JSON.stringify({ model: 'm-served', choices: [], usage: { prompt_tokens: 5, completion_tokens: 2000 } })}\n\n`,
      'data: [DONE]\n\n',
    ];
    const span = inServerSpan(() => {
      const request = RequestSpan.start('chat', 'm', true);
      for (const event of events) request?.chunk(Buffer.from(event));
      request?.end(200);
    });
    expect(span.attributes).toMatchObject({ 'switchboard.stream': true, 'gen_ai.response.model': 'm-served', 'gen_ai.usage.input_tokens': 5, 'gen_ai.usage.output_tokens': 2000 });
  });

  it('takes nothing from an error answer, a body that is not JSON, or one past the read limit', () => {
    for (const [status, body] of [
      [500, json({ model: 'x', usage: { prompt_tokens: 1, completion_tokens: 1 } })],
      [200, Buffer.from('not json')],
      [200, Buffer.concat([json({ model: 'x', usage: { prompt_tokens: 1, completion_tokens: 1 } }), Buffer.alloc(MAX_READ_BYTES)])],
    ] as [number, Buffer][]) {
      const span = inServerSpan(() => {
        const request = RequestSpan.start('chat', 'm', false);
        request?.chunk(body);
        request?.end(status);
      });
      expect(span.attributes['gen_ai.response.model']).toBeUndefined();
      expect(span.attributes['gen_ai.usage.input_tokens']).toBeUndefined();
    }
  });

  it('is not created outside a recording span (tracing off, or the request not sampled), and is found again by its request', () => {
    expect(RequestSpan.start('chat', 'm', false)).toBeUndefined();
    const unsampled = new NodeTracerProvider({ sampler: new AlwaysOffSampler() }).getTracer('off');
    let created: RequestSpan | undefined;
    inServerSpan(() => (created = RequestSpan.start('chat', 'm', false)), unsampled);
    expect(created).toBeUndefined();

    const request = {};
    inServerSpan(() => attachRequestSpan(request, RequestSpan.start('chat', 'm', false)));
    expect(requestSpanOf(request)).toBeInstanceOf(RequestSpan);
    expect(requestSpanOf({})).toBeUndefined();
  });
});

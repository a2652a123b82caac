import { Span, trace } from '@opentelemetry/api';

export type GenAiEndpoint = 'chat' | 'completions' | 'embeddings';

/** `gen_ai.operation.name` per endpoint (OpenTelemetry GenAI conventions). */
const OPERATION: Record<GenAiEndpoint, string> = { chat: 'chat', completions: 'text_completion', embeddings: 'embeddings' };
const ROUTE: Record<GenAiEndpoint, string> = { chat: '/v1/chat/completions', completions: '/v1/completions', embeddings: '/v1/embeddings' };
/** A plain answer is read for its model and usage up to this size; a larger one is only counted. */
export const MAX_READ_BYTES = 1024 * 1024;
/** Of a stream only the end is kept: the last event carries the usage (with `stream_options.include_usage`). */
export const STREAM_TAIL_BYTES = 16 * 1024;

interface Usage {
  prompt_tokens?: unknown;
  completion_tokens?: unknown;
  input_tokens?: unknown;
  output_tokens?: unknown;
}

/**
 * The GenAI attributes of one proxied request, on the HTTP server span that carries it: requested and
 * answering model, tokens used (from the backend's `usage`), the instance, attempts, failover and time
 * to first byte. Exists only while that span is recording (tracing on and sampled), so the request path
 * of an untraced router pays one `getActiveSpan()` per request and a WeakMap lookup per chunk.
 */
export class RequestSpan {
  private attempts = 0;
  private readonly chunks: Buffer[] = [];
  private bytes = 0;
  private tooLarge = false;

  private constructor(
    private readonly span: Span,
    private readonly requestedModel: string,
    private readonly stream: boolean,
  ) {}

  /** For the request running here; undefined when its span is not recording. */
  static start(endpoint: GenAiEndpoint, requestedModel: string, stream: boolean): RequestSpan | undefined {
    const span = trace.getActiveSpan();
    if (!span?.isRecording()) return undefined;
    span.updateName(`POST ${ROUTE[endpoint]}`);
    span.setAttributes({
      'http.route': ROUTE[endpoint],
      'gen_ai.operation.name': OPERATION[endpoint],
      'gen_ai.request.model': requestedModel,
      'switchboard.stream': stream,
    });
    return new RequestSpan(span, requestedModel, stream);
  }

  /** An attempt on `instance` for `model` (the requested one or a fallback) begins. */
  attempt(instance: string, model: string): void {
    this.attempts++;
    this.span.setAttributes({
      'switchboard.instance': instance,
      'switchboard.model': model,
      'switchboard.attempts': this.attempts,
      'switchboard.failover': this.attempts > 1 || model !== this.requestedModel,
    });
  }

  /** The answer's first byte: from here it is the client's. */
  firstByte(ttftMs: number): void {
    this.span.setAttribute('switchboard.time_to_first_byte_ms', Math.round(ttftMs * 1000) / 1000);
  }

  /** A chunk of the answer as it passes to the client. */
  chunk(chunk: Buffer): void {
    if (this.stream) {
      this.chunks.push(chunk);
      this.bytes += chunk.length;
      while (this.chunks.length > 1 && this.bytes - this.chunks[0].length >= STREAM_TAIL_BYTES) this.bytes -= (this.chunks.shift() as Buffer).length;
      return;
    }
    if (this.tooLarge) return;
    this.bytes += chunk.length;
    if (this.bytes > MAX_READ_BYTES) {
      this.tooLarge = true;
      this.chunks.length = 0;
      return;
    }
    this.chunks.push(chunk);
  }

  /** The answer ended: its model and usage, when it says them. */
  end(statusCode: number): void {
    if (statusCode < 200 || statusCode >= 300 || !this.chunks.length) return;
    const text = Buffer.concat(this.chunks).toString('utf8');
    this.chunks.length = 0;
    const answer = this.stream ? lastEventWithModel(text) : parseObject(text);
    if (!answer) return;
    if (typeof answer['model'] === 'string') this.span.setAttribute('gen_ai.response.model', answer['model']);
    if (typeof answer['id'] === 'string') this.span.setAttribute('gen_ai.response.id', answer['id']);
    const usage = answer['usage'];
    if (usage && typeof usage === 'object') {
      const u = usage as Usage;
      const input = u.prompt_tokens ?? u.input_tokens;
      const output = u.completion_tokens ?? u.output_tokens;
      if (Number.isSafeInteger(input)) this.span.setAttribute('gen_ai.usage.input_tokens', input as number);
      if (Number.isSafeInteger(output)) this.span.setAttribute('gen_ai.usage.output_tokens', output as number);
    }
  }
}

function parseObject(text: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(text);
    return value && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined; // not JSON (a backend's own format): the span keeps what it has
  }
}

/** The last SSE event that names a model (the usage event when the client asked for it), from the stream's tail. */
function lastEventWithModel(tail: string): Record<string, unknown> | undefined {
  const events = tail.split('\n');
  let found: Record<string, unknown> | undefined;
  for (let i = events.length - 1; i >= 0 && !found?.['usage']; i--) {
    const line = events[i].trim();
    if (!line.startsWith('data:')) continue;
    const event = parseObject(line.slice(5).trim());
    if (!event || typeof event['model'] !== 'string') continue;
    if (event['usage']) return event;
    found ??= event;
  }
  return found;
}

const spans = new WeakMap<object, RequestSpan>();

/** Ties a request's span to the object that represents the request (the proxy's ClientSide). */
export function attachRequestSpan(request: object, span: RequestSpan | undefined): void {
  if (span) spans.set(request, span);
}

/** The span of `request`, when it is traced. */
export function requestSpanOf(request: object): RequestSpan | undefined {
  return spans.get(request);
}

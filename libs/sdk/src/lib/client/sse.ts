/** Longest event the parser holds (a backend that never ends an event must not grow memory without bound). */
const MAX_EVENT_BYTES = 8 * 1024 * 1024;

/** @internal The end of an OpenAI-style stream. */
export const DONE = Symbol('done');

/**
 * @internal
 * Server-sent events, fed chunk by chunk: each complete event's `data:` lines (joined with `\n`)
 * parsed as JSON when they are JSON, else the text; `[DONE]` yields {@link DONE}. Comments (`:`),
 * `event:`, `id:` and `retry:` fields are skipped; CRLF and LF both end lines.
 */
export class SseParser {
  private buffer = '';
  private readonly decoder = new TextDecoder();

  push(chunk: Uint8Array | string): unknown[] {
    this.buffer += typeof chunk === 'string' ? chunk : this.decoder.decode(chunk, { stream: true });
    const out: unknown[] = [];
    for (;;) {
      const end = /\r?\n\r?\n/.exec(this.buffer);
      if (!end) break;
      const block = this.buffer.slice(0, end.index);
      this.buffer = this.buffer.slice(end.index + end[0].length);
      const event = parseBlock(block);
      if (event !== undefined) out.push(event);
    }
    if (this.buffer.length > MAX_EVENT_BYTES) throw new Error(`server-sent event larger than ${MAX_EVENT_BYTES} bytes`);
    return out;
  }

  /** What is left when the body ends without a final blank line. */
  end(): unknown[] {
    const rest = this.buffer + this.decoder.decode();
    this.buffer = '';
    const event = rest.trim() ? parseBlock(rest) : undefined;
    return event === undefined ? [] : [event];
  }
}

function parseBlock(block: string): unknown {
  const data: string[] = [];
  for (const line of block.split(/\r?\n/)) {
    if (line.startsWith('data:')) data.push(line.slice(line[5] === ' ' ? 6 : 5));
  }
  if (!data.length) return undefined;
  const text = data.join('\n');
  if (text === '[DONE]') return DONE;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

import { DONE, SseParser } from './sse';

describe('SseParser', () => {
  it('parses data lines as JSON across chunk boundaries, CRLF too, and marks [DONE]', () => {
    const parser = new SseParser();
    const text = 'data: {"a":1}\n\n: comment\nevent: x\ndata: {"b":\ndata: 2}\r\n\r\ndata: plain text\n\ndata: [DONE]\n\n';
    const events: unknown[] = [];
    // One byte at a time: no event may depend on how the network cut the stream.
    for (const byte of Buffer.from(text)) events.push(...parser.push(Uint8Array.of(byte)));
    events.push(...parser.end());
    expect(events).toEqual([{ a: 1 }, { b: 2 }, 'plain text', DONE]);
  });

  it('keeps multi-byte characters split between chunks intact, and flushes a last event without its blank line', () => {
    const parser = new SseParser();
    const bytes = Buffer.from('data: {"w":"héllo"}\n\ndata: {"z":1}');
    expect([...parser.push(bytes.subarray(0, 14)), ...parser.push(bytes.subarray(14)), ...parser.end()]).toEqual([{ w: 'héllo' }, { z: 1 }]);
  });
});

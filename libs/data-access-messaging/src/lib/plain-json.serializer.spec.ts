import type { Msg } from 'nats';
import { PlainJsonDeserializer, PlainJsonSerializer } from './plain-json.serializer';

const text = (data: Uint8Array) => new TextDecoder().decode(data);

describe('PlainJsonSerializer: a reply is the answer itself', () => {
  const serializer = new PlainJsonSerializer();

  it('writes the response as JSON, without Nest\'s { response, isDisposed, id }', () => {
    expect(text(serializer.serialize({ id: 'r', response: { ok: true, revision: 7 } }))).toBe('{"ok":true,"revision":7}');
    expect(text(serializer.serialize({ id: 'r', response: { ok: true }, isDisposed: true }))).toBe('{"ok":true}');
  });

  it('passes bytes through (chunks PostgreSQL already wrote as JSON)', () => {
    const chunk = new TextEncoder().encode('{"revision":1,"instances":[]}');
    expect(serializer.serialize({ id: 'r', response: chunk })).toBe(chunk);
  });

  it('ends a chunked answer with an empty message, and writes an error as JSON', () => {
    expect(serializer.serialize({ id: 'r', isDisposed: true })).toHaveLength(0);
    expect(text(serializer.serialize({ id: 'r', err: { code: 'X' } }))).toBe('{"code":"X"}');
  });
});

describe('PlainJsonDeserializer: the body is the command', () => {
  const deserializer = new PlainJsonDeserializer();
  const data = new TextEncoder().encode('{"serviceId":"a"}');

  it('keeps the bytes for the pipe and takes the pattern from the subscription', () => {
    expect(deserializer.deserialize({ subject: 'p.registry.cmd.x', reply: '_INBOX.a.1', data } as Msg, { pattern: 'registry.cmd.x' })).toEqual({ pattern: 'registry.cmd.x', data, id: '_INBOX.a.1' });
    expect(deserializer.deserialize({ subject: 'p.registry.heartbeat.a.b.c', reply: '', data } as Msg, { pattern: 'registry.heartbeat.*.*.*' })).toEqual({ pattern: 'registry.heartbeat.*.*.*', data });
  });
});

import { decodeJsonObject, MessageRejected } from './untrusted-message.util';

const bytes = (text: string) => new TextEncoder().encode(text);

function reasonOf(data: Uint8Array, maxBytes = 1024): string {
  try {
    decodeJsonObject(data, maxBytes);
    return 'accepted';
  } catch (error) {
    return error instanceof MessageRejected ? error.reason : `threw ${String(error)}`;
  }
}

describe('decodeJsonObject', () => {
  it('accepts a JSON object within the limit', () => {
    expect(decodeJsonObject(bytes('{"a":[1,"é"]}'), 1024)).toEqual({ a: [1, 'é'] });
  });

  it('refuses by size before reading a byte of it', () => {
    expect(reasonOf(bytes(`{"a":"${'x'.repeat(2000)}"}`))).toBe('too_large');
  });

  it('refuses bytes that are not UTF-8 instead of replacing them', () => {
    expect(reasonOf(Uint8Array.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xc0, 0xaf, 0x22, 0x7d]))).toBe('not_utf8');
    expect(reasonOf(Uint8Array.from([0x22, 0xed, 0xa0, 0x80, 0x22]))).toBe('not_utf8'); // an encoded surrogate
  });

  it('refuses what is not JSON, and JSON that is not an object', () => {
    expect(reasonOf(bytes('{"a":'))).toBe('not_json');
    expect(reasonOf(bytes(''))).toBe('not_json');
    for (const text of ['null', '42', '"s"', '[]', 'true']) expect({ text, reason: reasonOf(bytes(text)) }).toEqual({ text, reason: 'not_object' });
  });
});

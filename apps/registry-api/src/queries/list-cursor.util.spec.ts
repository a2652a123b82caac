import { ListCursorCodec } from './list-cursor.util';

describe('ListCursorCodec', () => {
  const codec = new ListCursorCodec('admin-token-for-tests');

  it('round-trips a position, for its own list only', () => {
    const cursor = codec.encode('services', ['mech-llms', 'mech-llms-1']);
    expect(cursor).toMatch(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{22}$/);
    expect(codec.decode('services', cursor, 2)).toEqual(['mech-llms', 'mech-llms-1']);
    expect(codec.decode('models', cursor, 2)).toBeUndefined();
    expect(codec.decode('services', cursor, 3)).toBeUndefined();
  });

  it('refuses a cursor with any character changed, a made-up one, or one signed with another key', () => {
    const cursor = codec.encode('services', ['a', 'b']);
    for (let i = 0; i < cursor.length; i++) {
      if (cursor[i] === '.') continue;
      const tampered = `${cursor.slice(0, i)}${cursor[i] === 'A' ? 'B' : 'A'}${cursor.slice(i + 1)}`;
      expect(codec.decode('services', tampered, 2)).toBeUndefined();
    }
    const forged = `${Buffer.from(JSON.stringify(['services', 'a', 'c'])).toString('base64url')}.AAAAAAAAAAAAAAAAAAAAAA`;
    expect(codec.decode('services', forged, 2)).toBeUndefined();
    expect(new ListCursorCodec('another-admin-token').decode('services', cursor, 2)).toBeUndefined();
    expect(codec.decode('services', 'x.y.z', 2)).toBeUndefined();
  });
});

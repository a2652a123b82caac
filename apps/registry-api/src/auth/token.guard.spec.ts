import { createHash } from 'node:crypto';
import { tokensMatch } from './token.guard';

describe('tokensMatch', () => {
  const expected = createHash('sha256').update('the-real-token').digest();
  it('accepts the token and rejects others of any length', () => {
    expect(tokensMatch('the-real-token', expected)).toBe(true);
    expect(tokensMatch('the-real-tokem', expected)).toBe(false);
    expect(tokensMatch('short', expected)).toBe(false);
    expect(tokensMatch('the-real-token-and-more', expected)).toBe(false);
  });
});

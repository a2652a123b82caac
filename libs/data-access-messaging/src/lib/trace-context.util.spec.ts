import { childTraceparent } from './trace-context.util';

describe('childTraceparent', () => {
  it('keeps the caller trace id and flags with a new span id', () => {
    const parent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    const child = childTraceparent(parent);
    expect(child).toMatch(/^00-4bf92f3577b34da6a3ce929d0e0e4736-[0-9a-f]{16}-01$/);
    expect(child).not.toBe(parent);
  });

  it('starts a new trace when there is none or it is malformed', () => {
    expect(childTraceparent(undefined)).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
    expect(childTraceparent('garbage')).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
  });
});

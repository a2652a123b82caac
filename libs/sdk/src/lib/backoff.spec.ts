import { seededRandom } from '@switchboard/testing';
import { backoffMs, parseRetryAfter, sleep } from './backoff';

describe('backoffMs', () => {
  const policy = { baseMs: 100, maxMs: 1000 };

  it('doubles its ceiling per retry up to the maximum, and waits at least half of it', () => {
    expect([1, 2, 3, 4, 5, 10].map((retry) => backoffMs(retry, policy, () => 0))).toEqual([50, 100, 200, 400, 500, 500]);
    expect([1, 2, 3, 4, 5].map((retry) => backoffMs(retry, policy, () => 0.999_999))).toEqual([100, 200, 400, 800, 1000].map((c) => expect.closeTo(c, 2)));
  });

  it('spreads callers that failed together (jitter), within [ceiling/2, ceiling)', () => {
    const random = seededRandom(7);
    const waits = Array.from({ length: 200 }, () => backoffMs(3, policy, random));
    expect(Math.min(...waits)).toBeGreaterThanOrEqual(200);
    expect(Math.max(...waits)).toBeLessThan(400);
    expect(new Set(waits.map((w) => Math.round(w))).size).toBeGreaterThan(50);
  });
});

describe('parseRetryAfter', () => {
  it('reads delta-seconds and HTTP dates, ignores garbage', () => {
    const now = Date.parse('2026-01-01T00:00:00Z');
    expect(parseRetryAfter('3', now)).toBe(3000);
    expect(parseRetryAfter(['0.5'], now)).toBe(500);
    expect(parseRetryAfter('Thu, 01 Jan 2026 00:00:10 GMT', now)).toBe(10_000);
    expect(parseRetryAfter('Wed, 31 Dec 2025 23:00:00 GMT', now)).toBe(0);
    expect(parseRetryAfter('-1', now)).toBeUndefined();
    expect(parseRetryAfter('soon', now)).toBeUndefined();
    expect(parseRetryAfter(undefined, now)).toBeUndefined();
  });
});

describe('sleep', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  it('resolves after the time, and rejects with the reason as soon as its signal aborts', async () => {
    let done = false;
    const p = sleep(1000).then(() => (done = true));
    await jest.advanceTimersByTimeAsync(999);
    expect(done).toBe(false);
    await jest.advanceTimersByTimeAsync(1);
    await p;
    expect(done).toBe(true);

    const controller = new AbortController();
    const aborted = sleep(60_000, controller.signal);
    controller.abort(new Error('caller gave up'));
    await expect(aborted).rejects.toThrow('caller gave up');
  });
});

import { LogThrottle } from './log-throttle.util';

describe('LogThrottle', () => {
  it('lets one line per key through per interval and says how many it folded into the next', () => {
    const throttle = new LogThrottle(1000);
    expect(throttle.take('a', 0)).toBe(0);
    expect(throttle.take('a', 10)).toBeUndefined();
    expect(throttle.take('a', 999)).toBeUndefined();
    expect(throttle.take('b', 999)).toBe(0);
    expect(throttle.take('a', 1000)).toBe(2);
    expect(throttle.take('a', 1500)).toBeUndefined();
  });

  it('forgets quiet keys once it holds more than its maximum, so a churn of keys stays bounded', () => {
    const throttle = new LogThrottle(1000, 2);
    throttle.take('a', 0);
    throttle.take('a', 1);
    throttle.take('b', 0);
    throttle.take('c', 2000);
    // 'a' was forgotten with its suppressed count: its next line starts afresh.
    expect(throttle.take('a', 2001)).toBe(0);
  });
});

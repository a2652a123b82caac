import { EventEmitter } from 'node:events';
import { LoadMeter } from './load-meter';
import { loadMiddleware } from './middleware';

class FakeResponse extends EventEmitter {
  statusCode = 200;
}

describe('LoadMeter (fake clock)', () => {
  let now: number;
  let meter: LoadMeter;
  beforeEach(() => {
    now = 1_000_000;
    meter = new LoadMeter({ now: () => now });
  });

  it('counts the requests ended in the last 60 s, their mean latency and their 5xx fraction', () => {
    const a = meter.begin();
    const b = meter.begin();
    const c = meter.begin();
    expect(meter.snapshot()).toEqual({ requestsPerMinute: 0, averageLatency: 0, errorRate: 0, inflight: 3 });
    now += 100;
    a(200);
    now += 200;
    b(503);
    now += 300;
    c(404); // a 4xx is not a server error
    expect(meter.snapshot()).toEqual({ requestsPerMinute: 3, averageLatency: 333.33, errorRate: 1 / 3, inflight: 0 });
  });

  it('slides: a request leaves the window 60 s after it ended, not all at once', () => {
    meter.record(10, 200);
    now += 30_000;
    meter.record(30, 500);
    now += 29_000; // 59 s after the first
    expect(meter.snapshot()).toMatchObject({ requestsPerMinute: 2, averageLatency: 20, errorRate: 0.5 });
    now += 1500; // 60.5 s after the first, 30.5 s after the second
    expect(meter.snapshot()).toMatchObject({ requestsPerMinute: 1, averageLatency: 30, errorRate: 1 });
    now += 31_000;
    expect(meter.snapshot()).toEqual({ requestsPerMinute: 0, averageLatency: 0, errorRate: 0, inflight: 0 });
  });

  it('reuses a bucket of a second that left the window instead of adding to it', () => {
    meter.record(100, 500);
    now += 60_000; // same bucket slot, one lap later
    meter.record(10, 200);
    expect(meter.snapshot()).toMatchObject({ requestsPerMinute: 1, averageLatency: 10, errorRate: 0 });
  });

  it('ends a request once, whichever of finish and close comes (and both do)', () => {
    const res = new FakeResponse();
    meter.track({ url: '/v1/chat/completions' }, res);
    expect(meter.inflight).toBe(1);
    now += 50;
    res.statusCode = 502;
    res.emit('finish');
    res.emit('close');
    expect(meter.snapshot()).toEqual({ requestsPerMinute: 1, averageLatency: 50, errorRate: 1, inflight: 0 });
  });

  it('counts a request whose client went away (close without finish) and leaves ignored paths out', () => {
    const ignoring = new LoadMeter({ now: () => now, ignorePaths: ['/health'] });
    const health = new FakeResponse();
    ignoring.track({ url: '/health?verbose=1' }, health);
    const aborted = new FakeResponse();
    ignoring.track({ url: '/v1/x' }, aborted);
    expect(ignoring.inflight).toBe(1);
    aborted.emit('close');
    health.emit('finish');
    expect(ignoring.snapshot()).toMatchObject({ requestsPerMinute: 1, errorRate: 0, inflight: 0 });
  });
});

describe('load middleware', () => {
  it('express, fastify (hook and plugin) and node:http all feed the meter', async () => {
    const meter = new LoadMeter();
    const middleware = loadMiddleware(meter);

    const res1 = new FakeResponse();
    const next = jest.fn();
    middleware.express()({ url: '/a' }, res1, next);
    expect(next).toHaveBeenCalledTimes(1);

    const hooks: ((req: any, reply: any, done: () => void) => void)[] = [];
    const app = { addHook: (_name: 'onRequest', hook: any) => hooks.push(hook) };
    expect(middleware.fastify(app)).toBe(app);
    const plugin = middleware.fastify();
    expect((plugin as any)[Symbol.for('skip-override')]).toBe(true);
    const pluginDone = jest.fn();
    plugin(app, {}, pluginDone);
    expect(pluginDone).toHaveBeenCalled();
    expect(hooks).toHaveLength(2);
    const res2 = new FakeResponse();
    const done = jest.fn();
    hooks[0]({ raw: { url: '/b' } }, { raw: res2 }, done);
    expect(done).toHaveBeenCalled();

    const res3 = new FakeResponse();
    const handler = jest.fn(() => 'handled');
    expect(middleware.node(handler)({ url: '/c' }, res3)).toBe('handled');
    expect(handler).toHaveBeenCalled();

    expect(meter.inflight).toBe(3);
    res1.emit('finish');
    res2.statusCode = 500;
    res2.emit('finish');
    res3.emit('finish');
    expect(meter.snapshot()).toMatchObject({ requestsPerMinute: 3, errorRate: 1 / 3, inflight: 0 });
  });
});

import { EventEmitter } from 'node:events';
import type { ServerResponse } from 'node:http';
import type { Dispatcher } from 'undici';
import type { RoutedInstance } from '@switchboard/routing-table';
import { BalancerService } from '../balancing/balancer.service';
import { BUILTIN_POLICY } from '../config/routing-policy.config';
import { RouterMetricsService } from '../observability/router-metrics.service';
import { AttemptResult, ClientSide, ERROR_BODY_MAX_BYTES, UpstreamExchange } from './upstream-exchange.util';

const INSTANCE = { serviceId: 'vllm-1', internalUrl: 'http://10.0.0.8:8000' } as RoutedInstance;

/** What the handler uses of a client's response: writes recorded, `write` answering as a full or empty buffer. */
class FakeResponse extends EventEmitter {
  full = false;
  head?: { status: number; headers: unknown };
  written: string[] = [];
  ended = false;
  destroyed = false;
  writableFinished = false;
  /** As Node's http: a write corks the socket until the next tick. */
  socket = { writableCorked: 0, uncorks: 0, uncork: () => (this.socket.writableCorked--, this.socket.uncorks++) };
  writeHead(status: number, headers: unknown) {
    this.head = { status, headers };
    return this;
  }
  write(chunk: Buffer) {
    this.written.push(chunk.toString());
    if (!this.socket.writableCorked) this.socket.writableCorked = 1;
    return !this.full;
  }
  end(chunk?: string) {
    if (chunk) this.written.push(chunk);
    this.ended = true;
  }
  destroy() {
    this.destroyed = true;
  }
}

/** undici's dispatch controller, as the handler sees it. */
class FakeController implements Dispatcher.DispatchController {
  paused = false;
  aborted = false;
  reason: Error | null = null;
  pauses = 0;
  resumes = 0;
  pause() {
    this.paused = true;
    this.pauses++;
  }
  resume() {
    this.paused = false;
    this.resumes++;
  }
  abort(reason: Error) {
    this.aborted = true;
    this.reason = reason;
  }
}

describe('UpstreamExchange (the undici dispatch handler)', () => {
  let res: FakeResponse;
  let controller: FakeController;
  let client: ClientSide;
  let results: AttemptResult[];
  let metrics: RouterMetricsService;

  const exchange = (stream = true) => {
    metrics = new RouterMetricsService();
    const ex = new UpstreamExchange({ balancer: new BalancerService(metrics), metrics }, client, 'm', INSTANCE, BUILTIN_POLICY, stream, (r) => results.push(r), (e) => {
      throw e;
    });
    ex.onRequestStart(controller);
    return ex;
  };

  beforeEach(() => {
    jest.useFakeTimers();
    res = new FakeResponse();
    controller = new FakeController();
    client = new ClientSide(res as unknown as ServerResponse);
    results = [];
  });
  afterEach(() => jest.useRealTimers());

  it('holds the answer until its first chunk, then writes the head with it', () => {
    const ex = exchange();
    ex.onResponseStart(controller, 200, { 'content-type': 'text/event-stream', 'x-internal': 'no' });
    expect(res.head).toBeUndefined();
    ex.onResponseData(controller, Buffer.from('data: 1\n\n'));
    expect(res.head).toEqual({
      status: 200,
      headers: ['x-switchboard-instance', 'vllm-1', 'content-type', 'text/event-stream', 'cache-control', 'no-cache', 'x-accel-buffering', 'no'],
    });
    expect(res.written).toEqual(['data: 1\n\n']);
  });

  it("sends a stream's head and first chunk at once (uncorked), later chunks and plain answers at the next tick", () => {
    const stream = exchange();
    stream.onResponseStart(controller, 200, { 'content-type': 'text/event-stream' });
    stream.onResponseData(controller, Buffer.from('data: 1\n\n'));
    expect(res.socket.uncorks).toBe(1);
    stream.onResponseData(controller, Buffer.from('data: 2\n\n'));
    expect(res.socket.uncorks).toBe(1);

    res = new FakeResponse();
    client = new ClientSide(res as unknown as ServerResponse);
    const plain = exchange(false);
    plain.onResponseStart(controller, 200, { 'content-type': 'application/json' });
    plain.onResponseData(controller, Buffer.from('{"id":'));
    plain.onResponseData(controller, Buffer.from('1}'));
    plain.onResponseEnd();
    expect(res.socket.uncorks).toBe(0);
  });

  it('pauses the upstream while the client response is full (one drain listener however many chunks come), resumes on drain', () => {
    const ex = exchange();
    ex.onResponseStart(controller, 200, { 'content-type': 'text/event-stream' });
    res.full = true;
    ex.onResponseData(controller, Buffer.from('data: 1\n\n'));
    ex.onResponseData(controller, Buffer.from('data: 2\n\n')); // already parsed when the pause came
    expect(controller.pauses).toBe(1);
    expect(res.listenerCount('drain')).toBe(1);
    res.full = false;
    res.emit('drain');
    expect(controller.resumes).toBe(1);
    expect(controller.paused).toBe(false);
    ex.onResponseData(controller, Buffer.from('data: 3\n\n'));
    ex.onResponseEnd();
    expect(controller.pauses).toBe(1);
    expect(res.written).toEqual(['data: 1\n\n', 'data: 2\n\n', 'data: 3\n\n']);
    expect(res.ended).toBe(true);
    expect(results).toEqual([{ done: true }]);
  });

  it("aborts the upstream when the client goes away, and settles as done (nothing to retry)", () => {
    const ex = exchange();
    ex.onResponseStart(controller, 200, { 'content-type': 'text/event-stream' });
    ex.onResponseData(controller, Buffer.from('data: 1\n\n'));
    res.emit('close');
    expect(controller.aborted).toBe(true);
    ex.onResponseError(controller, controller.reason as Error);
    expect(results).toEqual([{ done: true }]);
  });

  it('reads no more than the start of a 5xx body, then aborts and fails over with nothing written', () => {
    const ex = exchange(false);
    ex.onResponseStart(controller, 503, { 'retry-after': '2' });
    ex.onResponseData(controller, Buffer.alloc(ERROR_BODY_MAX_BYTES, 'x'));
    expect(controller.aborted).toBe(true);
    ex.onResponseError(controller, controller.reason as Error);
    expect(res.head).toBeUndefined();
    expect(results).toHaveLength(1);
    expect(results[0]).toMatchObject({ done: false, failure: { kind: 'status', status: 503, retryAfterMs: 2000, code: 'HTTP 503' } });
  });

  it('fails over as a timeout when no first chunk comes within firstTokenMs', () => {
    const ex = exchange();
    ex.onResponseStart(controller, 200, { 'content-type': 'text/event-stream' });
    jest.advanceTimersByTime(BUILTIN_POLICY.firstTokenMs);
    expect(controller.aborted).toBe(true);
    ex.onResponseError(controller, controller.reason as Error);
    expect(results).toEqual([{ done: false, failure: expect.objectContaining({ kind: 'timeout', code: 'timeout' }) }]);
    expect(res.head).toBeUndefined();
  });
});

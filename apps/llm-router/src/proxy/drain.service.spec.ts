import { loadConfig } from '@switchboard/config';
import { LlmRouterConfig } from '../config/llm-router.config';
import { DrainService, drainBudgetMs } from './drain.service';
import { OpenAiError } from './openai-error.exception';

function drainWithGrace(graceMs: number): DrainService {
  return new DrainService(loadConfig(LlmRouterConfig, { SHUTDOWN_GRACE_MS: String(graceMs), LOG_LEVEL: 'silent' }));
}

describe('DrainService', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  it('keeps a fifth of the grace back, at least 250 ms and at most 2 s', () => {
    expect(drainBudgetMs(3000)).toBe(2400);
    expect(drainBudgetMs(1000)).toBe(750);
    expect(drainBudgetMs(25_000)).toBe(23_000);
  });

  it('refuses requests once draining, with a 503 that closes the connection', async () => {
    const drain = drainWithGrace(3000);
    drain.leave(drain.enter());
    await drain.beforeApplicationShutdown();
    expect(drain.draining).toBe(true);
    let refusal: unknown;
    try {
      drain.enter();
    } catch (error) {
      refusal = error;
    }
    expect(refusal).toBeInstanceOf(OpenAiError);
    expect(refusal).toMatchObject({ status: 503, code: 'router_shutting_down', headers: { connection: 'close' } });
  });

  it('lets a request that ends within the budget finish untouched', async () => {
    const drain = drainWithGrace(3000);
    const request = drain.enter();
    let drained = false;
    void drain.beforeApplicationShutdown().then(() => (drained = true));
    await jest.advanceTimersByTimeAsync(2000);
    expect(drained).toBe(false);
    drain.leave(request);
    await jest.advanceTimersByTimeAsync(0);
    expect(drained).toBe(true);
    expect(request.signal.aborted).toBe(false);
  });

  it('cuts what is still in flight when the budget runs out, then waits for it to end', async () => {
    const drain = drainWithGrace(3000);
    const request = drain.enter();
    let drained = false;
    void drain.beforeApplicationShutdown().then(() => (drained = true));
    await jest.advanceTimersByTimeAsync(2399);
    expect(request.signal.aborted).toBe(false);
    await jest.advanceTimersByTimeAsync(1);
    expect(request.signal.aborted).toBe(true);
    expect(drained).toBe(false);
    drain.leave(request);
    await jest.advanceTimersByTimeAsync(0);
    expect(drained).toBe(true);
    expect(drain.inFlightCount).toBe(0);
  });
});

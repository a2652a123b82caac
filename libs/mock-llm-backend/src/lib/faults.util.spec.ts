import { FaultState, FaultValidationError, parseFaults } from './faults.util';

const NO_HEADERS = {};

describe('FaultState', () => {
  it('spreads failRate failures evenly and deterministically', () => {
    const state = new FaultState();
    state.set({ failRate: 0.3, status: 503 });
    const failed = Array.from({ length: 10 }, (_, i) => (state.forRequest(NO_HEADERS)?.action ? i + 1 : 0)).filter(Boolean);
    expect(failed).toEqual([4, 7, 10]);
  });

  it('defaults a failRate failure to 500, keeping Retry-After', () => {
    const state = new FaultState();
    state.set({ failRate: 1, retryAfter: 3 });
    expect(state.forRequest(NO_HEADERS)?.action).toEqual({ kind: 'status', status: 500, retryAfter: 3 });
  });

  it('keeps the latency for requests failRate spares', () => {
    const state = new FaultState();
    state.set({ failRate: 0.5, drop: true, latencyMs: 40 });
    expect(state.forRequest(NO_HEADERS)).toEqual({ latencyMs: 40, action: undefined });
    expect(state.forRequest(NO_HEADERS)).toEqual({ latencyMs: 40, action: { kind: 'drop' } });
  });

  it('clears a counted fault set after N requests it acts on', () => {
    const state = new FaultState();
    state.set({ hang: true, count: 2 });
    expect(state.forHealth(NO_HEADERS)).toBeUndefined();
    expect(state.forRequest(NO_HEADERS)?.action).toEqual({ kind: 'hang' });
    expect(state.forRequest(NO_HEADERS)?.action).toEqual({ kind: 'hang' });
    expect(state.forRequest(NO_HEADERS)).toBeUndefined();
    expect(state.current()).toBeUndefined();
  });

  it('counts health checks for a health-only fault, not completions', () => {
    const state = new FaultState();
    state.set({ health: 'unhealthy', count: 1 });
    expect(state.forRequest(NO_HEADERS)).toBeUndefined();
    expect(state.forHealth(NO_HEADERS)).toEqual({ mode: 'unhealthy', delayMs: 500 });
    expect(state.forHealth(NO_HEADERS)).toBeUndefined();
  });

  it('lets header faults override the set ones for one request', () => {
    const state = new FaultState();
    state.set({ latencyMs: 10, status: 500 });
    expect(state.forRequest({ 'x-mock-fault-status': '429', 'x-mock-fault-retry-after': '1' })).toEqual({
      latencyMs: 10,
      action: { kind: 'status', status: 429, retryAfter: 1 },
    });
    expect(state.forRequest({ 'x-mock-fault-drop': 'true' })?.action).toEqual({ kind: 'drop' });
  });

  it('picks the most drastic action when several are set', () => {
    const state = new FaultState();
    state.set({ status: 503, cutAfterChunks: 1, hang: true });
    expect(state.forRequest(NO_HEADERS)?.action).toEqual({ kind: 'hang' });
  });
});

describe('parseFaults', () => {
  it('refuses unknown keys, wrong types and out-of-range values', () => {
    expect(() => parseFaults({ stauts: 500 })).toThrow(FaultValidationError);
    expect(() => parseFaults({ failRate: 1.5 })).toThrow('fault "failRate" must be a number in 0..1');
    expect(() => parseFaults({ health: 'sick' })).toThrow('one of unhealthy, degraded, hang');
    expect(() => parseFaults([])).toThrow('faults must be a JSON object');
  });

  it('drops null fields', () => {
    expect(parseFaults({ status: 502, latencyMs: null })).toEqual({ status: 502 });
  });
});

import { newCheckState, record } from './health-evaluator.util';
import { transitionReason } from './probe-reason.util';

describe('transitionReason', () => {
  it('says why the checks decided a transition', () => {
    const state = newCheckState();
    record(state, 'fail', 0, 'HTTP 503');
    record(state, 'fail', 1, 'HTTP 503');
    expect(transitionReason('unhealthy', state, { healthyThreshold: 2 })).toBe('2 consecutive failed checks: HTTP 503');
    expect(transitionReason('healthy', newCheckState(), { healthyThreshold: 2 })).toBe('2 consecutive passing checks');
    expect(transitionReason('degraded', newCheckState(), { healthyThreshold: 3 })).toBe('3 consecutive slow or degraded answers');
  });
});

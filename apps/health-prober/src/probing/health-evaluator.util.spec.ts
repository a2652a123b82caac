import { heartbeatVerdict, newCheckState, probeVerdict, record, Thresholds, worst } from './health-evaluator.util';

const t: Thresholds = { unhealthyThreshold: 3, healthyThreshold: 2, offlineAfterMs: 60_000 };

describe('health evaluation', () => {
  it('needs N failures in a row before unhealthy, so one lost probe never flaps', () => {
    const s = newCheckState();
    record(s, 'fail', 0);
    record(s, 'fail', 1000);
    expect(probeVerdict(s, 'healthy', t, 2000)).toBeUndefined();
    record(s, 'pass', 2000);
    record(s, 'fail', 3000);
    record(s, 'fail', 4000);
    expect(probeVerdict(s, 'healthy', t, 4000)).toBeUndefined();
    record(s, 'fail', 5000);
    expect(probeVerdict(s, 'healthy', t, 5000)).toBe('unhealthy');
  });

  it('turns offline when failing longer than offlineAfter, and stays offline until it recovers', () => {
    const s = newCheckState();
    for (let i = 0; i < 3; i++) record(s, 'fail', i * 30_000);
    expect(probeVerdict(s, 'unhealthy', t, 60_000)).toBe('offline');
    expect(probeVerdict({ ...s, failingSince: 59_000 }, 'offline', t, 60_000)).toBe('offline');
  });

  it('needs M successes before healthy again; slow or self-reported degraded answers make it degraded', () => {
    const s = newCheckState();
    for (let i = 0; i < 3; i++) record(s, 'fail', i);
    record(s, 'pass', 10);
    expect(probeVerdict(s, 'unhealthy', t, 10)).toBeUndefined();
    record(s, 'pass', 20);
    expect(probeVerdict(s, 'unhealthy', t, 20)).toBe('healthy');
    record(s, 'warn', 30);
    record(s, 'warn', 40);
    expect(probeVerdict(s, 'healthy', t, 40)).toBe('degraded');
  });

  it('expires silent heartbeats: unhealthy past the TTL, offline later; the worse verdict wins', () => {
    expect(heartbeatVerdict(undefined, 30_000, 120_000, 1e9)).toBeUndefined();
    expect(heartbeatVerdict(0, 30_000, 120_000, 20_000)).toBeUndefined();
    expect(heartbeatVerdict(0, 30_000, 120_000, 31_000)).toBe('unhealthy');
    expect(heartbeatVerdict(0, 30_000, 120_000, 121_000)).toBe('offline');
    expect(worst('healthy', 'unhealthy')).toBe('unhealthy');
    expect(worst(undefined, 'degraded')).toBe('degraded');
  });
});

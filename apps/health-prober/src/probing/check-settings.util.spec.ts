import { checkSettings, CheckDefaults } from './check-settings.util';

const defaults: CheckDefaults = {
  CHECK_INTERVAL_MS: 10_000,
  PROBE_MIN_INTERVAL_MS: 1000,
  CHECK_TIMEOUT_MS: 2000,
  UNHEALTHY_THRESHOLD: 3,
  HEALTHY_THRESHOLD: 2,
  DEGRADED_LATENCY_MS: 1000,
  HEARTBEAT_TTL_MS: 30_000,
  OFFLINE_AFTER_MS: 120_000,
};

describe('checkSettings', () => {
  it("takes the registration's overrides over the prober's defaults", () => {
    expect(checkSettings({ intervalMs: 5000, unhealthyThreshold: 5 }, defaults)).toMatchObject({ enabled: true, intervalMs: 5000, timeoutMs: 2000, unhealthyThreshold: 5, healthyThreshold: 2 });
    expect(checkSettings({}, defaults).intervalMs).toBe(10_000);
  });

  it('never checks an instance more often than PROBE_MIN_INTERVAL_MS, whatever its registration asks', () => {
    expect(checkSettings({ intervalMs: 100 }, defaults).intervalMs).toBe(1000);
    expect(checkSettings({}, { ...defaults, CHECK_INTERVAL_MS: 200 }).intervalMs).toBe(1000);
    expect(checkSettings({ intervalMs: 100 }, { ...defaults, PROBE_MIN_INTERVAL_MS: 50 }).intervalMs).toBe(100);
  });
});

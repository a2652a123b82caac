import type { HealthStatus } from '@switchboard/contracts';
import type { RoutedInstance, RoutingTable, TableChange } from '@switchboard/routing-table';
import type { HealthProberConfig } from '../config/health-prober.config';
import type { MembershipService } from '../membership/membership.service';
import { ProberMetricsService } from '../observability/prober-metrics.service';
import { probe, ProbeResult } from './probe.util';
import { ProberService } from './prober.service';
import type { RegistryCommandsClient } from './registry-commands-client.service';
import { SelfPreservationService } from './self-preservation.service';

// Probes answer at once (no I/O): what is tested is when they are made.
jest.mock('./probe.util', () => ({ probe: jest.fn(async () => ({ outcome: 'pass', latencyMs: 1, detail: 'HTTP 200', responded: true })) }));
const probed = probe as jest.MockedFunction<typeof probe>;
const PASS: ProbeResult = { outcome: 'pass', latencyMs: 1, detail: 'HTTP 200', responded: true };

const INTERVAL = 10_000;
const config = {
  CHECK_INTERVAL_MS: INTERVAL,
  PROBE_MIN_INTERVAL_MS: 1000,
  CHECK_TIMEOUT_MS: 2000,
  CHECK_JITTER: 0.1,
  UNHEALTHY_THRESHOLD: 3,
  HEALTHY_THRESHOLD: 2,
  DEGRADED_LATENCY_MS: 5000,
  HEARTBEAT_TTL_MS: 5000,
  OFFLINE_AFTER_MS: 120_000,
  PRUNE_AFTER_MS: 86_400_000,
  MAX_CONCURRENT_PROBES: 256,
  MASS_FAILURE_THRESHOLD: 0.6,
  MASS_FAILURE_MIN_INSTANCES: 5,
  MASS_FAILURE_WINDOW_MS: 60_000,
  MASS_FAILURE_MAX_HOLD_MS: 300_000,
} as HealthProberConfig;

/** The table as the prober reads it, counting the instances read through `get` and `all` (what a tick touches). */
class StubTable {
  readonly instances = new Map<string, RoutedInstance>();
  gets = 0;
  private changeListener?: (change?: TableChange) => void;
  private heartbeatListener?: (instance: RoutedInstance) => void;
  all = () => this.counted();
  private *counted(): IterableIterator<RoutedInstance> {
    for (const instance of this.instances.values()) {
      this.gets++;
      yield instance;
    }
  }
  get = (id: string) => {
    this.gets++;
    return this.instances.get(id);
  };
  onChange = (listener: (change?: TableChange) => void) => ((this.changeListener = listener), () => undefined);
  watchHeartbeats = (listener: (instance: RoutedInstance) => void) => ((this.heartbeatListener = listener), () => undefined);
  add(instance: RoutedInstance): void {
    this.instances.set(instance.serviceId, instance);
    this.changeListener?.({ serviceId: instance.serviceId, instance });
  }
  setStatus(id: string, status: HealthStatus): void {
    const instance = { ...(this.instances.get(id) as RoutedInstance), status, revision: (this.instances.get(id)?.revision ?? 0) + 1 };
    this.instances.set(id, instance);
    this.changeListener?.({ serviceId: id, instance });
  }
  heartbeat(id: string): void {
    const instance = this.instances.get(id) as RoutedInstance;
    instance.lastHeartbeatAt = Date.now();
    this.heartbeatListener?.(instance);
  }
}

const routed = (serviceId: string, patch: Partial<RoutedInstance> = {}): RoutedInstance => ({
  serviceId,
  serviceName: 'svc',
  environment: 'production',
  models: [],
  internalUrl: `http://${serviceId}:8000`,
  healthCheckEndpoint: '/health',
  healthCheck: {},
  status: 'healthy',
  adminState: 'enabled',
  routable: true,
  revision: 1,
  load: {},
  ...patch,
});

describe('ProberService scheduling (a due-time heap, fake clock)', () => {
  let table: StubTable;
  let membership: { version: number; owns: (id: string) => boolean };
  let reports: { serviceId: string; status: HealthStatus; at: number }[];
  let prober: ProberService;

  beforeEach(() => {
    jest.useFakeTimers({ now: 1_000_000 });
    probed.mockClear();
    table = new StubTable();
    membership = { version: 0, owns: () => true };
    reports = [];
    const registry = {
      reportHealth: async (serviceId: string, status: HealthStatus) => (reports.push({ serviceId, status, at: Date.now() }), true),
      deregister: async () => true,
    } as unknown as RegistryCommandsClient;
    const preservation = new SelfPreservationService(config, () => Date.now());
    prober = new ProberService(table as unknown as RoutingTable, membership as unknown as MembershipService, registry, new ProberMetricsService(), preservation, config);
  });
  afterEach(() => {
    prober.onApplicationShutdown();
    jest.useRealTimers();
  });

  it('checks every instance once per interval (± jitter) and a tick touches only the instances due', async () => {
    const n = 5000;
    for (let i = 0; i < n; i++) table.instances.set(`i-${i}`, routed(`i-${i}`));
    prober.onApplicationBootstrap();
    await jest.advanceTimersByTimeAsync(INTERVAL + 3 * INTERVAL);

    const times = new Map<string, number[]>();
    for (const [url] of probed.mock.calls) {
      const id = url.slice('http://'.length, url.indexOf(':8000'));
      times.set(id, [...(times.get(id) ?? []), 0]);
    }
    expect(times.size).toBe(n);
    // Every instance 3 or 4 times in 4 intervals (the first spread over the first interval).
    const counts = [...times.values()].map((t) => t.length);
    expect(Math.min(...counts)).toBeGreaterThanOrEqual(3);
    expect(Math.max(...counts)).toBeLessThanOrEqual(5);

    // Steady state, 10 ticks: the table is read for the ~n / 10 checks due (twice each: launch and
    // result), not n times per tick as a walk would (10 × n).
    table.gets = 0;
    await jest.advanceTimersByTimeAsync(1000);
    expect(table.gets).toBeGreaterThan(0);
    expect(table.gets).toBeLessThan(n / 2);
  });

  it('keeps each instance on its slot: gaps between its checks stay within the interval ± jitter + one tick', async () => {
    const seen = new Map<string, number[]>();
    probed.mockImplementation(async (url) => {
      const id = url.slice('http://'.length, url.indexOf(':8000'));
      seen.set(id, [...(seen.get(id) ?? []), Date.now()]);
      return PASS;
    });
    for (let i = 0; i < 200; i++) table.instances.set(`g-${i}`, routed(`g-${i}`));
    prober.onApplicationBootstrap();
    await jest.advanceTimersByTimeAsync(10 * INTERVAL);

    const gaps = [...seen.values()].flatMap((t) => t.slice(1).map((at, k) => at - t[k]));
    expect(gaps.length).toBeGreaterThan(200 * 8);
    expect(Math.min(...gaps)).toBeGreaterThanOrEqual(INTERVAL * 0.8 - 100);
    expect(Math.max(...gaps)).toBeLessThanOrEqual(INTERVAL * 1.2 + 100);
    probed.mockImplementation(async () => PASS);
  });

  it('reports an expired heartbeat when its TTL runs out, with no check and no walk, and judges a change at once', async () => {
    table.instances.set('hb-1', routed('hb-1', { healthCheck: { enabled: false }, lastHeartbeatAt: Date.now() }));
    prober.onApplicationBootstrap();
    await jest.advanceTimersByTimeAsync(4000);
    expect(reports).toEqual([]);
    await jest.advanceTimersByTimeAsync(1200);
    expect(reports).toEqual([expect.objectContaining({ serviceId: 'hb-1', status: 'unhealthy' })]);
    expect(probed).not.toHaveBeenCalled();

    // The registry applied it; an operator then sets it healthy again: reported again once the
    // report retry interval (5 s) since the last report has passed, with nothing else waking it.
    const first = reports[0].at;
    table.setStatus('hb-1', 'unhealthy');
    await jest.advanceTimersByTimeAsync(200);
    table.setStatus('hb-1', 'healthy');
    await jest.advanceTimersByTimeAsync(200);
    expect(reports).toHaveLength(1);
    await jest.advanceTimersByTimeAsync(first + 5000 + 100 - Date.now());
    expect(reports.map((r) => r.status)).toEqual(['unhealthy', 'unhealthy']);
    table.setStatus('hb-1', 'unhealthy');
    // A heartbeat arrives: nothing more to report, and the TTL counts from it.
    table.heartbeat('hb-1');
    await jest.advanceTimersByTimeAsync(4000);
    expect(reports).toHaveLength(2);
  });

  it('starts the TTL at the first heartbeat of an instance planned before it ever heartbeated', async () => {
    table.instances.set('hb-late', routed('hb-late', { healthCheck: { enabled: false } }));
    prober.onApplicationBootstrap();
    await jest.advanceTimersByTimeAsync(3000);
    table.heartbeat('hb-late');
    await jest.advanceTimersByTimeAsync(4500);
    expect(reports).toEqual([]);
    await jest.advanceTimersByTimeAsync(1000);
    expect(reports).toEqual([expect.objectContaining({ serviceId: 'hb-late', status: 'unhealthy' })]);
  });

  it('schedules an instance a manual round checked before any tick had seen it', async () => {
    prober.onApplicationBootstrap();
    await jest.advanceTimersByTimeAsync(200);
    table.add(routed('round-first'));
    await prober.runRound();
    expect(probed).toHaveBeenCalledTimes(1);
    await jest.advanceTimersByTimeAsync(3 * INTERVAL);
    expect(probed.mock.calls.length).toBeGreaterThanOrEqual(3);
  });

  it('re-plans on a membership change: instances it no longer owns are not checked, new ones are', async () => {
    for (let i = 0; i < 100; i++) table.instances.set(`m-${i}`, routed(`m-${i}`));
    prober.onApplicationBootstrap();
    await jest.advanceTimersByTimeAsync(2 * INTERVAL);
    membership.owns = (id) => Number(id.slice(2)) % 2 === 0;
    membership.version++;
    await jest.advanceTimersByTimeAsync(200);
    probed.mockClear();
    await jest.advanceTimersByTimeAsync(2 * INTERVAL);
    const ids = new Set(probed.mock.calls.map(([url]) => url.slice('http://'.length, url.indexOf(':8000'))));
    expect(ids.size).toBe(50);
    expect([...ids].every((id) => Number(id.slice(2)) % 2 === 0)).toBe(true);

    table.add(routed('m-1000'));
    await jest.advanceTimersByTimeAsync(INTERVAL + 200);
    expect(probed.mock.calls.some(([url]) => url.startsWith('http://m-1000:'))).toBe(true);
  });
});

import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { metricsRegistry } from '@switchboard/observability';
import type { RoutedInstance, RoutingTable } from '@switchboard/routing-table';
import type { HealthProberConfig } from '../config/health-prober.config';
import type { MembershipService } from '../membership/membership.service';
import { ProberMetricsService } from '../observability/prober-metrics.service';
import { MAX_WAITING_ROUND_REQUESTS, ProberService, RoundQueueFullError } from './prober.service';
import type { RegistryCommandsClient } from './registry-commands-client.service';
import type { SelfPreservationService } from './self-preservation.service';

async function roundRequests(outcome: string): Promise<number> {
  const text = await metricsRegistry.metrics();
  const line = text.split('\n').find((l) => l.startsWith(`prober_round_requests_total{outcome="${outcome}"}`));
  return line ? Number(line.split(' ').pop()) : 0;
}

/**
 * `prober.cmd.runChecks` is anyone's to publish on: a flood of run-now requests must not start a
 * round each (probes queued without end). A real HTTP backend counts the probes; its answers are
 * held until the test lets them go, so the first round is still running while the flood arrives.
 */
describe('ProberService.runRound under a flood of run-now requests', () => {
  let server: Server;
  let probes = 0;
  let held: ServerResponse[] = [];
  let service: ProberService;

  const release = () => {
    for (const res of held) res.writeHead(200).end('ok');
    held = [];
  };

  beforeAll(async () => {
    server = createServer((_req: IncomingMessage, res: ServerResponse) => {
      probes++;
      held.push(res);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const instance: RoutedInstance = {
      serviceId: 'round-1',
      serviceName: 'svc',
      environment: 'development',
      models: [],
      internalUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      healthCheckEndpoint: '/health',
      healthCheck: { timeoutMs: 10_000 },
      status: 'healthy',
      adminState: 'enabled',
      routable: true,
      revision: 1,
      load: {},
    } as RoutedInstance;
    // The table as the round reads it; `get` finds nothing, so no transition is judged or reported.
    const table = { all: () => [instance], get: () => undefined } as unknown as RoutingTable;
    const config = {
      CHECK_INTERVAL_MS: 10_000,
      PROBE_MIN_INTERVAL_MS: 1000,
      CHECK_TIMEOUT_MS: 10_000,
      UNHEALTHY_THRESHOLD: 3,
      HEALTHY_THRESHOLD: 2,
      DEGRADED_LATENCY_MS: 5000,
      HEARTBEAT_TTL_MS: 30_000,
      OFFLINE_AFTER_MS: 120_000,
      MAX_CONCURRENT_PROBES: 256,
    } as HealthProberConfig;
    service = new ProberService(table, {} as MembershipService, {} as RegistryCommandsClient, new ProberMetricsService(), {} as SelfPreservationService, config);
  });

  afterAll(async () => {
    release();
    await new Promise((resolve) => server.close(resolve));
  });

  it('runs one round, queues one more for every request that arrived meanwhile, and refuses beyond MAX_WAITING_ROUND_REQUESTS', async () => {
    const before = { ran: await roundRequests('ran'), coalesced: await roundRequests('coalesced'), shed: await roundRequests('shed') };
    const first = service.runRound();
    const flood = Array.from({ length: 1000 }, () => service.runRound().then((summary) => ({ summary }), (error: unknown) => ({ error })));

    // Only the first round probes while the flood waits.
    await waitForProbes(1);
    release();
    expect(await first).toMatchObject({ checked: 1, healthy: 1 });
    // The queued round starts after the first: its probe is newer than every request it answers.
    await waitForProbes(2);
    release();
    const answers = await Promise.all(flood);

    const answered = answers.filter((a) => 'summary' in a);
    const refused = answers.filter((a) => 'error' in a);
    expect(answered).toHaveLength(MAX_WAITING_ROUND_REQUESTS);
    expect(answered.every((a) => 'summary' in a && a.summary.checked === 1)).toBe(true);
    expect(refused).toHaveLength(1000 - MAX_WAITING_ROUND_REQUESTS);
    expect(refused.every((a) => 'error' in a && a.error instanceof RoundQueueFullError)).toBe(true);
    expect(probes).toBe(2);
    expect({ ran: (await roundRequests('ran')) - before.ran, coalesced: (await roundRequests('coalesced')) - before.coalesced, shed: (await roundRequests('shed')) - before.shed }).toEqual({
      ran: 2,
      coalesced: MAX_WAITING_ROUND_REQUESTS - 1,
      shed: 1000 - MAX_WAITING_ROUND_REQUESTS,
    });

    // Idle again: the next request runs a round of its own.
    const later = service.runRound();
    await waitForProbes(3);
    release();
    expect(await later).toMatchObject({ checked: 1 });
  });

  async function waitForProbes(n: number): Promise<void> {
    const deadline = Date.now() + 10_000;
    while (probes < n) {
      if (Date.now() > deadline) throw new Error(`expected ${n} probes, saw ${probes}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }
});

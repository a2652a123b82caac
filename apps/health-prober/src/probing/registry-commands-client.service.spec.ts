import { SubjectSpace } from '@switchboard/contracts';
import type { NatsClient } from '@switchboard/messaging';
import { ProberMetricsService } from '../observability/prober-metrics.service';
import { RegistryCommandsClient } from './registry-commands-client.service';

describe('RegistryCommandsClient', () => {
  const subjects = new SubjectSpace('spec');
  const metrics = new ProberMetricsService();
  const failures = async () => (await metrics.reportFailures.get()).values[0]?.value ?? 0;
  const clientAnswering = (answer: (subject: string, payload: unknown) => Promise<unknown>) => {
    const sent: [string, unknown][] = [];
    const nats = { request: (subject: string, payload: unknown) => (sent.push([subject, payload]), answer(subject, payload)) } as unknown as NatsClient;
    return { client: new RegistryCommandsClient(nats, subjects, metrics), sent };
  };

  it('reports a health transition and a pruning on the registry command subjects', async () => {
    const { client, sent } = clientAnswering(async () => ({ ok: true }));
    await expect(client.reportHealth('vllm-1', 'unhealthy', '3 consecutive failed checks')).resolves.toBe(true);
    await expect(client.deregister('vllm-2', 'inactive for 90 s')).resolves.toBe(true);
    expect(sent).toEqual([
      [subjects.reportHealthCommand, { serviceId: 'vllm-1', status: 'unhealthy', reason: '3 consecutive failed checks' }],
      [subjects.deregisterCommand, { serviceId: 'vllm-2', reason: 'inactive for 90 s' }],
    ]);
  });

  it('answers false and counts a failure when registry-api refuses or does not answer', async () => {
    const before = await failures();
    const refused = clientAnswering(async () => ({ ok: false, error: { code: 'NOT_FOUND', message: 'unknown instance' } })).client;
    const silent = clientAnswering(() => Promise.reject(new Error('503'))).client;
    await expect(refused.reportHealth('gone', 'offline', 'x')).resolves.toBe(false);
    await expect(silent.deregister('gone', 'x')).resolves.toBe(false);
    expect((await failures()) - before).toBe(2);
  });
});

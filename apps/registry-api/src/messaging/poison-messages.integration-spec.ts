import { Logger } from '@nestjs/common';
import { NatsClient } from '@switchboard/messaging';
import { metricsRegistry } from '@switchboard/observability';
import { RoutingTable, routingTableRejectionsCounter } from '@switchboard/routing-table';
import { waitFor } from '@switchboard/testing';
import { BASE, registration, RunningRegistryApi, startRegistryApi, writeHeaders } from '../testing/registry-api-harness.util';

const encoder = new TextEncoder();

/** ~120 KB of nesting: passes JSON.parse, and a recursive validator runs out of stack on it. */
function deeplyNested(levels = 20_000): string {
  return `${'{"a":'.repeat(levels)}1${'}'.repeat(levels)}`;
}

/** Every kind of hostile payload as raw bytes (so nothing on the way can "fix" them), with why a heartbeat subscriber refuses it. */
function hostilePayloads(): { bytes: Uint8Array; heartbeatReason: string }[] {
  const nested = deeplyNested();
  const list: [string | Uint8Array, string][] = [
    ['not json at all {', 'not_json'],
    [Uint8Array.from({ length: 512 }, (_, i) => (i * 37 + 11) % 256), 'not_utf8'], // binary garbage
    [JSON.stringify({ metadata: { requestsPerMinute: 1, notes: 'x'.repeat(900 * 1024) } }), 'too_large'],
    [`{"metadata":${nested}}`, 'too_large'],
    [`{"specversion":"1.0","type":"switchboard.registry.registered.v1","data":{"revision":1,"instance":${nested}}}`, 'too_large'],
    [`{"serviceId":${nested},"status":"unhealthy"}`, 'too_large'],
    [`${'['.repeat(60_000)}${']'.repeat(60_000)}`, 'too_large'],
    // Under the size limits: the depth walk refuses it before class-transformer could recurse.
    [`{"metadata":${deeplyNested(10_000)}}`, 'invalid'],
    ['null', 'not_object'],
    ['42', 'not_object'],
    ['"a string"', 'not_object'],
    ['[]', 'not_object'],
    ['{"metadata":"fast"}', 'invalid'],
    ['{"metadata":{"requestsPerMinute":"fast","inflight":-1}}', 'invalid'],
    ['{"serviceId":["x"],"status":{"a":1}}', 'invalid'],
    // Not UTF-8: a lone continuation byte and an overlong encoding inside a JSON string.
    [Uint8Array.from([...encoder.encode('{"metadata":{"requestsPerMinute":1},"x":"'), 0x80, 0xc0, 0xaf, ...encoder.encode('"}')]), 'not_utf8'],
  ];
  return list.map(([payload, heartbeatReason]) => ({ bytes: typeof payload === 'string' ? encoder.encode(payload) : payload, heartbeatReason }));
}

function metric(text: string, name: string, labels: Record<string, string>): number {
  let total = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) total += Number(line.split(' ').pop());
  }
  return total;
}

/**
 * Hostile NATS payloads on every subject registry-api and the routing table listen to, while normal
 * traffic goes on: neither may go deaf (nats.js stops reading a connection whose callback throws).
 */
describe('poison messages on every subscribed subject (real NATS and PostgreSQL)', () => {
  let api: RunningRegistryApi;
  let tableNats: NatsClient;
  let table: RoutingTable;

  beforeAll(async () => {
    api = await startRegistryApi('poison');
    const registered = await api.http('POST', `${BASE}/register`, registration({ serviceName: 'poison-svc', serviceId: 'poison-1', environment: 'staging' }), writeHeaders);
    expect(registered.status).toBe(201);
    tableNats = await NatsClient.connect({ servers: api.env.natsUrl, name: 'poison-table' });
    table = new RoutingTable({ nats: tableNats, subjects: api.subjects, driftCheckIntervalMs: 0, logger: new Logger('poison-table'), messagesRejected: routingTableRejectionsCounter() });
    await table.start();
  });
  afterAll(async () => {
    table?.stop();
    await tableNats?.close();
    await api?.close();
  });

  it('keeps persisting heartbeats and routing status changes while every subject is flooded, and counts each rejection', async () => {
    const { subjects } = api;
    const targets = [
      subjects.heartbeat('staging', 'poison-svc', 'poison-1'),
      subjects.registryEvent('statusChanged', 'staging', 'poison-svc'),
      subjects.registryEvent('registered', 'staging', 'poison-svc'),
      subjects.reportHealthCommand,
      subjects.deregisterCommand,
      subjects.revisionCommand,
    ];
    const lastSeenOf = async () => Date.parse((await api.http('GET', `${BASE}/services/poison-1`)).body.service.lastSeen as string);
    const before = await lastSeenOf();
    const payloads = hostilePayloads();
    const ROUNDS = 5;
    for (let round = 0; round < ROUNDS; round++) {
      for (const subject of targets) for (const payload of payloads) api.nats.connection.publish(subject, payload.bytes);
      // Normal traffic interleaved with the flood.
      api.nats.publish(subjects.heartbeat('staging', 'poison-svc', 'poison-1'), { metadata: { requestsPerMinute: round + 1 } });
      await api.nats.connection.flush();
    }

    // registry-api still hears heartbeats: lastSeen moves on after the flood.
    const sentinelSentAt = Date.now();
    await waitFor(async () => {
      api.nats.publish(subjects.heartbeat('staging', 'poison-svc', 'poison-1'), { metadata: { requestsPerMinute: 99 } });
      return (await lastSeenOf()) >= sentinelSentAt - 5 && (await lastSeenOf()) > before;
    }, 10_000, 'a heartbeat sent after the flood to be persisted');

    // It still answers commands, and the router's table still follows status changes.
    const changed = await api.http('PUT', `${BASE}/poison-1/status`, { status: 'unhealthy', reason: 'poison test' }, writeHeaders);
    expect(changed.status).toBe(200);
    await waitFor(() => table.get('poison-1')?.status === 'unhealthy', 5000, 'the status change to reach the routing table');
    await waitFor(() => table.get('poison-1')?.load.requestsPerMinute === 99 || undefined, 5000, 'the table to hear heartbeats');
    const revision = await api.nats.request<{ revision: number }>(subjects.revisionCommand, {});
    expect(revision.revision).toBeGreaterThan(0);

    // Every hostile message was counted, under the subscription's pattern (not the concrete subject).
    const registryMetrics = await (await fetch(`${api.url}/metrics`)).text();
    const heartbeatRejected = metric(registryMetrics, 'registry_messages_rejected_total', { subject: subjects.heartbeatAll });
    expect(heartbeatRejected).toBe(ROUNDS * payloads.length);
    for (const reason of new Set(payloads.map((p) => p.heartbeatReason))) {
      const expected = ROUNDS * payloads.filter((p) => p.heartbeatReason === reason).length;
      expect({ reason, count: metric(registryMetrics, 'registry_messages_rejected_total', { subject: subjects.heartbeatAll, reason }) }).toEqual({ reason, count: expected });
    }
    expect(metric(registryMetrics, 'registry_messages_rejected_total', { subject: subjects.reportHealthCommand })).toBe(ROUNDS * payloads.length);
    expect(metric(registryMetrics, 'registry_messages_rejected_total', { subject: subjects.deregisterCommand })).toBe(ROUNDS * payloads.length);
    expect(registryMetrics).not.toContain('registry_messages_rejected_total{subject="' + subjects.heartbeat('staging', 'poison-svc', 'poison-1'));

    const tableMetrics = await metricsRegistry.getSingleMetricAsString('routing_table_messages_rejected_total');
    // Events: on two concrete subjects, counted under the one pattern.
    expect(metric(tableMetrics, 'routing_table_messages_rejected_total', { subject: subjects.registryEventsAll })).toBe(2 * ROUNDS * payloads.length);
    expect(metric(tableMetrics, 'routing_table_messages_rejected_total', { subject: subjects.heartbeatAll })).toBe(ROUNDS * payloads.length);
  });
});

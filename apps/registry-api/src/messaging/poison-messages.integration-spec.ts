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

  const ROUNDS = 5;
  const payloads = hostilePayloads();

  /** ROUNDS of every hostile payload on every subscribed subject, with normal heartbeats interleaved. */
  async function flood(): Promise<void> {
    const { subjects } = api;
    const targets = [
      subjects.heartbeat('staging', 'poison-svc', 'poison-1'),
      subjects.registryEvent('statusChanged', 'staging', 'poison-svc'),
      subjects.registryEvent('registered', 'staging', 'poison-svc'),
      subjects.reportHealthCommand,
      subjects.deregisterCommand,
      // Not registry.cmd.snapshot: the few object-shaped payloads would each read the whole registry, which says nothing here.
      subjects.revisionCommand,
    ];
    for (let round = 0; round < ROUNDS; round++) {
      for (const subject of targets) for (const payload of payloads) api.nats.connection.publish(subject, payload.bytes);
      api.nats.publish(subjects.heartbeat('staging', 'poison-svc', 'poison-1'), { metadata: { requestsPerMinute: round + 1 } });
      await api.nats.connection.flush();
    }
  }

  const scrapeRegistry = async () => (await fetch(`${api.url}/metrics`)).text();
  const scrapeTable = () => metricsRegistry.getSingleMetricAsString('routing_table_messages_rejected_total');

  it('registry-api keeps persisting heartbeats and answering commands while every subject is flooded, and counts each refusal by pattern and reason', async () => {
    const { subjects } = api;
    const lastSeenOf = async () => Date.parse((await api.http('GET', `${BASE}/services/poison-1`)).body.service.lastSeen as string);
    const before = await scrapeRegistry();
    const count = (text: string, labels: Record<string, string>) => metric(text, 'registry_messages_rejected_total', labels);
    await flood();

    // Heartbeats are still heard: one sent after the flood is persisted.
    const sentAfterFlood = Date.now();
    await waitFor(async () => {
      api.nats.publish(subjects.heartbeat('staging', 'poison-svc', 'poison-1'), { metadata: { requestsPerMinute: 99 } });
      return (await lastSeenOf()) >= sentAfterFlood;
    }, 10_000, 'a heartbeat sent after the flood to be persisted');
    // Commands are still answered, on the same subject that was flooded.
    const reply = await api.nats.request<{ ok: boolean }>(subjects.reportHealthCommand, { serviceId: 'poison-1', status: 'degraded', reason: 'after the flood' });
    expect(reply.ok).toBe(true);
    // A refused command is answered with the validation error, not left to time out.
    const refused = await api.nats.connection.request(subjects.deregisterCommand, payloads[0].bytes, { timeout: 5000 });
    expect(JSON.parse(new TextDecoder().decode(refused.data))).toMatchObject({ ok: false, error: { code: 'VALIDATION_FAILED' } });

    const after = await scrapeRegistry();
    // Every hostile message counted, under the subscription's pattern, never the concrete subject.
    for (const reason of new Set(payloads.map((p) => p.heartbeatReason))) {
      const expected = ROUNDS * payloads.filter((p) => p.heartbeatReason === reason).length;
      const counted = count(after, { subject: subjects.heartbeatAll, reason }) - count(before, { subject: subjects.heartbeatAll, reason });
      expect({ reason, counted }).toEqual({ reason, counted: expected });
    }
    for (const command of [subjects.reportHealthCommand, subjects.deregisterCommand]) {
      const extra = command === subjects.deregisterCommand ? 1 : 0;
      expect({ command, counted: count(after, { subject: command }) - count(before, { subject: command }) }).toEqual({ command, counted: ROUNDS * payloads.length + extra });
    }
    // The revision command takes no parameters; all but the object-shaped payloads are refused before any query.
    const revisionRefused = ROUNDS * payloads.filter((p) => p.heartbeatReason !== 'invalid').length;
    expect(count(after, { subject: subjects.revisionCommand }) - count(before, { subject: subjects.revisionCommand })).toBe(revisionRefused);
    expect(after).not.toContain(`registry_messages_rejected_total{subject="${subjects.heartbeat('staging', 'poison-svc', 'poison-1')}"`);
  });

  it('the routing table keeps following status changes and heartbeats while every subject is flooded, and counts each refusal', async () => {
    const { subjects } = api;
    const before = await scrapeTable();
    const count = (text: string, subject: string) => metric(text, 'routing_table_messages_rejected_total', { subject });
    await flood();

    const changed = await api.http('PUT', `${BASE}/poison-1/status`, { status: 'unhealthy', reason: 'poison test' }, writeHeaders);
    expect(changed.status).toBe(200);
    await waitFor(() => table.get('poison-1')?.status === 'unhealthy', 5000, 'the status change to reach the routing table');
    await waitFor(() => {
      api.nats.publish(subjects.heartbeat('staging', 'poison-svc', 'poison-1'), { metadata: { requestsPerMinute: 42 } });
      return table.get('poison-1')?.load.requestsPerMinute === 42;
    }, 5000, 'the table to hear a heartbeat sent after the flood');

    const after = await scrapeTable();
    // Events arrive on two concrete subjects and are counted under the one pattern.
    expect(count(after, subjects.registryEventsAll) - count(before, subjects.registryEventsAll)).toBe(2 * ROUNDS * payloads.length);
    expect(count(after, subjects.heartbeatAll) - count(before, subjects.heartbeatAll)).toBe(ROUNDS * payloads.length);
  });
});

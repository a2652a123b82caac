import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, createInbox, Msg, NatsConnection, RequestStrategy } from 'nats';
import { PrivateNatsServer } from '@switchboard/testing';
import { BASE, registration, RunningRegistryApi, startRegistryApi, writeHeaders } from '../testing/registry-api-harness.util';

/** A server whose max_payload is small (yet over the 64 KiB command limit), so that 40 instances of ~5 KiB make a snapshot of several chunks. */
const MAX_PAYLOAD = 128 * 1024;
const INSTANCES = 40;

const text = new TextDecoder();
const json = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));

/**
 * The commands are @nestjs/microservices handlers, but their wire is the plain JSON every non-Nest
 * client speaks (the SDK, admin-cli, the routing table, the prober): a bare nats.js connection sends
 * the command itself and gets the answer itself — no `{ pattern, data, id }`, no `{ response,
 * isDisposed }` — and the chunked snapshot ends with exactly one empty message.
 */
describe('registry.cmd.* to a plain nats.js client (real PostgreSQL and NATS)', () => {
  let dir: string;
  let server: PrivateNatsServer;
  let api: RunningRegistryApi;
  let nc: NatsConnection;

  const request = async (subject: string, data: Uint8Array): Promise<unknown> => JSON.parse(text.decode((await nc.request(subject, data, { timeout: 10_000 })).data));

  const rejected = async (reason: string): Promise<number> => {
    const metrics = await (await fetch(`${api.url}/metrics`)).text();
    const line = metrics.split('\n').find((l) => l.startsWith('registry_messages_rejected_total{') && l.includes(`subject="${api.subjects.reportHealthCommand}"`) && l.includes(`reason="${reason}"`));
    return line ? Number(line.split(' ').pop()) : 0;
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'sb-cmd-'));
    writeFileSync(join(dir, 'nats.conf'), `max_payload: ${MAX_PAYLOAD}\n`);
    server = await PrivateNatsServer.start({ configFile: join(dir, 'nats.conf') });
    api = await startRegistryApi('commands', { NATS_URL: server.url });
    nc = await connect({ servers: server.url, name: 'plain-nats-js' });
    for (let i = 0; i < INSTANCES; i++) {
      const res = await api.http('POST', `${BASE}/register`, registration({ serviceName: 'plain', serviceId: `plain-${i}`, metadata: { note: 'x'.repeat(4000) } }), writeHeaders);
      expect(res.status).toBe(201);
    }
  }, 60_000);

  afterAll(async () => {
    await nc?.close();
    await api?.close();
    await server?.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers registry.cmd.revision with the highest revision itself', async () => {
    const { revision } = await api.writeState();
    expect(await request(api.subjects.revisionCommand, json({}))).toEqual({ revision });
  });

  it('applies registry.cmd.reportHealth and answers { ok, changed, revision }; a DTO refusal and an unknown instance are answers too', async () => {
    const reply = await request(api.subjects.reportHealthCommand, json({ serviceId: 'plain-1', status: 'unhealthy', reason: 'checks failed' }));
    const { revision } = await api.writeState();
    expect(reply).toEqual({ ok: true, changed: true, revision });

    const invalidBefore = await rejected('invalid');
    expect(await request(api.subjects.reportHealthCommand, json({ serviceId: 'plain-1', status: 'sleepy' }))).toEqual({
      ok: false,
      error: { code: 'VALIDATION_FAILED', message: expect.any(String), errors: [{ field: 'status', reason: expect.any(String) }] },
    });
    expect(await rejected('invalid')).toBe(invalidBefore + 1);
    expect(await request(api.subjects.reportHealthCommand, json({ serviceId: 'ghost', status: 'healthy' }))).toEqual({
      ok: false,
      error: { code: 'INSTANCE_NOT_FOUND', message: expect.any(String) },
    });
  });

  it('answers malformed bytes VALIDATION_FAILED on "(body)", counts them by reason, and goes on answering', async () => {
    const cases: [Uint8Array, string][] = [
      [new TextEncoder().encode('{"serviceId":'), 'not_json'],
      [new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]), 'not_utf8'],
      [json(['an', 'array']), 'not_object'],
      [new Uint8Array(64 * 1024 + 1).fill(0x20), 'too_large'],
    ];
    for (const [data, reason] of cases) {
      const before = await rejected(reason);
      expect(await request(api.subjects.reportHealthCommand, data)).toEqual({
        ok: false,
        error: { code: 'VALIDATION_FAILED', message: expect.any(String), errors: [{ field: '(body)', reason: expect.any(String) }] },
      });
      expect(await rejected(reason)).toBe(before + 1);
    }
    expect(await request(api.subjects.revisionCommand, json({}))).toEqual({ revision: expect.any(Number) });
  });

  it('deregisters on registry.cmd.deregister and answers { ok: true, serviceId, … }', async () => {
    expect(await request(api.subjects.deregisterCommand, json({ serviceId: 'plain-39', reason: 'silent' }))).toMatchObject({ ok: true, serviceId: 'plain-39' });
    expect((await api.http('GET', `${BASE}/services/plain-39`)).status).toBe(404);
  });

  it('sends the snapshot as plain JSON chunks under max_payload, then exactly one empty message', async () => {
    const inbox = createInbox();
    const replies: Msg[] = [];
    const sub = nc.subscribe(inbox);
    nc.publish(api.subjects.snapshotCommand, json({}), { reply: inbox });
    // Then a revision request answered on the same inbox: the responder's messages arrive in the order
    // it sent them, so whatever the snapshot sent after its sentinel would come before this answer.
    let asked = false;
    for await (const msg of sub) {
      replies.push(msg);
      if (!msg.data.length && !asked) {
        asked = true;
        nc.publish(api.subjects.revisionCommand, json({}), { reply: inbox });
      } else if (asked) break;
    }
    sub.unsubscribe();
    const last = replies.pop();
    const revisionReply = JSON.parse(text.decode(last?.data ?? new Uint8Array()));
    expect(revisionReply).toEqual({ revision: expect.any(Number) });
    expect(replies.filter((m) => !m.data.length)).toHaveLength(1);
    expect(replies[replies.length - 1].data.length).toBe(0);

    const chunks = replies.slice(0, -1).map((m) => {
      expect(m.data.length).toBeLessThanOrEqual(MAX_PAYLOAD);
      return JSON.parse(text.decode(m.data)) as { revision: number; instances: { serviceId: string }[]; tombstones: [string, number][] };
    });
    expect(chunks.length).toBeGreaterThan(1);
    for (const chunk of chunks) expect(Object.keys(chunk).sort()).toEqual(['instances', 'revision', 'tombstones']);
    const ids = chunks.flatMap((c) => c.instances.map((i) => i.serviceId)).sort();
    expect(ids).toEqual(Array.from({ length: INSTANCES - 1 }, (_, i) => `plain-${i}`).sort());
    expect(chunks.flatMap((c) => c.tombstones.map(([id]) => id))).toContain('plain-39');
    expect(new Set(chunks.map((c) => c.revision))).toEqual(new Set([revisionReply.revision]));
  });

  it('answers the chunked snapshot to nats.js requestMany (the routing table\'s sentinel strategy)', async () => {
    const chunks: unknown[] = [];
    for await (const msg of await nc.requestMany(api.subjects.snapshotCommand, json({ view: 'routing' }), { strategy: RequestStrategy.SentinelMsg, maxWait: 10_000 })) {
      if (!msg.data.length) break;
      chunks.push(JSON.parse(text.decode(msg.data)));
    }
    expect(chunks.length).toBeGreaterThan(0);
    expect(chunks.flatMap((c) => (c as { instances: unknown[] }).instances)).toHaveLength(INSTANCES - 1);
    expect(await request(api.subjects.snapshotCommand, json({ view: 'everything' }))).toMatchObject({ ok: false, error: { code: 'VALIDATION_FAILED' } });
  });
});

import { DataSource } from 'typeorm';
import type { RegistrySnapshot, ServiceInstanceView } from '@switchboard/contracts';
import { adminHeaders, BASE, RunningRegistryApi, startRegistryApi } from '../testing/registry-api-harness.util';

/** The fields a routing table keeps (`{ view: 'routing' }`). */
const ROUTING_FIELDS = ['serviceId', 'serviceName', 'environment', 'models', 'internalUrl', 'healthCheckEndpoint', 'healthCheck', 'status', 'adminState', 'routable', 'load', 'revision'];
/** A row as registry-api writes one (the columns of service_instances, revision aside). */
const BASE_ROW: Record<string, unknown> = {
  service_name: 'svc',
  environment: 'production',
  region: 'nyc1',
  vm_ip: '174.138.68.108',
  internal_port: 3008,
  external_domain: 'llm.example.net',
  version: '1.2.0',
  deployment_id: 'manual',
  namespace: null,
  kind: 'service',
  capabilities: ['llm', 'streaming'],
  models: [],
  health_check_endpoint: '/health',
  health_check: {},
  metadata: { providers: ['openai'] },
  required_environment_vars: [{ name: 'OPENAI_API_KEY', type: 'secret', required: true }],
  status: 'healthy',
  admin_state: 'enabled',
  load: {},
  last_seen: null,
  registered_at: new Date('2026-11-29T08:00:00.123Z'),
  updated_at: new Date('2026-11-30T09:30:00.999Z'),
};
const JSONB = new Set(['health_check', 'metadata', 'required_environment_vars', 'load']);
/** Rows cloned in SQL: over two pages (2,000 each) and, with ~1 KiB of metadata each, over several chunks. */
const CLONES = 4321;

/**
 * registry.cmd.snapshot builds each instance's JSON in PostgreSQL: it must be the instance view that
 * registry-api's own `toInstanceView` gives over REST, field for field, and its chunks must split the
 * registry without losing or repeating an instance.
 */
describe('registry.cmd.snapshot (real PostgreSQL and NATS)', () => {
  let api: RunningRegistryApi;
  let deregisteredAt: number;

  const snapshot = async (payload: Record<string, unknown>) => {
    const chunks = await api.nats.requestChunks<RegistrySnapshot>(api.subjects.snapshotCommand, payload, 30_000);
    return {
      chunks,
      instances: chunks.flatMap((c) => c.instances),
      tombstones: chunks.flatMap((c) => c.tombstones ?? []),
    };
  };

  beforeAll(async () => {
    api = await startRegistryApi('snapshot');
    // Rows written in SQL: this spec is about the read path, whatever the write path does, and
    // thousands of registrations over REST would be slow.
    const db = api.app.get(DataSource);
    const insert = async (row: Record<string, unknown>) => {
      const values = { ...BASE_ROW, ...row };
      const columns = Object.keys(values);
      await db.query(
        `INSERT INTO service_instances (${columns.join(', ')}, revision) VALUES (${columns.map((_, i) => `$${i + 1}`).join(', ')}, nextval('registry_revision_seq'))`,
        // jsonb columns as JSON text (pg sends a JS array as a PostgreSQL array).
        Object.entries(values).map(([c, v]) => (JSONB.has(c) ? JSON.stringify(v) : v)),
      );
    };
    await insert({ service_id: 'v4-1', last_seen: new Date('2026-11-30T10:11:12.345Z'), load: { requestsPerMinute: 12, averageLatency: 3.25 } });
    await insert({ service_id: 'v6-1', vm_ip: '2001:db8::17', external_domain: null, models: ['llama-3-8b', 'mistral-7b'] });
    await insert({ service_id: 'host-1', vm_ip: 'backend.internal.example', external_domain: '', namespace: 'ml', metadata: { note: 'ünïcödé ✓ "quoted" \\ slash', nested: { n: [1, 2.5, null] } } });
    await insert({ service_id: 'checks-1', health_check: { intervalMs: 5000, unhealthyThreshold: 2, enabled: true }, health_check_endpoint: '/ready' });
    await insert({ service_id: 'disabled-1', status: 'degraded', admin_state: 'disabled' });
    const [gone] = await db.query(`INSERT INTO service_tombstones (service_id, service_name, environment, revision, deleted_at) VALUES ('gone-1', 'svc', 'production', nextval('registry_revision_seq'), now()) RETURNING revision::int AS revision`);
    deregisteredAt = gone.revision;
    // Clones of host-1 with fresh ids and ~1 KiB of metadata each.
    const columns: string[] = (await db.query(`SELECT column_name FROM information_schema.columns WHERE table_name = 'service_instances' ORDER BY ordinal_position`)).map(
      (r: { column_name: string }) => r.column_name,
    );
    const values = columns.map((c) =>
      c === 'service_id' ? `'clone-' || lpad(g::text, 5, '0')` : c === 'revision' ? `nextval('registry_revision_seq')` : c === 'metadata' ? `jsonb_build_object('pad', repeat('x', 1000), 'g', g)` : `"${c}"`,
    );
    await db.query(
      `INSERT INTO service_instances (${columns.map((c) => `"${c}"`).join(', ')})
       SELECT ${values.join(', ')} FROM service_instances, generate_series(1, $1::int) AS g WHERE service_id = 'host-1'`,
      [CLONES],
    );
  });

  afterAll(async () => {
    await api?.close();
  });

  it('sends every field of each instance exactly as the REST view shows it, and the tombstones', async () => {
    const rest = (await api.http('GET', `${BASE}/snapshot`, undefined, adminHeaders)).body as RegistrySnapshot;
    const nats = await snapshot({});

    expect(nats.instances.length).toBe(rest.instances.length);
    const byId = new Map(nats.instances.map((i) => [i.serviceId, i]));
    for (const view of rest.instances) expect({ id: view.serviceId, view: byId.get(view.serviceId) }).toEqual({ id: view.serviceId, view });
    expect(byId.get('v6-1')).toMatchObject({ internalUrl: 'http://[2001:db8::17]:3008', externalUrl: null, externalDomain: null });
    expect(byId.get('host-1')).toMatchObject({ internalUrl: 'http://backend.internal.example:3008', externalUrl: null, namespace: 'ml' });
    expect(byId.get('v4-1')).toMatchObject({ lastSeen: '2026-11-30T10:11:12.345Z', externalUrl: 'https://llm.example.net', load: { requestsPerMinute: 12 } });
    expect(byId.get('disabled-1')).toMatchObject({ routable: false, adminState: 'disabled', status: 'degraded' });
    expect(nats.tombstones).toEqual([['gone-1', deregisteredAt]]);
    expect(new Set(nats.chunks.map((c) => c.revision))).toEqual(new Set([rest.revision]));
  });

  it('splits the registry into chunks under the server max_payload with nothing lost or repeated, and sends only the routing fields when asked', async () => {
    const maxPayload = api.nats.connection.info?.max_payload ?? 1024 * 1024;
    const full = await snapshot({});
    const routing = await snapshot({ view: 'routing' });

    for (const { chunks } of [full, routing]) {
      expect(chunks.length).toBeGreaterThan(1);
      for (const chunk of chunks) expect(Buffer.byteLength(JSON.stringify(chunk))).toBeLessThanOrEqual(maxPayload);
    }
    const ids = full.instances.map((i) => i.serviceId);
    expect(ids.length).toBe(CLONES + 5);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids).toEqual([...ids].sort());
    expect(routing.instances.map((i) => i.serviceId)).toEqual(ids);

    const pick = (view: ServiceInstanceView) => Object.fromEntries(ROUTING_FIELDS.map((f) => [f, view[f as keyof ServiceInstanceView]]));
    expect(routing.instances).toEqual(full.instances.map(pick));
    expect(routing.tombstones).toEqual(full.tombstones);
  });

  it('refuses an unknown view', async () => {
    // A refusal is one answer, no sentinel: a requester stops at the first chunk that is an error.
    const answer = await api.nats.request<{ ok: boolean; error: { code: string } }>(api.subjects.snapshotCommand, { view: 'everything' });
    expect(answer).toMatchObject({ ok: false, error: { code: 'VALIDATION_FAILED' } });
  });
});

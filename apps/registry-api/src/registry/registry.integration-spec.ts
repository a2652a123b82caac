import { encodeJson } from '@switchboard/messaging';
import { waitFor } from '@switchboard/testing';
import { DataSource } from 'typeorm';
import { TombstonePrunerService } from '../writes/tombstone-pruner.service';
import { ADMIN_TOKEN, adminHeaders, BASE, registration, RunningRegistryApi, startRegistryApi, writeHeaders } from '../testing/registry-api-harness.util';

describe('registry-api REST (real PostgreSQL and NATS)', () => {
  let api: RunningRegistryApi;

  beforeAll(async () => {
    api = await startRegistryApi('registry');
  });
  afterAll(async () => {
    await api?.close();
  });

  const register = (overrides: Record<string, unknown> = {}, headers: Record<string, string> = writeHeaders) =>
    api.http('POST', `${BASE}/register`, registration(overrides), headers);

  const settled = () => api.settledEvents();

  describe('register', () => {
    it('registers an instance, generates its URLs and publishes exactly one registered event with its revision', async () => {
      const before = (await settled()).length;
      const traceId = 'aa'.repeat(16);
      const res = await register({ serviceId: 'reg-1' }, { ...writeHeaders, traceparent: `00-${traceId}-${'bb'.repeat(8)}-01` });

      expect(res.status).toBe(201);
      expect(res.body).toMatchObject({ success: true, created: true, changed: true });
      expect(res.body.service).toMatchObject({
        serviceId: 'reg-1',
        serviceName: 'mech-llms',
        internalUrl: 'http://174.138.68.108:3008',
        externalUrl: 'https://llm.mechdna.net',
        status: 'healthy',
        adminState: 'enabled',
        routable: true,
        capabilities: ['llm', 'streaming'],
      });
      const revision = res.body.service.revision;
      expect(revision).toBeGreaterThan(0);

      const events = (await settled()).slice(before);
      expect(events).toHaveLength(1);
      const [event] = events;
      expect(event.kind).toBe('registered');
      expect(event.subject).toBe(`${api.subjects.prefix}.registry.events.registered.production.mech-llms`);
      expect(event.msgId).toBe(String(revision));
      expect(event.event).toMatchObject({ specversion: '1.0', id: String(revision), type: 'switchboard.registry.registered.v1', subject: 'reg-1', source: 'switchboard/registry-api' });
      expect(event.event.data.revision).toBe(revision);
      expect(event.traceparent).toMatch(new RegExp(`^00-${traceId}-[0-9a-f]{16}-01$`));
    });

    it('treats an identical re-registration as a no-op and a changed one as an update with a new revision', async () => {
      const first = await register({ serviceId: 'reg-2' });
      const before = (await settled()).length;

      const same = await register({ serviceId: 'reg-2' });
      expect(same.status).toBe(200);
      expect(same.body).toMatchObject({ created: false, changed: false });
      expect(same.body.service.revision).toBe(first.body.service.revision);

      const updated = await register({ serviceId: 'reg-2', version: '1.3.0' });
      expect(updated.status).toBe(200);
      expect(updated.body).toMatchObject({ created: false, changed: true, service: { version: '1.3.0' } });
      expect(updated.body.service.revision).toBeGreaterThan(first.body.service.revision);

      const events = (await settled()).slice(before);
      expect(events.map((e) => e.event.data.revision)).toEqual([updated.body.service.revision]);
      expect((await api.http('GET', `${BASE}/services?serviceName=mech-llms`)).body.services.filter((s: { serviceId: string }) => s.serviceId === 'reg-2')).toHaveLength(1);
    });

    it('keeps an operator-set admin state when the service re-registers', async () => {
      await register({ serviceId: 'reg-3' });
      await api.http('PUT', `${BASE}/reg-3/status`, { adminState: 'disabled' }, writeHeaders);
      const again = await register({ serviceId: 'reg-3', version: '2.0.0' });
      expect(again.body.service).toMatchObject({ adminState: 'disabled', routable: false });
    });

    it('rejects bad input with 400 naming each field and why, and writes nothing', async () => {
      const countBefore = (await api.http('GET', `${BASE}/services`)).body.count;
      const eventsBefore = (await settled()).length;

      const res = await api.http(
        'POST',
        `${BASE}/register`,
        {
          serviceName: 'has spaces',
          serviceId: 'bad.id',
          vmIp: 'not an ip!',
          internalPort: 70000,
          externalDomain: 'llm.mechdna.net',
          version: '1',
          deploymentId: 'd',
          environment: 'prod',
          metadata: { blob: 'x'.repeat(20_000) },
          surprise: true,
        },
        writeHeaders,
      );
      expect(res.status).toBe(400);
      expect(res.body).toMatchObject({ success: false, statusCode: 400, error: 'VALIDATION_FAILED' });
      const fields = Object.fromEntries(res.body.errors.map((e: { field: string; reason: string }) => [e.field, e.reason]));
      expect(fields).toMatchObject({
        serviceName: expect.stringContaining('letters, digits'),
        serviceId: expect.stringContaining('letters, digits'),
        vmIp: expect.stringContaining('IP address or a hostname'),
        internalPort: expect.stringContaining('65535'),
        environment: expect.stringContaining('production, staging, development'),
        region: 'region is required',
        metadata: expect.stringContaining('16384 bytes'),
        surprise: expect.stringContaining('should not exist'),
      });

      const portZero = await register({ serviceId: 'p0', internalPort: 0 });
      expect(portZero.body.errors).toEqual([{ field: 'internalPort', reason: 'internalPort must not be less than 1' }]);

      const malformed = await api.http('POST', `${BASE}/register`, '{"serviceName": ', writeHeaders);
      expect(malformed.status).toBe(400);
      expect(malformed.body.errors[0].field).toBe('(body)');

      const huge = await register({ serviceId: 'huge', capabilities: Array.from({ length: 40 }, () => 'c'.repeat(60)), metadata: { a: 'x'.repeat(300_000) } });
      expect(huge.status).toBe(413);
      expect(huge.body.error).toBe('PAYLOAD_TOO_LARGE');

      expect((await api.http('GET', `${BASE}/services`)).body.count).toBe(countBefore);
      expect((await settled()).length).toBe(eventsBefore);
    });

    it('accepts hostnames and IPv6 addresses as vmIp', async () => {
      const host = await register({ serviceId: 'host-1', vmIp: 'vllm-0.inference.svc.cluster.local' });
      expect(host.body.service.internalUrl).toBe('http://vllm-0.inference.svc.cluster.local:3008');
      const v6 = await register({ serviceId: 'v6-1', vmIp: '2001:db8::1' });
      expect(v6.body.service.internalUrl).toBe('http://[2001:db8::1]:3008');
    });
  });

  describe('tokens', () => {
    it('answers 401 without a token and 403 with a wrong one, writing nothing', async () => {
      const missing = await register({ serviceId: 'tok-1' }, {});
      expect(missing.status).toBe(401);
      expect(missing.body.message).toContain('X-Registry-Token');
      const wrong = await register({ serviceId: 'tok-1' }, { 'x-registry-token': 'not-the-token' });
      expect(wrong.status).toBe(403);
      expect((await api.http('GET', `${BASE}/services/tok-1`)).status).toBe(404);
    });

    it('accepts the admin token for writes but only the admin token for admin calls', async () => {
      expect((await register({ serviceId: 'tok-2' }, { 'x-admin-token': ADMIN_TOKEN })).status).toBe(201);
      expect((await api.http('POST', `${BASE}/health-checks`, undefined, writeHeaders)).status).toBe(401);
      expect((await api.http('POST', `${BASE}/health-checks`, undefined, { 'x-admin-token': 'dev-registry-token' })).status).toBe(403);
    });
  });

  describe('list, get, discover', () => {
    beforeAll(async () => {
      await register({ serviceName: 'disc', serviceId: 'disc-a', capabilities: ['gpu'] });
      await register({ serviceName: 'disc', serviceId: 'disc-b', capabilities: ['cpu'] });
      await register({ serviceName: 'disc', serviceId: 'disc-c', environment: 'staging' });
      await register({ serviceName: 'disc', serviceId: 'disc-d', status: 'degraded' });
    });

    it('filters the list by serviceName, environment, status and capability', async () => {
      const ids = async (query: string) =>
        (await api.http('GET', `${BASE}/services?${query}`)).body.services.map((s: { serviceId: string }) => s.serviceId).sort();
      expect(await ids('serviceName=disc')).toEqual(['disc-a', 'disc-b', 'disc-c', 'disc-d']);
      expect(await ids('serviceName=disc&environment=staging')).toEqual(['disc-c']);
      expect(await ids('serviceName=disc&status=degraded')).toEqual(['disc-d']);
      expect(await ids('serviceName=disc&capability=gpu')).toEqual(['disc-a']);
      expect((await api.http('GET', `${BASE}/services?status=sleepy`)).status).toBe(400);
    });

    it('gets one instance, 404 for an unknown one', async () => {
      const res = await api.http('GET', `${BASE}/services/disc-a`);
      expect(res.body).toMatchObject({ success: true, service: { serviceId: 'disc-a', capabilities: ['gpu'] } });
      const missing = await api.http('GET', `${BASE}/services/nope`);
      expect(missing.status).toBe(404);
      expect(missing.body).toMatchObject({ success: false, error: 'INSTANCE_NOT_FOUND' });
    });

    it('discovers healthy instances before degraded ones, spreading calls across them', async () => {
      const picks = new Set<string>();
      for (let i = 0; i < 6; i++) {
        const res = await api.http('GET', `${BASE}/discover/disc?environment=production`);
        expect(res.status).toBe(200);
        picks.add(res.body.service.serviceId);
      }
      expect([...picks].sort()).toEqual(['disc-a', 'disc-b']);
    });

    it('falls back to degraded, then answers 503 when nothing is routable and 404 for an unknown service', async () => {
      await api.http('PUT', `${BASE}/disc-a/status`, { status: 'unhealthy' }, writeHeaders);
      await api.http('PUT', `${BASE}/disc-b/status`, { adminState: 'disabled' }, writeHeaders);
      expect((await api.http('GET', `${BASE}/discover/disc?environment=production`)).body.service.serviceId).toBe('disc-d');

      await api.http('PUT', `${BASE}/disc-d/status`, { status: 'offline' }, writeHeaders);
      const none = await api.http('GET', `${BASE}/discover/disc?environment=production`);
      expect(none.status).toBe(503);
      expect(none.body.message).toContain('disc-a: unhealthy');
      expect(none.body.message).toContain('disc-b: disabled');

      expect((await api.http('GET', `${BASE}/discover/ghost`)).status).toBe(404);
    });
  });

  describe('heartbeat', () => {
    it('persists lastSeen and load figures from a REST heartbeat and republishes it on NATS', async () => {
      await register({ serviceName: 'hb', serviceId: 'hb-1', environment: 'staging' });
      const seen: unknown[] = [];
      const sub = api.nats.subscribe(api.subjects.heartbeat('staging', 'hb', 'hb-1'), (msg) => seen.push(JSON.parse(new TextDecoder().decode(msg.data))));
      await api.nats.connection.flush();

      const sentAt = Date.now();
      const res = await api.http('POST', `${BASE}/hb-1/heartbeat`, { metadata: { requestsPerMinute: 45, averageLatency: 250, errorRate: 0.01 } }, writeHeaders);
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ success: true, serviceId: 'hb-1' });

      const stored = await waitFor(async () => {
        const s = (await api.http('GET', `${BASE}/services/hb-1`)).body.service;
        return s.load.requestsPerMinute === 45 ? s : undefined;
      });
      expect(stored.load).toEqual({ requestsPerMinute: 45, averageLatency: 250, errorRate: 0.01 });
      expect(Date.parse(stored.lastSeen)).toBeGreaterThanOrEqual(sentAt - 1000);
      await waitFor(() => seen.length > 0);
      expect(seen[0]).toEqual({ metadata: { requestsPerMinute: 45, averageLatency: 250, errorRate: 0.01 } });
      sub.unsubscribe();
    });

    it('answers 404 for an unknown instance and 400 for bad load figures', async () => {
      expect((await api.http('POST', `${BASE}/ghost/heartbeat`, {}, writeHeaders)).status).toBe(404);
      const bad = await api.http('POST', `${BASE}/hb-1/heartbeat`, { metadata: { errorRate: 3 } }, writeHeaders);
      expect(bad.status).toBe(400);
      expect(bad.body.errors[0]).toEqual({ field: 'metadata.errorRate', reason: 'errorRate must not be greater than 1' });
    });
  });

  describe('status', () => {
    it('publishes statusChanged with from, to and reason; an unchanged status publishes nothing', async () => {
      await register({ serviceName: 'st', serviceId: 'st-1' });
      const before = (await settled()).length;

      const res = await api.http('PUT', `${BASE}/st-1/status`, { status: 'degraded', reason: 'slow' }, writeHeaders);
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ changed: true, service: { status: 'degraded', routable: true } });
      const again = await api.http('PUT', `${BASE}/st-1/status`, { status: 'degraded' }, writeHeaders);
      expect(again.body.changed).toBe(false);

      const events = (await settled()).slice(before);
      expect(events).toHaveLength(1);
      expect(events[0].kind).toBe('statusChanged');
      expect(events[0].subject).toBe(`${api.subjects.prefix}.registry.events.statusChanged.production.st`);
      expect(events[0].event.data).toMatchObject({
        revision: res.body.service.revision,
        from: { status: 'healthy', adminState: 'enabled' },
        to: { status: 'degraded', adminState: 'enabled' },
        reason: 'slow',
      });
    });

    it('rejects an empty or invalid change and an unknown instance', async () => {
      expect((await api.http('PUT', `${BASE}/st-1/status`, {}, writeHeaders)).status).toBe(400);
      const bad = await api.http('PUT', `${BASE}/st-1/status`, { status: 'sleepy' }, writeHeaders);
      expect(bad.body.errors).toEqual([{ field: 'status', reason: 'status must be one of: healthy, degraded, unhealthy, offline' }]);
      expect((await api.http('PUT', `${BASE}/ghost/status`, { status: 'healthy' }, writeHeaders)).status).toBe(404);
    });
  });

  describe('deregister and snapshot', () => {
    it('removes the instance, publishes deregistered, and the snapshot counts the tombstone revision', async () => {
      await register({ serviceName: 'gone', serviceId: 'gone-1' });
      const before = (await settled()).length;
      const res = await api.http('DELETE', `${BASE}/services/gone-1`, undefined, writeHeaders);
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ success: true, serviceId: 'gone-1' });
      expect((await api.http('GET', `${BASE}/services/gone-1`)).status).toBe(404);
      expect((await api.http('DELETE', `${BASE}/services/gone-1`, undefined, writeHeaders)).status).toBe(404);

      const [event] = (await settled()).slice(before);
      expect(event).toMatchObject({ kind: 'deregistered', event: { data: { revision: res.body.revision, serviceId: 'gone-1', serviceName: 'gone', environment: 'production' } } });

      const snapshot = await api.http('GET', `${BASE}/snapshot`, undefined, adminHeaders);
      expect(snapshot.body.revision).toBe(res.body.revision);
      expect(snapshot.body.instances.find((i: { serviceId: string }) => i.serviceId === 'gone-1')).toBeUndefined();
      // Its tombstone, so a late, older event of gone-1 cannot bring it back into a consumer's table.
      expect(snapshot.body.tombstones).toContainEqual(['gone-1', res.body.revision]);
    });

    it('forgets tombstones older than twice the stream retention, except the newest, which keeps the highest revision', async () => {
      for (const id of ['old-1', 'old-2', 'recent-1']) await register({ serviceName: 'old', serviceId: id });
      const revisions: number[] = [];
      for (const id of ['old-1', 'old-2']) revisions.push((await api.http('DELETE', `${BASE}/services/${id}`, undefined, writeHeaders)).body.revision);
      const dataSource = api.app.get(DataSource);
      // Deleted 15 days ago (the default retention is 2 × 168 h = 14 days); recent-1 now, after them.
      await dataSource.query(`UPDATE service_tombstones SET deleted_at = now() - interval '15 days' WHERE service_id = ANY($1)`, [['old-1', 'old-2']]);
      const newest = (await api.http('DELETE', `${BASE}/services/recent-1`, undefined, writeHeaders)).body.revision;
      const highest = (await api.nats.request<{ revision: number }>(api.subjects.revisionCommand, {})).revision;

      expect(await api.app.get(TombstonePrunerService).prune()).toBe(2);
      const tombstones = (await api.http('GET', `${BASE}/snapshot`, undefined, adminHeaders)).body.tombstones as [string, number][];
      expect(tombstones.map(([id]) => id)).not.toEqual(expect.arrayContaining(['old-1']));
      expect(tombstones.map(([id]) => id)).not.toEqual(expect.arrayContaining(['old-2']));
      expect(tombstones).toContainEqual(['recent-1', newest]);
      expect(revisions.every((r) => r < newest)).toBe(true);
      expect((await api.nats.request<{ revision: number }>(api.subjects.revisionCommand, {})).revision).toBe(highest);
    });

    it('answers the same snapshot over REST and over NATS registry.cmd.snapshot, and its revision on registry.cmd.revision', async () => {
      const rest = (await api.http('GET', `${BASE}/snapshot`, undefined, adminHeaders)).body;
      const [nats, ...more] = await api.nats.requestChunks<{ revision: number; instances: { serviceId: string; revision: number }[] }>(api.subjects.snapshotCommand, {});
      expect(more).toEqual([]);
      expect(nats.revision).toBe(rest.revision);
      expect(nats.instances.map((i) => i.serviceId)).toEqual(rest.instances.map((i: { serviceId: string }) => i.serviceId));
      expect(Math.max(...nats.instances.map((i) => i.revision))).toBeLessThanOrEqual(nats.revision);
      expect(nats.instances.length).toBeGreaterThan(5);
      expect(await api.nats.request(api.subjects.revisionCommand, {})).toEqual({ revision: rest.revision });
    });
  });

  describe('commands from other apps over NATS', () => {
    it('applies a reported health verdict as a status change with its reason, and validates it', async () => {
      await register({ serviceName: 'cmd', serviceId: 'cmd-1', healthCheck: { intervalMs: 5000, unhealthyThreshold: 2 } });
      expect((await api.http('GET', `${BASE}/services/cmd-1`)).body.service.healthCheck).toEqual({ intervalMs: 5000, unhealthyThreshold: 2 });
      const before = (await settled()).length;

      const reply = await api.nats.request<{ ok: boolean; changed: boolean; revision: number }>(api.subjects.reportHealthCommand, { serviceId: 'cmd-1', status: 'unhealthy', reason: '3 failed checks' });
      expect(reply).toMatchObject({ ok: true, changed: true });
      const [event] = (await settled()).slice(before);
      expect(event).toMatchObject({ kind: 'statusChanged', event: { data: { revision: reply.revision, reason: '3 failed checks', to: { status: 'unhealthy' } } } });

      expect(await api.nats.request(api.subjects.reportHealthCommand, { serviceId: 'cmd-1', status: 'sleepy' })).toMatchObject({ ok: false, error: { code: 'VALIDATION_FAILED' } });
      expect(await api.nats.request(api.subjects.reportHealthCommand, { serviceId: 'ghost', status: 'healthy' })).toMatchObject({ ok: false, error: { code: 'INSTANCE_NOT_FOUND' } });
    });

    it('deregisters on request (pruning)', async () => {
      await register({ serviceName: 'cmd', serviceId: 'cmd-2' });
      expect(await api.nats.request(api.subjects.deregisterCommand, { serviceId: 'cmd-2', reason: 'silent for 24 h' })).toMatchObject({ ok: true, serviceId: 'cmd-2' });
      expect((await api.http('GET', `${BASE}/services/cmd-2`)).status).toBe(404);
    });

    it('rejects bad per-instance check settings at registration', async () => {
      const res = await register({ serviceId: 'cmd-3', healthCheck: { intervalMs: 10, unhealthyThreshold: 0 } });
      expect(res.status).toBe(400);
      expect(res.body.errors.map((e: { field: string }) => e.field).sort()).toEqual(['healthCheck.intervalMs', 'healthCheck.unhealthyThreshold']);
    });
  });

  describe('health checks command', () => {
    it('answers 503 when no prober runs, and relays the prober summary when one answers', async () => {
      const none = await api.http('POST', `${BASE}/health-checks`, undefined, { 'x-admin-token': ADMIN_TOKEN });
      expect(none.status).toBe(503);
      expect(none.body).toMatchObject({ error: 'PROBER_UNAVAILABLE', message: expect.stringContaining('no health-prober is running') });

      // A stand-in for health-prober on the real NATS subject.
      const summary = { checked: 3, healthy: 2, degraded: 0, unhealthy: 1, tookMs: 12 };
      const sub = api.nats.subscribe(api.subjects.proberRunChecksCommand, (msg) => msg.respond(encodeJson(summary)));
      await api.nats.connection.flush();
      const ok = await api.http('POST', `${BASE}/health-checks`, undefined, { 'x-admin-token': ADMIN_TOKEN });
      expect(ok.status).toBe(200);
      expect(ok.body).toEqual({ success: true, summary });
      sub.unsubscribe();
    });
  });

  describe('operations endpoints', () => {
    it('reports database and NATS in /health, Prometheus text on /metrics, and the OpenAPI document', async () => {
      const health = await api.http('GET', '/health');
      expect(health.status).toBe(200);
      expect(health.body.details).toMatchObject({ database: { status: 'up' }, nats: { status: 'up' } });

      const metrics = await fetch(`${api.url}/metrics`);
      const text = await metrics.text();
      expect(metrics.headers.get('content-type')).toContain('text/plain');
      expect(text).toMatch(/registry_writes_total\{kind="registered",app="registry-api"\} \d+/);
      expect(text).toContain('registry_outbox_publish_lag_seconds_bucket');

      const openapi = (await api.http('GET', '/api/docs/openapi.json')).body;
      expect(Object.keys(openapi.paths)).toEqual(
        expect.arrayContaining([
          `${BASE}/register`,
          `${BASE}/services`,
          `${BASE}/services/{serviceId}`,
          `${BASE}/discover/{serviceName}`,
          `${BASE}/{serviceId}/heartbeat`,
          `${BASE}/{serviceId}/status`,
          `${BASE}/health-checks`,
          `${BASE}/snapshot`,
          `${BASE}/models`,
        ]),
      );
      expect((await fetch(`${api.url}/api/docs`)).status).toBe(200);
    });
  });
});

import { waitFor } from '@switchboard/testing';
import { adminHeaders, BASE, registration, RunningRegistryApi, startRegistryApi, writeHeaders } from '../testing/registry-api-harness.util';

const READ_TOKEN = 'read-token-for-tests';
const readHeaders = { 'x-registry-token': READ_TOKEN };
type FieldError = { field: string; reason: string };

describe('registry-api security (real PostgreSQL and NATS)', () => {
  let api: RunningRegistryApi;

  beforeAll(async () => {
    api = await startRegistryApi('security', {
      REGISTRY_READ_TOKEN: READ_TOKEN,
      REGISTRY_ALLOWED_ENDPOINTS: '174.138.68.0/24:3000-3999, 10.0.0.0/8, [fd00::/8]:8000, *.svc.cluster.local:8000',
    });
  });
  afterAll(async () => {
    await api?.close();
  });

  const register = (overrides: Record<string, unknown> = {}) => api.http('POST', `${BASE}/register`, registration(overrides), writeHeaders);
  const get = (path: string, headers: Record<string, string> = readHeaders) => api.http('GET', `${BASE}${path}`, undefined, headers);

  /** Sends `request` and expects 400 naming exactly these fields, with nothing written. */
  async function refused(request: () => Promise<{ status: number; body: { errors?: FieldError[] } }>, fields: string[], reason?: RegExp) {
    const before = await api.writeState();
    const res = await request();
    expect(res.status).toBe(400);
    expect(res.body.errors?.map((e) => e.field)).toEqual(fields);
    if (reason) expect(res.body.errors?.[0].reason).toMatch(reason);
    expect(await api.writeState()).toEqual(before);
    return res;
  }

  describe('control characters (U+0000 was a 500 from PostgreSQL)', () => {
    it('refuses U+0000 in any string of a registration, naming the field, and writes nothing', async () => {
      await refused(() => register({ serviceId: 'nul-1', version: '1.0\u0000' }), ['version'], /must not contain U\+0000/);
      await refused(() => register({ serviceId: 'nul-1', metadata: { notes: ['ok', 'a\u0000b'] } }), ['metadata.notes.1'], /U\+0000/);
      await refused(() => register({ serviceId: 'nul-1', metadata: { ['key\u0000']: 1 } }), ['metadata.key\\u0000'], /keys of metadata must not contain U\+0000/);
      await refused(() => register({ serviceId: 'nul-1', requiredEnvironmentVars: [{ name: 'A', type: 'sec\u0000ret', required: true }] }), ['requiredEnvironmentVars.0.type']);
      await refused(() => register({ serviceId: 'nul-1', region: 'nyc\u001b[1m' }), ['region'], /control characters \(found U\+001B\)/);
      await refused(() => register({ serviceId: 'nul-1', metadata: { half: 'x\ud800y' } }), ['metadata.half'], /lone surrogate/);
    });

    it('refuses it in a status reason, a query and a path, and in the commands other apps send over NATS', async () => {
      expect((await register({ serviceId: 'nul-2' })).status).toBe(201);
      await refused(() => api.http('PUT', `${BASE}/nul-2/status`, { status: 'unhealthy', reason: 'why\u0000' }, writeHeaders), ['reason']);
      await refused(() => get('/services?capability=gpu%00'), ['capability']);
      await refused(() => get('/services/nul%002'), ['serviceId']);
      await refused(() => api.http('POST', `${BASE}/nul%002/heartbeat`, {}, writeHeaders), ['serviceId']);

      const before = await api.writeState();
      expect(await api.nats.request(api.subjects.reportHealthCommand, { serviceId: 'nul-2', status: 'unhealthy', reason: 'x\u0000' })).toEqual({
        ok: false,
        error: { code: 'VALIDATION_FAILED', message: expect.any(String), errors: [{ field: 'reason', reason: 'reason must not contain U+0000 (NUL)' }] },
      });
      expect(await api.nats.request(api.subjects.deregisterCommand, { serviceId: 'nul-2', reason: 'x\u0000' })).toMatchObject({ ok: false, error: { errors: [{ field: 'reason' }] } });
      expect(await api.writeState()).toEqual(before);
      expect((await get('/services/nul-2')).body.service).toMatchObject({ status: 'healthy' });
    });
  });

  describe('reads', () => {
    it('need the read, write or admin token when REGISTRY_READ_TOKEN is set; /health, /metrics and the docs stay open', async () => {
      expect((await get('/services', {})).status).toBe(401);
      expect((await get('/services', { 'x-registry-token': 'not-the-token' })).status).toBe(403);
      expect((await get('/services', readHeaders)).status).toBe(200);
      expect((await get('/services', writeHeaders)).status).toBe(200);
      expect((await get('/services', adminHeaders)).status).toBe(200);
      expect((await get('/models', {})).status).toBe(401);
      expect((await get('/models/lookup?environment=production&model=m', {})).status).toBe(401);
      expect((await get('/discover/mech-llms', {})).status).toBe(401);
      expect((await get('/services/nul-2', {})).status).toBe(401);
      expect((await api.http('GET', '/health')).status).toBe(200);
      expect((await fetch(`${api.url}/metrics`)).status).toBe(200);
      expect((await fetch(`${api.url}/api/docs/openapi.json`)).status).toBe(200);
      // The read token does not write.
      expect((await api.http('POST', `${BASE}/register`, registration({ serviceId: 'r-1' }), readHeaders)).status).toBe(403);
    });

    it('serves the snapshot over REST to the admin token only', async () => {
      expect((await get('/snapshot', readHeaders)).status).toBe(401);
      expect((await get('/snapshot', writeHeaders)).status).toBe(401);
      expect((await get('/snapshot', { 'x-admin-token': READ_TOKEN })).status).toBe(403);
      const snapshot = await get('/snapshot', adminHeaders);
      expect(snapshot.status).toBe(200);
      expect(snapshot.body.revision).toBe((await api.writeState()).revision);
    });

    it('pages every list with limit and an opaque cursor: each instance once, in order, nextCursor null at the end', async () => {
      const ids = Array.from({ length: 23 }, (_, i) => `page-${String(i).padStart(2, '0')}`);
      for (const serviceId of ids) expect((await register({ serviceName: 'paged', serviceId, environment: 'staging', models: ['paged-model'] })).status).toBe(201);

      const seen: string[] = [];
      const cursors: string[] = [];
      let cursor: string | null = null;
      do {
        const res: { status: number; body: { count: number; nextCursor: string | null; services: { serviceId: string }[] } } = await get(
          `/services?serviceName=paged&limit=5${cursor ? `&cursor=${cursor}` : ''}`,
        );
        expect(res.status).toBe(200);
        expect(res.body.count).toBe(res.body.services.length);
        seen.push(...res.body.services.map((s) => s.serviceId));
        cursor = res.body.nextCursor;
        if (cursor) cursors.push(cursor);
      } while (cursor && seen.length <= ids.length);
      expect(seen).toEqual(ids);
      expect(cursors).toHaveLength(4);

      const models: string[] = [];
      let modelCursor: string | null = null;
      do {
        const res: { body: { nextCursor: string | null; models: { serviceId: string; modelName: string }[] } } = await get(`/models?model=paged-model&limit=10${modelCursor ? `&cursor=${modelCursor}` : ''}`);
        models.push(...res.body.models.map((m) => m.serviceId));
        modelCursor = res.body.nextCursor;
      } while (modelCursor && models.length <= ids.length);
      expect(models).toEqual(ids);

      const all = await get('/services?serviceName=paged');
      expect(all.body).toMatchObject({ count: 23, nextCursor: null });
    });

    it('defaults to 100, refuses a limit over 1000 and a cursor that was altered or belongs to another list', async () => {
      expect((await get('/services')).body.services.length).toBeLessThanOrEqual(100);
      const first = await get('/services?serviceName=paged&limit=2');
      expect(first.body.count).toBe(2);
      await refused(() => get('/services?limit=1001'), ['limit'], /limit must be an integer from 1 to 1000/);
      await refused(() => get('/models?limit=0'), ['limit']);
      const cursor: string = first.body.nextCursor;
      const tampered = `${cursor.slice(0, 3)}${cursor[3] === 'A' ? 'B' : 'A'}${cursor.slice(4)}`;
      await refused(() => get(`/services?serviceName=paged&cursor=${tampered}`), ['cursor']);
      await refused(() => get(`/models?cursor=${cursor}`), ['cursor'], /for models/);
    });
  });

  describe('endpoints', () => {
    it('refuses a registration whose address or port REGISTRY_ALLOWED_ENDPOINTS does not allow, naming the field', async () => {
      await refused(() => register({ serviceId: 'ep-1', vmIp: '169.254.169.254', internalPort: 80 }), ['vmIp'], /^vmIp 169\.254\.169\.254 is not in REGISTRY_ALLOWED_ENDPOINTS$/);
      await refused(() => register({ serviceId: 'ep-1', vmIp: '174.138.68.9', internalPort: 22 }), ['internalPort'], /^internalPort 22 \(host 174\.138\.68\.9\) is not in REGISTRY_ALLOWED_ENDPOINTS$/);
      await refused(() => register({ serviceId: 'ep-1', vmIp: 'metadata.google.internal', internalPort: 3000 }), ['vmIp']);
      await refused(() => register({ serviceId: 'ep-1', vmIp: '::ffff:127.0.0.1', internalPort: 3000 }), ['vmIp']);
      expect((await register({ serviceId: 'ep-2', vmIp: '10.20.30.40', internalPort: 22 })).status).toBe(201);
      expect((await register({ serviceId: 'ep-3', vmIp: 'fd00::7', internalPort: 8000 })).status).toBe(201);
    });

    it('checks model endpoints, dry runs and the conventional default included', async () => {
      await refused(() => api.http('POST', `${BASE}/models`, { modelName: 'm1', environment: 'development', endpoint: '127.0.0.1:8000' }, writeHeaders), ['endpoint'], /^endpoint 127\.0\.0\.1:8000 is not in REGISTRY_ALLOWED_ENDPOINTS$/);
      await refused(() => api.http('POST', `${BASE}/models`, { modelName: 'm1', environment: 'development', endpoint: '[fd00::1]:9000', dryRun: true }, writeHeaders), ['endpoint']);
      expect((await api.http('POST', `${BASE}/models`, { modelName: 'm1', environment: 'development' }, writeHeaders)).status).toBe(201);
    });

    it('keeps check intervals at or above HEALTH_CHECK_MIN_INTERVAL_MS (1000) and timeouts within the interval', async () => {
      await refused(() => register({ serviceId: 'hc-1', healthCheck: { intervalMs: 500 } }), ['healthCheck.intervalMs'], /at least 1000 \(HEALTH_CHECK_MIN_INTERVAL_MS\)/);
      await refused(() => register({ serviceId: 'hc-1', healthCheck: { intervalMs: 2000, timeoutMs: 5000 } }), ['healthCheck.timeoutMs']);
      expect((await register({ serviceId: 'hc-1', healthCheck: { intervalMs: 1000, timeoutMs: 1000 } })).status).toBe(201);
    });

    it('keeps healthCheckEndpoint a path of the instance (no other authority for the prober to reach)', async () => {
      for (const path of ['//169.254.169.254/latest', '/\\evil.example', '/@evil.example/', '/a/../../x', '/%2e%2e/x']) {
        await refused(() => register({ serviceId: 'hc-2', healthCheckEndpoint: path }), ['healthCheckEndpoint']);
      }
    });
  });

  it('drops NATS heartbeats with U+0000 or a reserved key, or null figures, and counts them invalid (a later valid one proves they were handled)', async () => {
    expect((await register({ serviceId: 'hb-nul', environment: 'staging' })).status).toBe(201);
    expect((await register({ serviceId: 'hb-ok', environment: 'staging' })).status).toBe(201);
    const metric = async () => {
      const text = await (await fetch(`${api.url}/metrics`)).text();
      return Number(/registry_heartbeats_dropped_total\{reason="invalid"[^}]*\} (\d+)/.exec(text)?.[1] ?? 0);
    };
    const droppedBefore = await metric();
    const subject = api.subjects.heartbeat('staging', 'mech-llms', 'hb-nul');
    api.nats.publish(subject, { metadata: { inflight: 7, ['x\u0000']: 1 } });
    api.nats.publish(subject, { metadata: { inflight: 7, constructor: 1 } });
    api.nats.publish(subject, { metadata: { inflight: null } });
    api.nats.publish(api.subjects.heartbeat('staging', 'mech-llms', 'hb-ok'), { metadata: { inflight: 7 } });
    await waitFor(async () => ((await get('/services/hb-ok')).body.service.load.inflight === 7 ? true : undefined), 10_000, 'the sentinel heartbeat');
    expect((await get('/services/hb-nul')).body.service.load).toEqual({});
    expect(await metric()).toBe(droppedBefore + 3);
  });
});

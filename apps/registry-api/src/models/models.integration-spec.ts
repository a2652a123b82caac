import { BASE, RunningRegistryApi, startRegistryApi, writeHeaders } from '../testing/registry-api-harness.util';

describe('model view of the registry (real PostgreSQL and NATS)', () => {
  let api: RunningRegistryApi;

  beforeAll(async () => {
    api = await startRegistryApi('models');
  });
  afterAll(async () => {
    await api?.close();
  });

  const models = (query = '') => api.http('GET', `${BASE}/models${query}`).then((r) => r.body.models as Record<string, unknown>[]);

  it('registers a deployment at the conventional endpoint when none is given, as a routable instance serving the model', async () => {
    const res = await api.http('POST', `${BASE}/models`, { modelName: 'llama-2-7b', environment: 'development' }, writeHeaders);
    expect(res.status).toBe(201);
    expect(res.body.models).toEqual([
      expect.objectContaining({
        modelName: 'llama-2-7b',
        endpoint: 'llama-2-7b-development.system.svc.cluster.local:8000',
        environment: 'development',
        namespace: 'system',
        status: 'ready',
      }),
    ]);
    const instance = (await api.http('GET', `${BASE}/services/${res.body.models[0].serviceId}`)).body.service;
    expect(instance).toMatchObject({ models: ['llama-2-7b'], internalUrl: 'http://llama-2-7b-development.system.svc.cluster.local:8000', routable: true });

    const again = await api.http('POST', `${BASE}/models`, { modelName: 'llama-2-7b', environment: 'development' }, writeHeaders);
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({ created: false, changed: false });
  });

  it('shows a dry run without writing anything', async () => {
    const before = (await api.settledEvents()).length;
    const res = await api.http('POST', `${BASE}/models`, { modelName: 'qwen2.5:7b', environment: 'staging', namespace: 'inference', dryRun: true }, writeHeaders);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ dryRun: true, created: true });
    expect(res.body.models[0].endpoint).toBe('qwen2-5-7b-staging.inference.svc.cluster.local:8000');
    expect(await models('?model=qwen2.5:7b')).toEqual([]);
    expect((await api.settledEvents()).length).toBe(before);
  });

  it('lists with filters on environment, status and model', async () => {
    await api.http('POST', `${BASE}/models`, { modelName: 'gpt-neo', environment: 'production', endpoint: '10.0.0.5:8000' }, writeHeaders);
    await api.http('POST', `${BASE}/models`, { modelName: 'mistral-7b', environment: 'staging' }, writeHeaders);
    await api.http('POST', `${BASE}/models/disable`, { modelName: 'mistral-7b', environment: 'staging' }, writeHeaders);

    expect((await models()).map((m) => m['modelName'])).toEqual(['gpt-neo', 'llama-2-7b', 'mistral-7b']);
    expect((await models('?environment=production')).map((m) => m['endpoint'])).toEqual(['10.0.0.5:8000']);
    expect((await models('?status=disabled')).map((m) => m['modelName'])).toEqual(['mistral-7b']);
    expect((await models('?status=ready')).map((m) => m['modelName'])).toEqual(['gpt-neo', 'llama-2-7b']);
    expect((await api.http('GET', `${BASE}/models?status=maybe`)).status).toBe(400);
  });

  it('disables and enables with a statusChanged event per deployment', async () => {
    const before = (await api.settledEvents()).length;
    const disabled = await api.http('POST', `${BASE}/models/disable`, { modelName: 'llama-2-7b', environment: 'development' }, writeHeaders);
    expect(disabled.status).toBe(200);
    expect(disabled.body.models[0]).toMatchObject({ status: 'disabled', adminState: 'disabled' });
    const enabled = await api.http('POST', `${BASE}/models/enable`, { modelName: 'llama-2-7b', environment: 'development' }, writeHeaders);
    expect(enabled.body.models[0]).toMatchObject({ status: 'ready', adminState: 'enabled' });

    const events = (await api.settledEvents()).slice(before);
    expect(events.map((e) => [e.kind, e.kind === 'statusChanged' ? e.event.data.to.adminState : null])).toEqual([
      ['statusChanged', 'disabled'],
      ['statusChanged', 'enabled'],
    ]);
  });

  it('answers 404 with the model registry message for an unknown model, and 400 for a bad endpoint', async () => {
    const res = await api.http('POST', `${BASE}/models/enable`, { modelName: 'llama-3-70b', environment: 'development' }, writeHeaders);
    expect(res.status).toBe(404);
    expect(res.body.message).toBe('model not found in registry: llama-3-70b (environment: development)');
    const bad = await api.http('POST', `${BASE}/models`, { modelName: 'x', environment: 'development', endpoint: 'no-port' }, writeHeaders);
    expect(bad.status).toBe(400);
    expect(bad.body.errors[0].field).toBe('endpoint');
    const noToken = await api.http('POST', `${BASE}/models`, { modelName: 'x', environment: 'development' });
    expect(noToken.status).toBe(401);
  });

  it('deregisters every deployment of the model in that environment, leaving others', async () => {
    await api.http('POST', `${BASE}/models`, { modelName: 'gpt-neo', environment: 'production', endpoint: '10.0.0.6:8000' }, writeHeaders);
    const before = (await api.settledEvents()).length;
    const res = await api.http('POST', `${BASE}/models/deregister`, { modelName: 'gpt-neo', environment: 'production' }, writeHeaders);
    expect(res.status).toBe(200);
    expect(res.body.deregistered).toHaveLength(2);
    expect(await models('?model=gpt-neo')).toEqual([]);
    expect((await models()).map((m) => m['modelName'])).toEqual(['llama-2-7b', 'mistral-7b']);
    const events = (await api.settledEvents()).slice(before);
    expect(events.map((e) => e.kind)).toEqual(['deregistered', 'deregistered']);
  });

  it('lists services that declare models alongside model registrations', async () => {
    await api.http(
      'POST',
      `${BASE}/register`,
      {
        serviceName: 'ollama',
        serviceId: 'ollama-1',
        vmIp: '10.0.0.9',
        internalPort: 11434,
        externalDomain: 'ollama.internal',
        version: '0.5.0',
        deploymentId: 'd1',
        environment: 'development',
        region: 'lab',
        models: ['llama-2-7b', 'phi-3'],
      },
      writeHeaders,
    );
    const rows = await models('?model=llama-2-7b&environment=development');
    expect(rows.map((m) => m['endpoint']).sort()).toEqual(['10.0.0.9:11434', 'llama-2-7b-development.system.svc.cluster.local:8000']);
  });
});

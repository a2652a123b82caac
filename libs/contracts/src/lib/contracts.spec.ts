import { RegisterServiceDto, HeartbeatDto, ListServicesQueryDto } from './service-instance.dto';
import { defaultModelEndpoint, RegisterModelDto } from './model-deployment.dto';
import { buildRegistryEvent, InvalidEventError, parseRegistryEvent } from './registry.event';
import { isRoutable, modelStatusOf } from './status';
import { SubjectSpace } from './subjects';
import { parseWith } from './validation.util';

const HEALTH_PATH_RULE = 'healthCheckEndpoint must be a plain path: "/" then URL path characters, not "//", "\\", "@" or ".." segments';

const valid = {
  serviceName: 'mech-llms',
  serviceId: 'mech-llms-prod-1',
  vmIp: '10.0.0.1',
  internalPort: 3008,
  externalDomain: 'llm.example.com',
  version: '1.2.0',
  deploymentId: 'd',
  environment: 'production',
  region: 'nyc1',
};

describe('RegisterServiceDto', () => {
  it('accepts the reference guide example', () => {
    expect(parseWith(RegisterServiceDto, valid).ok).toBe(true);
  });

  it.each([
    [{ internalPort: 65536 }, 'internalPort', 'internalPort must not be greater than 65535'],
    [{ internalPort: 8.5 }, 'internalPort', 'internalPort must be an integer number'],
    [{ vmIp: '999.1.1.1 ' }, 'vmIp', 'vmIp must be an IP address or a hostname'],
    [{ serviceName: 'a.b' }, 'serviceName', 'serviceName must be 1-128 characters of letters, digits, "_" or "-"'],
    [{ serviceId: 'x>y' }, 'serviceId', 'serviceId must be 1-128 characters of letters, digits, "_" or "-"'],
    [{ environment: 'qa' }, 'environment', 'environment must be one of: production, staging, development'],
    [{ healthCheckEndpoint: 'health' }, 'healthCheckEndpoint', HEALTH_PATH_RULE],
    [{ metadata: { big: 'x'.repeat(17_000) } }, 'metadata', 'metadata must be a JSON object of at most 16384 bytes'],
    [{ requiredEnvironmentVars: [{ name: '1BAD', type: 'secret', required: true }] }, 'requiredEnvironmentVars.0.name', 'name must be an environment variable name'],
  ])('rejects %j naming %s', (patch, field, reason) => {
    const result = parseWith(RegisterServiceDto, { ...valid, ...patch });
    expect(result).toEqual({ ok: false, errors: [{ field, reason }] });
  });

  it('names a missing field once, as required', () => {
    const { region: _omit, ...rest } = valid;
    expect(parseWith(RegisterServiceDto, rest)).toEqual({ ok: false, errors: [{ field: 'region', reason: 'region is required' }] });
  });

  it('rejects unknown fields and non-object bodies', () => {
    expect(parseWith(RegisterServiceDto, { ...valid, extra: 1 })).toEqual({ ok: false, errors: [{ field: 'extra', reason: 'property extra should not exist' }] });
    expect(parseWith(HeartbeatDto, [1, 2])).toMatchObject({ ok: false, errors: [{ field: '(body)' }] });
  });
});

describe('model workflow helpers', () => {
  it('builds the conventional endpoint {model}-{env}.{namespace}.svc.cluster.local:8000', () => {
    expect(defaultModelEndpoint('llama-2-7b', 'development', 'system')).toBe('llama-2-7b-development.system.svc.cluster.local:8000');
    expect(defaultModelEndpoint('Qwen2.5:7B', 'staging', 'inference')).toBe('qwen2-5-7b-staging.inference.svc.cluster.local:8000');
  });

  it('validates model names and host:port endpoints', () => {
    expect(parseWith(RegisterModelDto, { modelName: 'meta-llama/Llama-3-8B', environment: 'production', endpoint: '[2001:db8::1]:8000' }).ok).toBe(true);
    const bad = parseWith(RegisterModelDto, { modelName: ' spaced', environment: 'production', endpoint: 'host' });
    expect(bad.ok ? [] : bad.errors.map((e) => e.field)).toEqual(['modelName', 'endpoint']);
  });

  it('derives routability and the model status word', () => {
    expect(isRoutable({ status: 'degraded', adminState: 'enabled' })).toBe(true);
    expect(isRoutable({ status: 'healthy', adminState: 'draining' })).toBe(false);
    expect(modelStatusOf({ status: 'healthy', adminState: 'enabled' })).toBe('ready');
    expect(modelStatusOf({ status: 'unhealthy', adminState: 'disabled' })).toBe('disabled');
    expect(modelStatusOf({ status: 'offline', adminState: 'enabled' })).toBe('offline');
  });
});

describe('SubjectSpace', () => {
  it('builds the subjects of DESIGN.md, optionally prefixed', () => {
    const plain = new SubjectSpace();
    expect(plain.registryEvent('registered', 'production', 'svc')).toBe('registry.events.registered.production.svc');
    expect(plain.registryStream).toBe('REGISTRY');
    expect(plain.heartbeat('production', 'svc', 'id-1')).toBe('registry.heartbeat.production.svc.id-1');
    const prefixed = new SubjectSpace('t1');
    expect(prefixed.registryEventsAll).toBe('t1.registry.events.>');
    expect(prefixed.registryStream).toBe('t1_REGISTRY');
    expect(prefixed.parseHeartbeat('t1.registry.heartbeat.staging.svc.id-2')).toEqual({ environment: 'staging', serviceName: 'svc', serviceId: 'id-2' });
    expect(prefixed.parseHeartbeat('registry.heartbeat.staging.svc.id-2')).toBeUndefined();
    expect(() => new SubjectSpace('a.b')).toThrow(/prefix/);
  });
});

describe('registry events', () => {
  const instance = { serviceId: 's1', serviceName: 'svc', environment: 'production', status: 'healthy', adminState: 'enabled', models: [], internalUrl: 'http://h:1', revision: 7 };

  it('round-trips a CloudEvent and validates it on receipt', () => {
    const event = buildRegistryEvent('registered', 's1', { revision: 7, instance } as never, new Date('2026-01-01T00:00:00Z'));
    expect(event).toMatchObject({ specversion: '1.0', id: '7', type: 'switchboard.registry.registered.v1', subject: 's1', time: '2026-01-01T00:00:00.000Z' });
    const parsed = parseRegistryEvent(JSON.parse(JSON.stringify(event)));
    expect(parsed.kind).toBe('registered');
    expect(parsed.event.data.revision).toBe(7);
  });

  it('rejects an event whose data does not match its type', () => {
    const event = buildRegistryEvent('statusChanged', 's1', { revision: 8, instance } as never, new Date());
    expect(() => parseRegistryEvent(JSON.parse(JSON.stringify(event)))).toThrow(InvalidEventError);
    expect(() => parseRegistryEvent({ specversion: '0.3' })).toThrow(/specversion/);
  });
});

describe('healthCheckEndpoint stays a path of the instance', () => {
  it.each(['/health', '/v1/models', '/healthz?full=1', '/a/./b', '/status%20page', '/..well-known', '/a..b'])('accepts %s', (path) => {
    expect(parseWith(RegisterServiceDto, { ...valid, healthCheckEndpoint: path }).ok).toBe(true);
  });

  it.each(['//evil.example/x', '/\\evil.example', '/@evil.example', '/a/../../admin', '/..', '/%2e%2E/x', '/x/..?y', '/a#frag', '/a b', 'health'])('refuses %s', (path) => {
    expect(parseWith(RegisterServiceDto, { ...valid, healthCheckEndpoint: path })).toEqual({ ok: false, errors: [{ field: 'healthCheckEndpoint', reason: HEALTH_PATH_RULE }] });
  });
});

describe('hosts are what an HTTP client will contact', () => {
  it.each(['0x7f000001', '0177.0.0.1.', '2130706433'])('refuses %s, which a URL parser reads as an IPv4 address', (vmIp) => {
    expect(parseWith(RegisterServiceDto, { ...valid, vmIp })).toMatchObject({ ok: false, errors: [{ field: 'vmIp' }] });
  });
});

describe('list pages', () => {
  it.each([['0'], ['1001'], ['abc'], ['1e3'], ['-1'], [''], ['5.5']])('refuses limit=%s', (limit) => {
    expect(parseWith(ListServicesQueryDto, { limit })).toEqual({ ok: false, errors: [{ field: 'limit', reason: 'limit must be an integer from 1 to 1000' }] });
  });

  it('takes a decimal limit and a cursor of the shape the API hands out', () => {
    expect(parseWith(ListServicesQueryDto, { limit: '1000', cursor: 'eyJ2IjoxfQ.AAAAAAAAAAAAAAAAAAAAAA' })).toMatchObject({ ok: true, value: { limit: 1000 } });
    expect(parseWith(ListServicesQueryDto, { cursor: 'not a cursor' })).toMatchObject({ ok: false, errors: [{ field: 'cursor' }] });
  });
});

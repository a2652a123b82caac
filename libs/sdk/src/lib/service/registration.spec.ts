import { hostname } from 'node:os';
import { backoffDelay, defaultServiceId, registrationBody } from './registration';
import { RegistrationError } from './registration-error';

describe('registrationBody', () => {
  const env = {
    SERVICE_REGISTRY_URL: 'http://registry:3013',
    VM_IP: '10.0.0.7',
    EXTERNAL_DOMAIN: 'llm.example.com',
    SERVICE_ENVIRONMENT: 'staging',
    SERVICE_REGION: 'nyc1',
  };

  it('fills the registry guide defaults from the environment; explicit options win', () => {
    const body = registrationBody({ serviceName: 'mech-llms', internalPort: 3008, models: ['m1'] }, env);
    expect(body).toEqual({
      serviceName: 'mech-llms',
      serviceId: defaultServiceId('mech-llms', hostname(), 3008),
      vmIp: '10.0.0.7',
      internalPort: 3008,
      externalDomain: 'llm.example.com',
      version: '0.0.0',
      deploymentId: 'sdk',
      environment: 'staging',
      region: 'nyc1',
      healthCheckEndpoint: '/health',
      models: ['m1'],
    });
    const explicit = registrationBody({ serviceName: 'mech-llms', internalPort: 3008, vmIp: '10.0.0.8', environment: 'production', region: 'ams3', serviceId: 'x-1' }, env);
    expect(explicit).toMatchObject({ vmIp: '10.0.0.8', environment: 'production', region: 'ams3', serviceId: 'x-1', externalDomain: 'llm.example.com' });
  });

  it('takes the port from PORT and defaults the rest without any variable', () => {
    expect(registrationBody({ serviceName: 'svc' }, { PORT: '8080' })).toMatchObject({ internalPort: 8080, vmIp: '127.0.0.1', externalDomain: '127.0.0.1', environment: 'development', region: 'local' });
  });

  it('builds a stable, subject-safe id of at most 128 characters', () => {
    expect(defaultServiceId('svc', 'my.host.local', 3000)).toBe('svc-my-host-local-3000');
    const long = defaultServiceId('s'.repeat(120), 'h'.repeat(80), 65535);
    expect(long).toHaveLength(128);
    expect(long.endsWith('-65535')).toBe(true);
    expect(long).toMatch(/^[A-Za-z0-9_-]{1,128}$/);
  });

  it.each([
    [{ serviceName: 'bad name', internalPort: 3000 }, 'serviceName'],
    [{ serviceName: 'svc', internalPort: 70_000 }, 'internalPort'],
    [{ serviceName: 'svc' }, 'internalPort'],
    [{ serviceName: 'svc', internalPort: 3000, environment: 'prod' }, 'environment'],
    [{ serviceName: 'svc', internalPort: 3000, healthCheckEndpoint: '//evil.example/x' }, 'healthCheckEndpoint'],
    [{ serviceName: 'svc', internalPort: 3000, healthCheck: { heartbeatTtlMs: 10 } }, 'healthCheck.heartbeatTtlMs'],
    [{ serviceName: 'svc', internalPort: 3000, vmIp: 'not a host!' }, 'vmIp'],
  ])('refuses %j before sending, naming %s', (options, field) => {
    let error: unknown;
    try {
      registrationBody(options as never, {});
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(RegistrationError);
    expect((error as RegistrationError).errors.map((e) => e.field)).toContain(field);
    expect((error as RegistrationError).message).toContain(field);
    expect((error as RegistrationError).status).toBeUndefined();
  });
});

describe('backoffDelay', () => {
  it('doubles from the initial delay up to the ceiling, each drawn in [½, 1] of it', () => {
    const low = (attempt: number) => backoffDelay(attempt, { initialDelayMs: 100, maxDelayMs: 1000 }, () => 0);
    const high = (attempt: number) => backoffDelay(attempt, { initialDelayMs: 100, maxDelayMs: 1000 }, () => 1);
    expect([1, 2, 3, 4, 5, 50].map(high)).toEqual([100, 200, 400, 800, 1000, 1000]);
    expect([1, 2, 3, 4, 5, 50].map(low)).toEqual([50, 100, 200, 400, 500, 500]);
  });
});

import { Controller, Get, INestApplication, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { ServiceRegistration, SwitchboardClient } from '@switchboard/client';
import { InjectService, SwitchboardModule } from '@switchboard/client/nest';
import { freePort, waitFor } from '@switchboard/testing';
import { adminHeaders, BASE, REGISTRY_TOKEN, RunningRegistryApi, startRegistryApi } from '../testing/registry-api-harness.util';

/**
 * SwitchboardModule in a real NestJS app, against a real registry-api, NATS and PostgreSQL: the app
 * registers itself, every request it serves shows in its heartbeats' load, an injected
 * SwitchboardClient calls it by name, and closing the app drains and deregisters it.
 */
describe('SwitchboardModule (NestJS) with a real registry-api', () => {
  let api: RunningRegistryApi;
  let app: INestApplication | undefined;

  beforeAll(async () => {
    api = await startRegistryApi('sdknest');
  });
  afterAll(async () => {
    await app?.close();
    await api?.close();
  });

  it('registers the app, counts what it serves into its load, lets it call by name, and deregisters it on close', async () => {
    const port = await freePort();
    const connection = { registryUrl: api.url, registryToken: REGISTRY_TOKEN, natsUrl: api.env.natsUrl, subjectPrefix: api.env.subjectPrefix };

    @Controller()
    class HelloController {
      constructor(
        private readonly client: SwitchboardClient,
        @InjectService() private readonly service: ServiceRegistration,
      ) {}

      @Get('hello')
      hello() {
        return { hello: 'nest', serviceId: this.service.serviceId };
      }

      @Get('call')
      call() {
        return this.client.request('nest-svc', '/hello', undefined, { method: 'GET' });
      }
    }

    @Module({
      imports: [
        SwitchboardModule.forRootAsync({
          useFactory: async () => ({
            service: { ...connection, serviceName: 'nest-svc', internalPort: port, vmIp: '127.0.0.1', heartbeatIntervalMs: 200, drain: { propagationMs: 100 } },
            client: connection,
          }),
        }),
      ],
      controllers: [HelloController],
    })
    class AppModule {}

    // Fastify, as the Switchboard apps run (Nest hands middleware the raw request and response there too).
    app = await NestFactory.create(AppModule, new FastifyAdapter(), { logger: false });
    await app.listen(port, '127.0.0.1');
    const serviceId = `nest-svc-${(await import('node:os')).hostname().replace(/[^A-Za-z0-9_-]/g, '-').slice(0, 80)}-${port}`;
    expect((await api.http('GET', `${BASE}/services/${serviceId}`)).status).toBe(200);

    for (let i = 0; i < 5; i++) expect(((await (await fetch(`http://127.0.0.1:${port}/hello`)).json()) as { hello: string }).hello).toBe('nest');
    await waitFor(async () => ((await api.http('GET', `${BASE}/services/${serviceId}`)).body.service.load?.requestsPerMinute ?? 0) >= 5, 10_000, 'the load in the registry');

    const called = await (await fetch(`http://127.0.0.1:${port}/call`)).json();
    expect(called).toEqual({ hello: 'nest', serviceId });

    await app.close();
    app = undefined;
    expect((await api.http('GET', `${BASE}/services/${serviceId}`)).status).toBe(404);
    const snapshot = await api.http('GET', `${BASE}/snapshot`, undefined, adminHeaders);
    expect((snapshot.body.tombstones as [string, number][]).map(([id]) => id)).toContain(serviceId);
  });
});

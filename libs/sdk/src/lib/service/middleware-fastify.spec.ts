import fastify, { FastifyInstance } from 'fastify';
import { LoadMeter } from './load-meter';
import { loadMiddleware } from './middleware';

/** The structural types against a real Fastify 5: the hook form and the plugin form both count every route's requests. */
describe('load middleware on a real Fastify', () => {
  let app: FastifyInstance | undefined;

  afterEach(async () => {
    await app?.close();
    app = undefined;
  });

  async function serve(wire: (app: FastifyInstance, meter: LoadMeter) => Promise<unknown> | unknown): Promise<{ base: string; meter: LoadMeter }> {
    const meter = new LoadMeter({ ignorePaths: ['/health'] });
    app = fastify();
    await wire(app, meter);
    // Routes in a child context: a plugin's hook must reach them too (not encapsulated).
    await app.register(async (child) => {
      child.get('/ok', async () => 'ok');
      child.get('/boom', async (_req, reply) => reply.code(500).send('boom'));
      child.get('/health', async () => ({ status: 'ok' }));
    });
    const base = await app.listen({ port: 0, host: '127.0.0.1' });
    return { base, meter };
  }

  async function load(base: string): Promise<void> {
    for (const path of ['/ok', '/ok', '/boom', '/health', '/missing']) await (await fetch(`${base}${path}`)).text();
  }

  it.each([
    ['hook', (a: FastifyInstance, meter: LoadMeter) => loadMiddleware(meter).fastify(a)],
    ['plugin', (a: FastifyInstance, meter: LoadMeter) => a.register(loadMiddleware(meter).fastify())],
  ])('%s form', async (_form, wire) => {
    const { base, meter } = await serve(wire);
    await load(base);
    // 404s count as requests; /health is left out; the 500 is an error.
    expect(meter.snapshot()).toMatchObject({ requestsPerMinute: 4, errorRate: 0.25, inflight: 0 });
  });
});

import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { register, RegisterOptions, ServiceRegistration } from './registration';
import { RegistrationError } from './registration-error';

/** registry-api's HTTP surface as a scripted stand-in: each call is recorded, answers come from `answer`. */
class FakeRegistry {
  readonly calls: string[] = [];
  /** When each call arrived (Date.now()), same order as `calls`. */
  readonly times: number[] = [];
  answer: (method: string, path: string, body: any) => { status: number; body?: unknown } = () => ({ status: 200, body: { success: true } });
  private server!: Server;
  url = '';

  async start(): Promise<void> {
    this.server = createServer((req: IncomingMessage, res: ServerResponse) => {
      let text = '';
      req.on('data', (c) => (text += c));
      req.on('end', () => {
        const body = text ? JSON.parse(text) : undefined;
        this.calls.push(`${req.method} ${req.url}${body?.adminState ? ` ${body.adminState}` : ''}`);
        this.times.push(Date.now());
        const { status, body: out } = this.answer(req.method ?? '', req.url ?? '', body);
        res.statusCode = status;
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify(out ?? {}));
      });
    });
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }
}

describe('ServiceRegistration lifecycle (scripted registry-api)', () => {
  let registry: FakeRegistry;
  const opened: ServiceRegistration[] = [];
  const options = (extra: Partial<RegisterOptions> = {}): RegisterOptions => ({
    serviceName: 'svc',
    serviceId: 'svc-1',
    internalPort: 3000,
    registryUrl: registry.url,
    registryToken: 't',
    heartbeatTransport: 'rest',
    heartbeatIntervalMs: 60_000,
    verifyIntervalMs: 60_000,
    retry: { initialDelayMs: 5, maxDelayMs: 20 },
    logger: { log: () => undefined, warn: () => undefined, error: () => undefined },
    env: {},
    ...extra,
  });

  beforeEach(async () => {
    registry = new FakeRegistry();
    await registry.start();
  });

  afterEach(async () => {
    for (const service of opened.splice(0)) await service.close({ deregister: false });
    await registry.stop();
  });

  it('retries 5xx and 429 answers, then resolves once registered', async () => {
    let n = 0;
    registry.answer = (method) => (method === 'POST' && ++n <= 3 ? { status: n === 2 ? 429 : 503, body: { message: 'busy' } } : { status: 201, body: { success: true } });
    const service = await register(options());
    opened.push(service);
    expect(service.registered).toBe(true);
    expect(registry.calls.filter((c) => c.startsWith('POST')).length).toBe(4);
  });

  it('throws a 4xx other than 429 at once, with the API message and field errors', async () => {
    registry.answer = () => ({ status: 400, body: { success: false, message: 'Validation failed: models must be an array', errors: [{ field: 'models', reason: 'models must be an array' }] } });
    const error = (await register(options()).catch((e: unknown) => e)) as RegistrationError;
    expect(error).toBeInstanceOf(RegistrationError);
    expect(error.status).toBe(400);
    expect(error.message).toContain('Validation failed: models must be an array');
    expect(error.errors).toEqual([{ field: 'models', reason: 'models must be an array' }]);
    expect(registry.calls).toEqual(['POST /api/v2/services/registry/register']);
  });

  it('drains in order: draining, in-flight requests end, then deregistered', async () => {
    const service = await register(options());
    opened.push(service);
    const end = service.load.begin(); // a request in flight
    const drained = service.drain({ deadlineMs: 10_000, propagationMs: 50 });
    // The request ends well after draining was set and the propagation time passed...
    await new Promise((r) => setTimeout(r, 300));
    const ended = Date.now();
    end(200);
    const result = await drained;
    // ...and the DELETE came after it.
    expect(registry.times[2]).toBeGreaterThanOrEqual(ended);
    expect(result).toMatchObject({ inflightLeft: 0, deregistered: true });
    expect(registry.calls).toEqual([
      'POST /api/v2/services/registry/register',
      'PUT /api/v2/services/registry/svc-1/status draining',
      'DELETE /api/v2/services/registry/services/svc-1',
    ]);
    expect(service.registered).toBe(false);
  });

  it('deregisters at the deadline even with requests still in flight, and says how many', async () => {
    const service = await register(options());
    opened.push(service);
    service.load.begin();
    const result = await service.drain({ deadlineMs: 200, propagationMs: 10 });
    expect(result).toMatchObject({ inflightLeft: 1, deregistered: true });
    expect(registry.calls.at(-1)).toBe('DELETE /api/v2/services/registry/services/svc-1');
  });

  it('registers again on a 404 from its REST heartbeat, once', async () => {
    const service = await register(options());
    opened.push(service);
    registry.answer = (method) => (method === 'POST' && registry.calls.at(-1)?.includes('/heartbeat') ? { status: 404, body: { message: 'service instance not found in registry: svc-1' } } : { status: 201 });
    await service.verify();
    await new Promise((r) => setTimeout(r, 100));
    expect(service.reRegistrations).toBe(1);
    expect(registry.calls.slice(1)).toEqual(['POST /api/v2/services/registry/svc-1/heartbeat', 'POST /api/v2/services/registry/register']);
    expect(service.registered).toBe(true);
  });

  it('handleSignals: the first SIGTERM drains then exits 0; a second exits 1 at once', async () => {
    const service = await register(options());
    opened.push(service);
    const exits: number[] = [];
    const remove = service.handleSignals({ signals: ['SIGUSR2'], exit: (code) => exits.push(code), propagationMs: 10, deadlineMs: 5000 });
    try {
      const end = service.load.begin();
      process.emit('SIGUSR2', 'SIGUSR2');
      process.emit('SIGUSR2', 'SIGUSR2');
      expect(exits).toEqual([1]);
      end(200);
      await service.drain(); // the same drain the signal started
      await new Promise((r) => setTimeout(r, 10));
      expect(exits).toEqual([1, 0]);
      expect(registry.calls.at(-1)).toBe('DELETE /api/v2/services/registry/services/svc-1');
    } finally {
      remove();
    }
  });
});

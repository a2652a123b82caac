import { createServer, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { checkReason, NO_HTTP_RESPONSE } from './probe-reason.util';
import { probe } from './probe.util';

/** Real sockets on loopback; no NATS or registry needed. */
describe('probe and the reason it lets the prober report', () => {
  const servers: Server[] = [];
  const serve = async (handler: Parameters<typeof createServer>[1]): Promise<string> => {
    const server = createServer(handler);
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  };
  afterAll(async () => {
    for (const server of servers) server.closeAllConnections();
    await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  });

  it('reports refused, timed out, unresolvable and reset alike, so a registrant cannot scan ports with it; an HTTP answer says its status', async () => {
    // A port that was just listened on and closed: connections are refused.
    const closed = await serve(() => undefined);
    servers.pop()?.close();
    const hanging = await serve(() => undefined);
    const resetting = await serve((req) => req.socket.destroy());
    const unavailable = await serve((_, res) => res.writeHead(503).end());

    const results = {
      refused: await probe(`${closed}/health`, 500, 1000),
      timeout: await probe(`${hanging}/health`, 300, 1000),
      dns: await probe('http://switchboard-probe-spec.invalid/health', 2000, 1000),
      reset: await probe(`${resetting}/health`, 500, 1000),
    };
    for (const result of Object.values(results)) expect(result.outcome).toBe('fail');
    expect(Object.fromEntries(Object.entries(results).map(([k, r]) => [k, checkReason(r)]))).toEqual({
      refused: NO_HTTP_RESPONSE,
      timeout: NO_HTTP_RESPONSE,
      dns: NO_HTTP_RESPONSE,
      reset: NO_HTTP_RESPONSE,
    });
    // The prober's own log still tells them apart.
    expect(results.refused.detail).toBe('ECONNREFUSED');
    expect(results.timeout.detail).toMatch(/timeout/);

    const answered = await probe(`${unavailable}/health`, 500, 1000);
    expect(checkReason(answered)).toBe('HTTP 503');
  });

  it('never follows a redirect: a 3xx is a failed check and its target is never asked', async () => {
    let targetHits = 0;
    const target = await serve((_, res) => {
      targetHits++;
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}');
    });
    const redirecting = await serve((_, res) => res.writeHead(302, { location: `${target}/health` }).end());
    const result = await probe(`${redirecting}/health`, 500, 1000);
    expect(result).toMatchObject({ outcome: 'fail', detail: 'HTTP 302' });
    // Same connection pool, after the redirect's answer: had it been followed, this hit would be the second.
    await probe(`${target}/health`, 500, 1000);
    expect(targetHits).toBe(1);
  });
});

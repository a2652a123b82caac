import { createServer, Server } from 'node:http';
import { AddressInfo } from 'node:net';
import { API_KEY, rawRouterCall, registerInstance, System } from './support/system.util';

/** A backend that answers a chat completion carrying the exact bytes it received. */
function startEcho(): Promise<Server> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ object: 'chat.completion', received: Buffer.concat(chunks).toString('utf8') }));
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

describe('llm-router forwards the request body', () => {
  let system: System;
  let echo: Server;

  beforeAll(async () => {
    system = await System.start('router-body', { aliases: { 'echo-alias': 'echo-model' } });
    echo = await startEcho();
    const revision = await registerInstance(system.registry.url, { serviceId: 'echo-1', serviceName: 'echo', port: (echo.address() as AddressInfo).port, models: ['echo-model'] });
    await system.waitForRevision(revision);
  });
  afterAll(async () => {
    await system?.stop();
    await new Promise((resolve) => echo?.close(resolve));
  });

  it('as the client sent it, byte for byte, when the model is not renamed', async () => {
    // Spacing, key order and an escape that a parse + stringify would all change.
    const sent = '{ "messages" : [ {"role":"user","content":"h\\u0069 there"} ],\n  "model":"echo-model", "temperature": 1.0 }';
    const { status, body } = await rawRouterCall(system, '/v1/chat/completions', sent);
    expect(status).toBe(200);
    expect(body.received).toBe(sent);
  });

  it('as JSON, re-serialised, when the client sent a form body (only JSON bytes pass as they came)', async () => {
    const response = await fetch(`${system.router.url}/v1/embeddings`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Bearer ${API_KEY}` },
      body: 'model=echo-model&input=abc',
    });
    expect(response.status).toBe(200);
    expect(JSON.parse(((await response.json()) as { received: string }).received)).toEqual({ model: 'echo-model', input: 'abc' });
  });

  it('re-serialised with the model it routes to when an alias renames it', async () => {
    const { status, body } = await rawRouterCall(system, '/v1/chat/completions', '{ "model": "echo-alias", "messages": [{"role":"user","content":"hi"}] }');
    expect(status).toBe(200);
    expect(JSON.parse(body.received)).toEqual({ model: 'echo-model', messages: [{ role: 'user', content: 'hi' }] });
  });
});

import { createServer, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { runCli } from './program.util';

async function cli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await runCli(argv, { out: (t) => (out += t), err: (t) => (err += t) });
  return { code, out, err };
}

/** A stand-in registry answering every request with `status` and `body` (exit-code mapping only; the e2e suite runs the real one). */
async function fakeRegistry(status: number, body: string): Promise<{ url: string; server: Server }> {
  const server = createServer((_req, res) => res.writeHead(status, { 'content-type': 'application/json' }).end(body));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

describe('admin-cli exit codes and errors', () => {
  let registry: { url: string; server: Server } | undefined;
  afterEach(() => registry?.server.close());

  it('exits 0 for --help and shows the workflow example', async () => {
    const result = await cli('registry', 'register', '--help');
    expect(result.code).toBe(0);
    expect(result.out).toContain('--model-name llama-2-7b');
    expect(result.out).toContain('--dry-run');
  });

  it('exits 1 with one line naming the missing flag', async () => {
    const result = await cli('registry', 'register', '--model-name', 'llama-2-7b');
    expect(result.code).toBe(1);
    expect(result.err.trim().split('\n')).toEqual([expect.stringContaining("'--environment <environment>'")]);
  });

  it('exits 1 for an environment that is not one of the three', async () => {
    const result = await cli('registry', 'list', '--environment', 'prod');
    expect(result.code).toBe(1);
    expect(result.err).toContain('prod');
  });

  it('exits 2 naming the variable to fix when the registry cannot be reached', async () => {
    const closed = await fakeRegistry(200, '{}');
    await new Promise((r) => closed.server.close(r));
    const result = await cli('registry', 'list', '--registry-url', closed.url);
    expect(result.code).toBe(2);
    expect(result.err).toMatch(/^admin-cli: cannot reach the registry at .*ECONNREFUSED.*SWITCHBOARD_REGISTRY_URL/);
  });

  it('exits 2 naming the token variable when the registry refuses the token', async () => {
    registry = await fakeRegistry(403, '{"success":false,"statusCode":403,"error":"TOKEN_INVALID","message":"Invalid registry token"}');
    const result = await cli('registry', 'disable', '--model-name', 'm', '--environment', 'development', '--registry-url', registry.url);
    expect(result.code).toBe(2);
    expect(result.err).toContain('set SWITCHBOARD_REGISTRY_TOKEN');
  });

  it("exits 1 with the registry's own message for a validation error", async () => {
    registry = await fakeRegistry(400, '{"success":false,"statusCode":400,"error":"VALIDATION_FAILED","message":"Validation failed: endpoint must be host:port"}');
    const result = await cli('registry', 'register', '--model-name', 'm', '--environment', 'development', '--endpoint', 'x', '--registry-url', registry.url);
    expect(result.code).toBe(1);
    expect(result.err).toBe('admin-cli: Validation failed: endpoint must be host:port\n');
  });

  it('exits 2 when something that is not a registry answers', async () => {
    registry = await fakeRegistry(200, '<html>hello</html>');
    const result = await cli('registry', 'list', '--registry-url', registry.url);
    expect(result.code).toBe(2);
    expect(result.err).toContain('is SWITCHBOARD_REGISTRY_URL a registry-api?');
  });
});

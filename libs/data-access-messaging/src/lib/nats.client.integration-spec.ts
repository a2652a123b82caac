import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, NatsEnv } from '@switchboard/config';
import { PrivateNatsServer, waitFor } from '@switchboard/testing';
import { NatsClient, NatsStartRefusedError } from './nats.client';

// A throwaway user nkey made for this test; it authorizes nothing anywhere else.
const SEED = 'SUABIIMEKIG3O3RJAV434EWIUMTTCGZLFKHXR5LO5URXP7AGFX3TKJ2VGY';
const NKEY = 'UAE2MXE6ZQVQYDLAHF6GDIV7CASF7V32J5APVFI4XJ64Q6TPDUUDGGT7';

/**
 * Each client may subscribe only to its own inbox (`_INBOX.<connection name>.>`), as the shipped
 * server config has it: a request works only if the client really takes its replies there.
 */
const SERVER_CONFIG = `
authorization {
  users: [
    { user: "alice", password: "secretpw", permissions: { publish: ["svc.>"], subscribe: ["_INBOX.alice-conn.>"] } }
    { nkey: "${NKEY}", permissions: { publish: ["svc.>"], subscribe: ["_INBOX.nkey-conn.>"] } }
    { user: "echo", password: "echopw", permissions: { publish: { deny: [">"] }, subscribe: ["svc.>"], allow_responses: true } }
  ]
}
`;

describe('NatsClient against a NATS that requires authentication', () => {
  let dir: string;
  let secured: PrivateNatsServer;
  let open: PrivateNatsServer;
  let echo: NatsClient;
  const clients: NatsClient[] = [];

  /** NatsClient as an app gets it: options from the env class. */
  async function connectWith(env: Record<string, string>, name: string): Promise<NatsClient> {
    const client = await NatsClient.connect({ ...loadConfig(NatsEnv, env).natsConnection(name), connectTimeoutMs: 2000 });
    clients.push(client);
    return client;
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'sb-nats-auth-'));
    writeFileSync(join(dir, 'nats-server.conf'), SERVER_CONFIG);
    writeFileSync(join(dir, 'user.nk'), `${SEED}\n`);
    secured = await PrivateNatsServer.start({ configFile: join(dir, 'nats-server.conf') });
    open = await PrivateNatsServer.start();
    echo = await connectWith({ NATS_URL: secured.url, NATS_USER: 'echo', NATS_PASSWORD: 'echopw' }, 'echo');
    echo.subscribe('svc.echo', (msg) => msg.respond(msg.data));
    await echo.connection.flush();
  });

  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await secured?.dispose();
    await open?.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  it('is refused at once with a wrong password or none, saying so', async () => {
    await expect(connectWith({ NATS_URL: secured.url, NATS_USER: 'alice', NATS_PASSWORD: 'wrong' }, 'alice-conn')).rejects.toThrow(
      new NatsStartRefusedError(`the NATS server at ${secured.url} refused the credentials of connection 'alice-conn' (authorization violation)`),
    );
    await expect(connectWith({ NATS_URL: secured.url }, 'alice-conn')).rejects.toThrow(/refused the credentials of connection 'alice-conn'/);
  });

  it('connects with user/password from the variables or the URL, and gets its replies on _INBOX.<name>', async () => {
    const alice = await connectWith({ NATS_URL: secured.url, NATS_USER: 'alice', NATS_PASSWORD: 'secretpw' }, 'alice-conn');
    await expect(alice.request('svc.echo', { hello: 'variables' })).resolves.toEqual({ hello: 'variables' });
    const fromUrl = await connectWith({ NATS_URL: `nats://alice:secretpw@127.0.0.1:${secured.port}` }, 'alice-conn');
    await expect(fromUrl.request('svc.echo', { hello: 'url' })).resolves.toEqual({ hello: 'url' });
  });

  it('keeps reconnecting through a spell of refused credentials (a server restarted with other users) and recovers', async () => {
    const config = join(dir, 'rotating.conf');
    const users = (password: string) => `authorization { users: [ { user: "rot", password: "${password}" } ] }\n`;
    writeFileSync(config, users('first'));
    const rotating = await PrivateNatsServer.start({ configFile: config });
    try {
      const client = await connectWith({ NATS_URL: rotating.url, NATS_USER: 'rot', NATS_PASSWORD: 'first' }, 'rot-conn');
      const refusals: string[] = [];
      void (async () => {
        for await (const status of client.connection.status()) if (status.type === 'error') refusals.push(String(status.data));
      })();
      await rotating.stop();
      writeFileSync(config, users('second'));
      await rotating.start();
      await waitFor(() => refusals.length >= 3, 10_000, 'three refused reconnects');
      await rotating.stop();
      writeFileSync(config, users('first'));
      await rotating.start();
      await waitFor(() => client.isConnected, 10_000, 'reconnected once the password is accepted again');
      await expect(client.connection.flush()).resolves.toBeUndefined();
    } finally {
      await rotating.dispose();
    }
  });

  it('closes at once during an outage, so a shutdown never waits for NATS to come back', async () => {
    const server = await PrivateNatsServer.start();
    try {
      const client = await connectWith({ NATS_URL: server.url }, 'outage-conn');
      await server.stop();
      await waitFor(() => !client.isConnected, 10_000, 'the client to see the outage');
      await client.close();
      expect(client.connection.isClosed()).toBe(true);
    } finally {
      await server.dispose();
    }
  });

  it('connects with an nkey seed file', async () => {
    const client = await connectWith({ NATS_URL: secured.url, NATS_NKEY_SEED_FILE: join(dir, 'user.nk') }, 'nkey-conn');
    await expect(client.request('svc.echo', { hello: 'nkey' })).resolves.toEqual({ hello: 'nkey' });
  });

  it('in production refuses a server that does not require authentication, unless NATS_ALLOW_ANONYMOUS=true', async () => {
    const production = { NODE_ENV: 'production', NATS_URL: `nats://someone:pw@127.0.0.1:${open.port}` };
    await expect(connectWith(production, 'llm-router')).rejects.toThrow(
      new NatsStartRefusedError(
        `refusing to start: the NATS server at ${open.url} does not require authentication, so anyone who reaches it can forge events and commands (NODE_ENV=production; set NATS_ALLOW_ANONYMOUS=true to allow it on purpose)`,
      ),
    );
    const allowed = await connectWith({ ...production, NATS_ALLOW_ANONYMOUS: 'true' }, 'llm-router');
    expect(allowed.isConnected).toBe(true);
    const authenticated = await connectWith({ NODE_ENV: 'production', NATS_URL: secured.url, NATS_USER: 'alice', NATS_PASSWORD: 'secretpw' }, 'alice-conn');
    await expect(authenticated.request('svc.echo', { hello: 'production' })).resolves.toEqual({ hello: 'production' });
  });
});

/** A throwaway CA, a server certificate for 127.0.0.1 and a client certificate, made with openssl. */
function makeCertificates(dir: string): void {
  const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
  const newKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  writeFileSync(join(dir, 'san.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  openssl('req', '-x509', ...newKey, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '1', '-subj', '/CN=sb-test-ca');
  for (const [name, ext] of [['server', ['-extfile', 'san.ext']], ['client', []]] as const) {
    openssl('req', ...newKey, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=sb-test-${name}`);
    openssl('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.pem`, '-days', '1', ...ext);
  }
}

describe('NatsClient over TLS with a client certificate', () => {
  let dir: string;
  let server: PrivateNatsServer;
  const clients: NatsClient[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'sb-nats-tls-'));
    makeCertificates(dir);
    writeFileSync(
      join(dir, 'nats-server.conf'),
      `tls { cert_file: "${join(dir, 'server.pem')}", key_file: "${join(dir, 'server.key')}", ca_file: "${join(dir, 'ca.pem')}", verify: true }
authorization { users: [ { user: "tls-user", password: "tlspw" } ] }
`,
    );
    server = await PrivateNatsServer.start({ configFile: join(dir, 'nats-server.conf') });
  });

  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await server?.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  it('connects with NATS_TLS_CA, NATS_TLS_CERT and NATS_TLS_KEY', async () => {
    const env = { NODE_ENV: 'production', NATS_URL: server.url, NATS_USER: 'tls-user', NATS_PASSWORD: 'tlspw', NATS_TLS_CA: join(dir, 'ca.pem'), NATS_TLS_CERT: join(dir, 'client.pem'), NATS_TLS_KEY: join(dir, 'client.key') };
    const client = await NatsClient.connect({ ...loadConfig(NatsEnv, env).natsConnection('tls-conn'), connectTimeoutMs: 2000 });
    clients.push(client);
    expect(client.connection.info).toMatchObject({ tls_required: true, auth_required: true });
    await expect(client.connection.flush()).resolves.toBeUndefined();
  });
});

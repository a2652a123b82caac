import { readFileSync } from 'node:fs';

/**
 * How an app authenticates to NATS, ready for `NatsClient.connect` (data-access-messaging accepts
 * this shape; util-config may not import it). Files are read at start, so a bad path stops the app.
 */
export type NatsAuthSettings =
  | { kind: 'userPassword'; user: string; password: string }
  | { kind: 'token'; token: string }
  | { kind: 'nkeySeed'; seed: Uint8Array }
  | { kind: 'creds'; creds: Uint8Array };

export interface NatsConnectionSettings {
  /** Comma-separated, credentials removed (nats.js ignores them in URLs; they travel in `auth`). */
  servers: string;
  name: string;
  /** `_INBOX.<name>`, so the server can let each identity subscribe only to its own replies. */
  inboxPrefix: string;
  auth?: NatsAuthSettings;
  tls?: { caFile?: string; certFile?: string; keyFile?: string };
  /** Refuse a server that does not require authentication (production without NATS_ALLOW_ANONYMOUS). */
  requireAuthenticatedServer: boolean;
}

export interface NatsServerList {
  servers: string;
  /** `user:password@` or `token@` found in the list (the first entry that has them). */
  userinfo?: { user: string; password?: string };
  problems: string[];
}

/** Splits `NATS_URL` into servers without credentials and the credentials they carried. */
export function parseNatsServers(list: string): NatsServerList {
  const problems: string[] = [];
  let userinfo: NatsServerList['userinfo'];
  const servers = list.split(',').map((entry) => {
    const trimmed = entry.trim();
    const hasScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(trimmed);
    let url: URL;
    try {
      url = new URL(hasScheme ? trimmed : `nats://${trimmed}`);
    } catch {
      // Not said back: the entry may hold a password.
      problems.push('NATS_URL: not a list of nats://host:port URLs');
      return trimmed;
    }
    if (url.username) {
      const found = { user: decodeURIComponent(url.username), password: url.password ? decodeURIComponent(url.password) : undefined };
      if (userinfo && (userinfo.user !== found.user || userinfo.password !== found.password)) {
        problems.push('NATS_URL: its servers carry different credentials');
      }
      userinfo ??= found;
    }
    return hasScheme ? `${url.protocol}//${url.host}` : url.host;
  });
  return { servers: servers.join(','), userinfo, problems };
}

/** Reads a file named by an env variable; the error names the variable and the path (never the content). */
export function readEnvFile(variable: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (error) {
    throw new Error(`${variable}: cannot read ${path} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
  }
}

/** The user nkey seed (`SU…`) in a seed file, which may hold comments around it. */
export function nkeySeedFrom(variable: string, path: string): Uint8Array {
  const seed = /^\s*(SU[A-Z2-7]{50,})\s*$/m.exec(readEnvFile(variable, path).toString('utf8'))?.[1];
  if (!seed) throw new Error(`${variable}: ${path} holds no user nkey seed (a line starting "SU")`);
  return new TextEncoder().encode(seed);
}

export function credsFrom(variable: string, path: string): Uint8Array {
  const content = readEnvFile(variable, path);
  if (!content.includes('-----BEGIN NATS USER JWT-----') || !content.includes('-----BEGIN USER NKEY SEED-----')) {
    throw new Error(`${variable}: ${path} is not a NATS credentials file (user JWT and nkey seed)`);
  }
  return new Uint8Array(content);
}

/** The NATS variables of an env class (`NatsEnv`), as read and validated one by one. */
export interface NatsVariables {
  NATS_URL: string;
  NATS_USER?: string;
  NATS_PASSWORD?: string;
  NATS_TOKEN?: string;
  NATS_NKEY_SEED_FILE?: string;
  NATS_CREDS?: string;
  NATS_TLS_CA?: string;
  NATS_TLS_CERT?: string;
  NATS_TLS_KEY?: string;
}

/**
 * The connection settings for `name`, and the problems (each naming its variables): at most one
 * way to authenticate, readable files, and credentials when `refuseAnonymous` (production).
 */
export function resolveNatsConnection(env: NatsVariables, name: string, refuseAnonymous: boolean): { settings: NatsConnectionSettings; problems: string[] } {
  const parsed = parseNatsServers(env.NATS_URL);
  const problems = [...parsed.problems];
  const methods: [variable: string, build: () => NatsAuthSettings][] = [];
  const inUrl = parsed.userinfo;
  if (inUrl) {
    methods.push(['NATS_URL', () => (inUrl.password === undefined ? { kind: 'token', token: inUrl.user } : { kind: 'userPassword', user: inUrl.user, password: inUrl.password })]);
  }
  const { NATS_USER: user, NATS_PASSWORD: password } = env;
  if (user !== undefined && password !== undefined) methods.push(['NATS_USER', () => ({ kind: 'userPassword', user, password })]);
  else if (user !== undefined) problems.push('NATS_PASSWORD: required with NATS_USER');
  else if (password !== undefined) problems.push('NATS_USER: required with NATS_PASSWORD');
  const { NATS_TOKEN: token, NATS_NKEY_SEED_FILE: seedFile, NATS_CREDS: credsFile } = env;
  if (token !== undefined) methods.push(['NATS_TOKEN', () => ({ kind: 'token', token })]);
  if (seedFile !== undefined) methods.push(['NATS_NKEY_SEED_FILE', () => ({ kind: 'nkeySeed', seed: nkeySeedFrom('NATS_NKEY_SEED_FILE', seedFile) })]);
  if (credsFile !== undefined) methods.push(['NATS_CREDS', () => ({ kind: 'creds', creds: credsFrom('NATS_CREDS', credsFile) })]);
  if (methods.length > 1) problems.push(`${methods.map(([v]) => v).join(', ')}: set only one way to authenticate to NATS`);

  let auth: NatsAuthSettings | undefined;
  try {
    auth = methods[0]?.[1]();
  } catch (error) {
    problems.push((error as Error).message);
  }

  const tlsFiles = { caFile: ['NATS_TLS_CA', env.NATS_TLS_CA], certFile: ['NATS_TLS_CERT', env.NATS_TLS_CERT], keyFile: ['NATS_TLS_KEY', env.NATS_TLS_KEY] } as const;
  const tls: NonNullable<NatsConnectionSettings['tls']> = {};
  for (const [option, [variable, path]] of Object.entries(tlsFiles)) {
    if (path === undefined) continue;
    try {
      readEnvFile(variable, path);
      tls[option as keyof typeof tls] = path;
    } catch (error) {
      problems.push((error as Error).message);
    }
  }
  if ((env.NATS_TLS_CERT === undefined) !== (env.NATS_TLS_KEY === undefined)) problems.push('NATS_TLS_CERT, NATS_TLS_KEY: set both or neither');

  if (refuseAnonymous && !methods.length) {
    problems.push(
      'NATS_CREDS, NATS_NKEY_SEED_FILE, NATS_USER + NATS_PASSWORD, NATS_TOKEN: none is set, and NODE_ENV=production needs NATS credentials (set NATS_ALLOW_ANONYMOUS=true to use an open NATS on purpose)',
    );
  }
  const settings: NatsConnectionSettings = {
    servers: parsed.servers,
    name,
    inboxPrefix: `_INBOX.${name}`,
    auth,
    tls: Object.keys(tls).length ? tls : undefined,
    requireAuthenticatedServer: refuseAnonymous,
  };
  return { settings, problems };
}

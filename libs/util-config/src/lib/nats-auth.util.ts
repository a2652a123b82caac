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

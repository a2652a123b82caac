import { CliException } from './cli.exception';

export const DEFAULT_REGISTRY_URL = 'http://127.0.0.1:3013';

/** What every registry command reads: flags win over the environment, which is the preferred place for tokens. */
export interface RegistryOptions {
  registryUrl?: string;
  token?: string;
}

export interface RegistrySettings {
  /** Origin (plus a path prefix, if any) without credentials or a trailing slash. */
  baseUrl: string;
  registryToken?: string;
  adminToken?: string;
}

export function registrySettings(options: RegistryOptions, env: NodeJS.ProcessEnv = process.env): RegistrySettings {
  const raw = options.registryUrl ?? env.SWITCHBOARD_REGISTRY_URL ?? DEFAULT_REGISTRY_URL;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw CliException.usage(`${options.registryUrl ? '--registry-url' : 'SWITCHBOARD_REGISTRY_URL'} is not a URL (e.g. http://127.0.0.1:3013)`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw CliException.usage(`${options.registryUrl ? '--registry-url' : 'SWITCHBOARD_REGISTRY_URL'} must be an http:// or https:// URL`);
  }
  if (url.username || url.password) {
    throw CliException.usage('the registry URL must not carry credentials: set SWITCHBOARD_REGISTRY_TOKEN instead');
  }
  const baseUrl = `${url.origin}${url.pathname.replace(/\/+$/, '')}`;
  const nonEmpty = (value: string | undefined) => (value ? value : undefined);
  // --token stands for whichever token the command needs.
  return {
    baseUrl,
    registryToken: nonEmpty(options.token) ?? nonEmpty(env.SWITCHBOARD_REGISTRY_TOKEN),
    adminToken: nonEmpty(options.token) ?? nonEmpty(env.SWITCHBOARD_ADMIN_TOKEN),
  };
}

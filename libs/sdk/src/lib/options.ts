import * as nestCommon from '@nestjs/common';
import { resolveNatsConnection } from '@switchboard/config';
import { NatsClient } from '@switchboard/messaging';

/** Where the SDK writes its few lines (reconnects, retries given up); default: warnings and errors to stderr. */
export interface SwitchboardLogger {
  log(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

/**
 * How to reach Switchboard. Every field is optional: the defaults come from the environment variables
 * of the registry guide (and the apps' NATS variables), and explicit options win.
 */
export interface SwitchboardConnectionOptions {
  /** registry-api's base URL. `SERVICE_REGISTRY_URL`, default `http://127.0.0.1:3013`. */
  registryUrl?: string;
  /** Write token for registry-api (`X-Registry-Token`). `SERVICE_REGISTRY_TOKEN`. */
  registryToken?: string;
  /** Comma-separated NATS servers. `SWITCHBOARD_NATS_URL`, then `NATS_URL`, default `nats://127.0.0.1:4222`. */
  natsUrl?: string;
  /** Subject prefix of a shared NATS (tests, several deployments). `SWITCHBOARD_SUBJECT_PREFIX`, then `SUBJECT_PREFIX`. */
  subjectPrefix?: string;
  /** The environment this process belongs to. `SERVICE_ENVIRONMENT`, default `development`. */
  environment?: string;
  /** NATS connection name (shown by the server, and the inbox prefix its permissions allow). */
  connectionName?: string;
  logger?: SwitchboardLogger;
}

/**
 * Sends the SDK's log lines (NATS reconnects, retries given up, re-registrations) to `logger`; by
 * default warnings and errors go to stderr. Inside a NestJS app (the monorepo's own, or through
 * `@switchboard/client/nest`) Nest's Logger is used instead and this changes nothing.
 */
export function useLogger(logger: SwitchboardLogger): void {
  const sink = (nestCommon as unknown as { switchboardLogSink?: { current: SwitchboardLogger } }).switchboardLogSink;
  if (sink) sink.current = logger;
}

/** The options with every default filled in. */
export interface ResolvedConnection {
  registryUrl: string;
  registryToken?: string;
  natsUrl: string;
  subjectPrefix?: string;
  environment: string;
}

export function resolveConnection(options: SwitchboardConnectionOptions, env: NodeJS.ProcessEnv = process.env): ResolvedConnection {
  return {
    registryUrl: (options.registryUrl ?? env['SERVICE_REGISTRY_URL'] ?? 'http://127.0.0.1:3013').replace(/\/+$/, ''),
    registryToken: options.registryToken ?? env['SERVICE_REGISTRY_TOKEN'],
    natsUrl: options.natsUrl ?? env['SWITCHBOARD_NATS_URL'] ?? env['NATS_URL'] ?? 'nats://127.0.0.1:4222',
    subjectPrefix: options.subjectPrefix ?? env['SWITCHBOARD_SUBJECT_PREFIX'] ?? env['SUBJECT_PREFIX'] ?? undefined,
    environment: options.environment ?? env['SERVICE_ENVIRONMENT'] ?? 'development',
  };
}

/**
 * @internal
 * A NATS connection with the credentials of the environment (`NATS_USER`/`NATS_PASSWORD`,
 * `NATS_TOKEN`, `NATS_NKEY_SEED_FILE`, `NATS_CREDS`, `NATS_TLS_*`: a service identity of the
 * security model), as the apps connect.
 */
export async function connectNats(natsUrl: string, name: string, env: NodeJS.ProcessEnv = process.env): Promise<NatsClient> {
  const { settings, problems } = resolveNatsConnection(
    {
      NATS_URL: natsUrl,
      NATS_USER: env['NATS_USER'],
      NATS_PASSWORD: env['NATS_PASSWORD'],
      NATS_TOKEN: env['NATS_TOKEN'],
      NATS_NKEY_SEED_FILE: env['NATS_NKEY_SEED_FILE'],
      NATS_CREDS: env['NATS_CREDS'],
      NATS_TLS_CA: env['NATS_TLS_CA'],
      NATS_TLS_CERT: env['NATS_TLS_CERT'],
      NATS_TLS_KEY: env['NATS_TLS_KEY'],
    },
    name,
    false,
  );
  if (problems.length) throw new Error(`@switchboard/client: NATS settings: ${problems.join('; ')}`);
  return NatsClient.connect({ ...settings, name });
}

import { Command, Option } from 'commander';
import type { ParsedRegistryEvent } from '@switchboard/contracts';
import type { Msg } from '@switchboard/messaging';
import { Column, csvField, printable, renderCsv } from '../output/format.util';
import { ENVIRONMENT_CHOICES } from './choices.util';
import { CliException } from './cli.exception';
import { action, CliIo } from './command.util';

/** One registry event as a row: the same for the text line, CSV and (with the event itself) JSON. */
export interface EventRow {
  time: string;
  kind: string;
  environment: string;
  serviceName: string;
  serviceId: string;
  revision: number;
  status: string;
  models: string;
  detail: string;
}

export function eventRow(parsed: ParsedRegistryEvent): EventRow {
  const { event } = parsed;
  const base = { time: event.time, kind: parsed.kind, revision: event.data.revision };
  if (parsed.kind === 'deregistered') {
    const d = parsed.event.data;
    return { ...base, environment: d.environment, serviceName: d.serviceName, serviceId: d.serviceId, status: 'deregistered', models: (d.models ?? []).join(' '), detail: '' };
  }
  const instance = parsed.event.data.instance;
  const state = `${instance.status}/${instance.adminState}`;
  const detail =
    parsed.kind === 'statusChanged'
      ? `${parsed.event.data.from.status}/${parsed.event.data.from.adminState} -> ${state}${parsed.event.data.reason ? ` (${parsed.event.data.reason})` : ''}`
      : instance.internalUrl;
  return { ...base, environment: instance.environment, serviceName: instance.serviceName, serviceId: instance.serviceId, status: state, models: instance.models.join(' '), detail };
}

export const EVENT_COLUMNS: readonly Column<EventRow>[] = [
  { title: 'Time', table: (r) => r.time },
  { title: 'Event', table: (r) => r.kind },
  { title: 'Environment', table: (r) => r.environment },
  { title: 'Service', table: (r) => r.serviceName },
  { title: 'Service ID', table: (r) => r.serviceId },
  { title: 'Revision', table: (r) => String(r.revision) },
  { title: 'Status', table: (r) => r.status },
  { title: 'Models', table: (r) => r.models },
  { title: 'Detail', table: (r) => r.detail },
];

/** `2026-11-30T12:00:01.123Z  statusChanged  development  vllm/vllm-a  rev 42  unhealthy/enabled  models=llama-2-7b  healthy/enabled -> unhealthy/enabled (…)` */
export function eventLine(r: EventRow): string {
  const models = r.models ? `  models=${r.models.replace(/ /g, ',')}` : '';
  return printable(`${r.time}  ${r.kind}  ${r.environment}  ${r.serviceName}/${r.serviceId}  rev ${r.revision}  ${r.status}${models}${r.detail ? `  ${r.detail}` : ''}`) + '\n';
}

export function addWatchCommand(program: Command, io: CliIo): void {
  program
    .command('watch')
    .description("Print the registry's events live from NATS, one line each, until Ctrl-C")
    .addOption(new Option('--environment <environment>', 'only events of this environment').choices(ENVIRONMENT_CHOICES))
    .addOption(new Option('--format <format>', 'table: one line per event; json: one CloudEvent per line (NDJSON); csv: a header, then a row per event').choices(['table', 'json', 'csv']).default('table'))
    .addHelpText(
      'after',
      `
NATS settings as the apps read them: NATS_URL (default nats://127.0.0.1:4222), SUBJECT_PREFIX, and one of
NATS_USER + NATS_PASSWORD, NATS_TOKEN, NATS_NKEY_SEED_FILE, NATS_CREDS; NATS_TLS_CA/CERT/KEY.

Examples:
  admin-cli watch
  admin-cli watch --environment production --format json | jq .`,
    )
    .action(
      action<{ environment?: string }>(io, async (context) => {
        await watch(context.options.environment, context.options.format, io);
      }),
    );
}

/** Connects, prints events until SIGINT/SIGTERM, then drains and resolves (exit 0). */
async function watch(environment: string | undefined, format: string, io: CliIo): Promise<void> {
  // Loaded here only: validation classes and the NATS client are the slow part of a start. The
  // contracts' decorators read design-time metadata, hence reflect-metadata first.
  await import('reflect-metadata');
  const [{ parseRegistryEvent, SubjectSpace }, { NatsClient, decodeJsonObject, MAX_EVENT_BYTES }, { resolveNatsConnection }, { Logger }] = await Promise.all([
    import('@switchboard/contracts'),
    import('@switchboard/messaging'),
    import('@switchboard/config'),
    import('@nestjs/common'),
  ]);
  // The client's own warnings (reconnects, refused messages) go to stderr, so stdout holds events only.
  Logger.overrideLogger({
    log: () => undefined,
    error: (message: unknown) => io.err(`admin-cli: ${String(message)}\n`),
    warn: (message: unknown) => io.err(`admin-cli: ${String(message)}\n`),
  });
  const env = process.env;
  const prefix = env.SUBJECT_PREFIX ?? '';
  if (!/^[A-Za-z0-9_-]*$/.test(prefix)) throw CliException.usage('SUBJECT_PREFIX may hold only letters, digits, "_" and "-"');
  const production = env.NODE_ENV === 'production' && env.NATS_ALLOW_ANONYMOUS !== 'true';
  const { settings, problems } = resolveNatsConnection({ ...env, NATS_URL: env.NATS_URL ?? 'nats://127.0.0.1:4222' }, 'admin-cli', production);
  if (problems.length) throw CliException.usage(problems.join('; '));
  let client: Awaited<ReturnType<typeof NatsClient.connect>>;
  try {
    client = await NatsClient.connect({ ...settings, connectTimeoutMs: 5000 });
  } catch (error) {
    throw CliException.unavailable(`cannot connect to NATS (${printable((error as Error).message)}): check NATS_URL and the NATS_* credentials`);
  }
  const subjects = new SubjectSpace(prefix);
  if (format === 'csv') io.out(renderCsv(EVENT_COLUMNS, []));
  client.subscribe(subjects.registryEventsAll, (msg: Msg) => {
    const json = decodeJsonObject(msg.data, MAX_EVENT_BYTES);
    const parsed = parseRegistryEvent(json);
    const row = eventRow(parsed);
    if (environment && row.environment !== environment) return;
    if (format === 'json') io.out(JSON.stringify(parsed.event) + '\n');
    else if (format === 'csv') io.out(EVENT_COLUMNS.map((c) => csvField(c.table(row))).join(',') + '\r\n');
    else io.out(eventLine(row));
  });
  // Flushes the subscription, so an event published right after this line is seen.
  await client.connection.flush();
  io.err(`admin-cli: watching ${subjects.registryEventsAll}${environment ? ` (environment ${environment})` : ''} on ${settings.servers}; Ctrl-C to stop\n`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await client.close();
}

import { Command, InvalidArgumentError, Option } from 'commander';
import type { ServiceInstanceView } from '@switchboard/contracts';
import { SERVICE_COLUMNS } from '../output/columns.util';
import { Column, renderRows } from '../output/format.util';
import { ADMIN_STATE_CHOICES, ENVIRONMENT_CHOICES, HEALTH_STATUS_CHOICES } from './choices.util';
import { CliException } from './cli.exception';
import { action, CliIo, CommandContext, withCommonOptions } from './command.util';

const environmentOption = (required = false) => {
  const option = new Option('--environment <environment>', 'deployment environment').choices(ENVIRONMENT_CHOICES);
  return required ? option.makeOptionMandatory() : option;
};

function number(name: string) {
  return (value: string): number => {
    const parsed = Number(value);
    if (value.trim() === '' || !Number.isFinite(parsed)) throw new InvalidArgumentError(`${name} must be a number`);
    return parsed;
  };
}

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, ...value.split(',').map((v) => v.trim()).filter(Boolean)];
}

function printServices(context: CommandContext<unknown>, services: ServiceInstanceView[], json: unknown, heading?: string): void {
  context.io.out(renderRows(context.options.format, SERVICE_COLUMNS, services, json, heading));
}

interface RegisterServiceOptions {
  serviceName: string;
  serviceId: string;
  vmIp: string;
  internalPort: number;
  externalDomain: string;
  version: string;
  deploymentId: string;
  environment: string;
  region: string;
  capability?: string[];
  model?: string[];
  healthCheckEndpoint?: string;
  metadata?: string;
}

export function addServiceCommands(program: Command, io: CliIo): void {
  const services = program.command('services').description('Service instances (the registry guide): register, list, get, discover, status, heartbeat, delete');

  withCommonOptions(
    services
      .command('register')
      .description('Register a service instance (re-registering the same --service-id updates it)')
      .requiredOption('--service-name <name>', 'service identifier, e.g. mech-llms')
      .requiredOption('--service-id <id>', 'unique instance id, e.g. mech-llms-prod-1736958000')
      .requiredOption('--vm-ip <ip>', 'IP address or hostname the registry and prober reach it at')
      .requiredOption('--internal-port <port>', 'internal service port', number('--internal-port'))
      .requiredOption('--external-domain <domain>', 'public domain, e.g. llm.mechdna.net')
      .requiredOption('--version <version>', 'service version, e.g. 1.2.0')
      .requiredOption('--deployment-id <id>', 'deployment identifier, e.g. manual-registration')
      .addOption(environmentOption(true))
      .requiredOption('--region <region>', 'deployment region, e.g. nyc1')
      .option('--capability <list>', 'capabilities, comma-separated or repeated', collect)
      .option('--model <list>', 'models it serves (OpenAI-compatible backends), comma-separated or repeated', collect)
      .option('--health-check-endpoint <path>', 'health check path (default /health)')
      .option('--metadata <json>', 'additional information, a JSON object'),
  )
    .addHelpText(
      'after',
      `
Example:
  admin-cli services register --service-name mech-llms --service-id mech-llms-prod-1736958000 \\
    --vm-ip 174.138.68.108 --internal-port 3008 --external-domain llm.mechdna.net --version 1.2.0 \\
    --deployment-id manual-registration --environment production --region nyc1 --capability llm,streaming`,
    )
    .action(
      action<RegisterServiceOptions>(io, async (context) => {
        const o = context.options;
        let metadata: unknown;
        if (o.metadata !== undefined) {
          try {
            metadata = JSON.parse(o.metadata);
          } catch {
            throw CliException.usage('--metadata must be a JSON object, e.g. \'{"providers":["openai"]}\'');
          }
          if (metadata === null || typeof metadata !== 'object' || Array.isArray(metadata)) throw CliException.usage('--metadata must be a JSON object');
        }
        const result = await context.registry().registerService({
          serviceName: o.serviceName,
          serviceId: o.serviceId,
          vmIp: o.vmIp,
          internalPort: o.internalPort,
          externalDomain: o.externalDomain,
          version: o.version,
          deploymentId: o.deploymentId,
          environment: o.environment,
          region: o.region,
          ...(o.capability ? { capabilities: o.capability } : {}),
          ...(o.model ? { models: o.model } : {}),
          ...(o.healthCheckEndpoint ? { healthCheckEndpoint: o.healthCheckEndpoint } : {}),
          ...(metadata ? { metadata } : {}),
        });
        const what = result.created ? 'registered' : result.changed ? 'updated' : 'unchanged (already registered as given)';
        printServices(context, [result.service], result, `Service ${result.service.serviceId}: ${what}`);
      }),
    );

  withCommonOptions(
    services
      .command('list')
      .description('List service instances')
      .addOption(environmentOption())
      .option('--service-name <name>', 'only instances of this service')
      .addOption(new Option('--status <status>', 'only instances with this health').choices(HEALTH_STATUS_CHOICES))
      .option('--capability <capability>', 'only instances with this capability'),
  )
    .addHelpText('after', '\nExamples:\n  admin-cli services list\n  admin-cli services list --service-name mech-llms --environment production --format json')
    .action(
      action<{ environment?: string; serviceName?: string; status?: string; capability?: string }>(io, async (context) => {
        const { environment, serviceName, status, capability } = context.options;
        const list = await context.registry().listServices({ environment, serviceName, status, capability });
        printServices(context, list, list, `Found ${list.length} service instance(s)`);
      }),
    );

  withCommonOptions(services.command('get').description('One instance by its service id').argument('<serviceId>'))
    .addHelpText('after', '\nExample:\n  admin-cli services get mech-llms-prod-123456 --format json')
    .action(
      action(io, async (context, serviceId) => {
        const service = await context.registry().getService(serviceId);
        printServices(context, [service], service);
      }),
    );

  withCommonOptions(services.command('discover').description('One routable instance of a service (healthy before degraded)').argument('<serviceName>').addOption(environmentOption()))
    .addHelpText('after', '\nExample:\n  admin-cli services discover mech-llms --environment production')
    .action(
      action<{ environment?: string }>(io, async (context, serviceName) => {
        const service = await context.registry().discover(serviceName, context.options.environment);
        printServices(context, [service], service);
      }),
    );

  withCommonOptions(
    services
      .command('status')
      .description('Set the health and/or the admin state of an instance')
      .argument('<serviceId>')
      .addOption(new Option('--status <status>', 'health').choices(HEALTH_STATUS_CHOICES))
      .addOption(new Option('--admin-state <state>', 'admin state').choices(ADMIN_STATE_CHOICES))
      .option('--reason <text>', 'why (recorded in the statusChanged event)'),
  )
    .addHelpText('after', '\nExamples:\n  admin-cli services status mech-llms-prod-123456 --status healthy\n  admin-cli services status mech-llms-prod-123456 --admin-state draining --reason "node maintenance"')
    .action(
      action<{ status?: string; adminState?: string; reason?: string }>(io, async (context, serviceId) => {
        const { status, adminState, reason } = context.options;
        if (!status && !adminState) throw CliException.usage('give --status and/or --admin-state');
        const result = await context.registry().setServiceStatus(serviceId, { status, adminState, reason });
        printServices(context, [result.service], result, `Service ${serviceId}: ${result.changed ? 'changed' : 'unchanged'}`);
      }),
    );

  withCommonOptions(
    services
      .command('heartbeat')
      .description('Send one heartbeat (with optional load figures) for an instance')
      .argument('<serviceId>')
      .option('--requests-per-minute <n>', 'load figure', number('--requests-per-minute'))
      .option('--average-latency <ms>', 'load figure', number('--average-latency'))
      .option('--error-rate <ratio>', 'load figure, 0-1', number('--error-rate'))
      .option('--inflight <n>', 'load figure', number('--inflight')),
  )
    .addHelpText('after', '\nExample:\n  admin-cli services heartbeat mech-llms-prod-123456 --requests-per-minute 45 --average-latency 250 --error-rate 0.01')
    .action(
      action<{ requestsPerMinute?: number; averageLatency?: number; errorRate?: number; inflight?: number }>(io, async (context, serviceId) => {
        const { requestsPerMinute, averageLatency, errorRate, inflight } = context.options;
        const metadata = Object.fromEntries(Object.entries({ requestsPerMinute, averageLatency, errorRate, inflight }).filter(([, v]) => v !== undefined));
        const answer = await context.registry().heartbeat(serviceId, metadata);
        const row = { serviceId, lastSeen: typeof answer.lastSeen === 'string' ? answer.lastSeen : '' };
        const columns: Column<typeof row>[] = [
          { title: 'Service ID', table: (r) => r.serviceId },
          { title: 'Last Seen', table: (r) => r.lastSeen },
        ];
        context.io.out(renderRows(context.options.format, columns, [row], answer, `Heartbeat accepted for ${serviceId}`));
      }),
    );

  withCommonOptions(services.command('delete').description('Deregister (delete) an instance').argument('<serviceId>'))
    .addHelpText('after', '\nExample:\n  admin-cli services delete mech-llms-prod-123456')
    .action(
      action(io, async (context, serviceId) => {
        const answer = await context.registry().deleteService(serviceId);
        const row = { serviceId, revision: String(answer.revision ?? '') };
        const columns: Column<typeof row>[] = [
          { title: 'Service ID', table: (r) => r.serviceId },
          { title: 'Revision', table: (r) => r.revision },
        ];
        context.io.out(renderRows(context.options.format, columns, [row], answer, `Deleted ${serviceId}`));
      }),
    );

  withCommonOptions(program.command('health-checks').description('Run a round of health checks now (health-prober answers; needs SWITCHBOARD_ADMIN_TOKEN)'))
    .addHelpText('after', '\nExample:\n  SWITCHBOARD_ADMIN_TOKEN=… admin-cli health-checks')
    .action(
      action(io, async (context) => {
        const summary = await context.registry().runHealthChecks();
        const rows = Object.entries(summary).map(([key, value]) => ({ key, value: typeof value === 'string' ? value : JSON.stringify(value) }));
        const columns: Column<(typeof rows)[number]>[] = [
          { title: 'Key', table: (r) => r.key },
          { title: 'Value', table: (r) => r.value },
        ];
        context.io.out(renderRows(context.options.format, columns, rows, summary, 'Health checks ran'));
      }),
    );
}

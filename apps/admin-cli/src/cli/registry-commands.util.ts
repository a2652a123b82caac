import { Command, Option } from 'commander';
import type { ModelDeploymentView } from '@switchboard/contracts';
import { MODEL_COLUMNS } from '../output/columns.util';
import { Column, printable, renderRows } from '../output/format.util';
import { checkEndpoint } from '../registry/endpoint-check.util';
import { CliException } from './cli.exception';
import { ENVIRONMENT_CHOICES, MODEL_STATUS_CHOICES } from './choices.util';
import { action, CliIo, CommandContext, withCommonOptions } from './command.util';

interface SelectorOptions {
  modelName: string;
  environment: string;
}

const environmentOption = (required: boolean) => {
  const option = new Option('--environment <environment>', 'deployment environment').choices(ENVIRONMENT_CHOICES);
  return required ? option.makeOptionMandatory() : option;
};
const modelNameOption = () => new Option('--model-name <name>', 'model identifier, e.g. llama-2-7b').makeOptionMandatory();
const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

function printModels(context: CommandContext<unknown>, models: ModelDeploymentView[], json: unknown, heading: string): void {
  context.io.out(renderRows(context.options.format, MODEL_COLUMNS, models, json, heading));
}

export function addRegistryCommands(program: Command, io: CliIo): void {
  const registry = program
    .command('registry')
    .description('Model deployments: register, enable, disable, deregister, list (the vLLM model registration workflow)');

  withCommonOptions(
    registry
      .command('register')
      .description('Register a model deployment (or preview it with --dry-run); re-registering the same endpoint updates it')
      .addOption(modelNameOption())
      .option('--endpoint <host:port>', 'Kubernetes service endpoint with port (default: {model}-{environment}.{namespace}.svc.cluster.local:8000)')
      .addOption(environmentOption(true))
      .option('--namespace <namespace>', 'Kubernetes namespace', 'system')
      .option('--dry-run', "preview: the registry validates it and says what would change, and writes nothing", false),
  )
    .addHelpText(
      'after',
      `
Examples:
  admin-cli registry register \\
    --model-name llama-2-7b \\
    --endpoint llama-2-7b-development.system.svc.cluster.local:8000 \\
    --environment development \\
    --namespace system

  # Preview first: nothing is written
  admin-cli registry register --model-name llama-2-7b --environment production --dry-run`,
    )
    .action(
      action<SelectorOptions & { endpoint?: string; namespace: string; dryRun: boolean }>(io, async (context) => {
        const { modelName, endpoint, environment, namespace, dryRun } = context.options;
        const result = await context.registry().registerModel({ modelName, endpoint, environment, namespace, dryRun });
        const what = result.created ? 'created' : result.changed ? 'updated' : 'unchanged (already registered as given)';
        const heading = result.dryRun
          ? `Dry run: model deployment ${modelName} in ${environment} would be ${result.created ? 'created' : result.changed ? 'updated' : 'left unchanged'} (nothing written)`
          : `Model deployment ${modelName} in ${environment}: ${what}`;
        printModels(context, result.models, result, heading);
      }),
    );

  for (const [name, state, description] of [
    ['enable', 'enabled', 'Enable a previously disabled model for routing'],
    ['disable', 'disabled', 'Temporarily disable a model without deregistering (the router answers 503 model not ready)'],
  ] as const) {
    withCommonOptions(registry.command(name).description(description).addOption(modelNameOption()).addOption(environmentOption(true)))
      .addHelpText('after', `\nExample:\n  admin-cli registry ${name} --model-name llama-2-7b --environment development`)
      .action(
        action<SelectorOptions>(io, async (context) => {
          const { modelName, environment } = context.options;
          const models = await context.registry().setModelState(name, modelName, environment);
          printModels(context, models, { action: name, modelName, environment, models }, `Model ${modelName} ${state} in ${environment} (${plural(models.length, 'deployment')})`);
        }),
      );
  }

  withCommonOptions(
    registry
      .command('deregister')
      .description("Remove a model from routing: its deployments stay listed with status 'disabled' (`enable` brings them back); --purge deletes them")
      .addOption(modelNameOption())
      .addOption(environmentOption(true))
      .option('--purge', 'delete the deployments from the registry (deregistered events; `register` is then needed to bring them back)', false),
  )
    .addHelpText(
      'after',
      `
Examples:
  admin-cli registry deregister --model-name llama-2-7b --environment development
  admin-cli registry deregister --model-name llama-2-7b --environment development --purge`,
    )
    .action(
      action<SelectorOptions & { purge: boolean }>(io, async (context) => {
        const { modelName, environment, purge } = context.options;
        if (!purge) {
          const models = await context.registry().setModelState('disable', modelName, environment);
          printModels(
            context,
            models,
            { action: 'deregister', modelName, environment, models },
            `Model ${modelName} deregistered in ${environment}: removed from routing, status disabled (${plural(models.length, 'deployment')}; \`admin-cli registry enable\` brings it back, --purge deletes it)`,
          );
          return;
        }
        const removed = await context.registry().purgeModel(modelName, environment);
        const columns: Column<{ serviceId: string; revision: number }>[] = [
          { title: 'ID', table: (r) => r.serviceId },
          { title: 'Revision', table: (r) => String(r.revision) },
        ];
        context.io.out(
          renderRows(context.options.format, columns, removed, { action: 'purge', modelName, environment, deregistered: removed }, `Model ${modelName} purged from ${environment} (${plural(removed.length, 'deployment')} deleted)`),
        );
      }),
    );

  registry
    .command('verify')
    .description("Check that a model server answers before registering it: GET /health, then /v1/models (2xx = healthy); exit 1 when it does not")
    .requiredOption('--endpoint <host:port>', 'the model server, e.g. llama-2-7b-development.system.svc.cluster.local:8000')
    .option('--timeout <ms>', 'per request', (v) => Number(v), 5000)
    .addHelpText('after', '\nExample:\n  admin-cli registry verify --endpoint 127.0.0.1:8000')
    .action(
      action<{ endpoint: string; timeout: number }>(io, async (context) => {
        const { endpoint, timeout } = context.options;
        if (!Number.isInteger(timeout) || timeout < 1) throw CliException.usage('--timeout must be a positive number of milliseconds');
        const check = await checkEndpoint(endpoint, timeout);
        if (!check.healthy) throw CliException.usage(`${printable(endpoint)} is not healthy (${check.detail})`);
        context.io.out(`✓ ${printable(endpoint)} is healthy (${check.detail})\n`);
      }),
    );

  withCommonOptions(
    registry
      .command('list')
      .description('List registered model deployments')
      .addOption(environmentOption(false))
      .addOption(new Option('--status <status>', 'only deployments with this status').choices(MODEL_STATUS_CHOICES))
      .option('--model-name <name>', 'only deployments of this model'),
  )
    .addHelpText(
      'after',
      `
Statuses: ready (enabled and healthy), degraded, unhealthy, offline (enabled, by health), disabled, draining (set by an operator).
Dates are UTC, YYYY-MM-DD HH:MM in the table (ISO 8601 in json and csv); blank where unknown.

Examples:
  admin-cli registry list
  admin-cli registry list --environment production
  admin-cli registry list --status ready
  admin-cli registry list --format json
  admin-cli registry list --environment development | grep llama-2-7b`,
    )
    .action(
      action<{ environment?: string; status?: string; modelName?: string }>(io, async (context) => {
        const { environment, status, modelName } = context.options;
        const models = await context.registry().listModels({ environment, status, model: modelName });
        printModels(context, models, models, `Found ${models.length} model deployment(s)`);
      }),
    );
}

import { Command, CommanderError } from 'commander';
import { CliException, ExitCode } from './cli.exception';
import { CliIo } from './command.util';
import { addRegistryCommands } from './registry-commands.util';
import { addServiceCommands } from './service-commands.util';
import { addWatchCommand } from './watch-command.util';

export function buildProgram(io: CliIo): Command {
  const program = new Command('admin-cli')
    .description('Operate the Switchboard registry: model deployments, service instances, health checks and live events (over registry-api\'s REST API; NATS for `watch`).')
    .version('0.1.0')
    .enablePositionalOptions()
    .showSuggestionAfterError()
    .addHelpText(
      'after',
      `
Environment:
  SWITCHBOARD_REGISTRY_URL    registry-api base URL (default http://127.0.0.1:3013)
  SWITCHBOARD_REGISTRY_TOKEN  X-Registry-Token for writes (registry-api's REGISTRY_TOKEN; dev-registry-token in development)
  SWITCHBOARD_ADMIN_TOKEN     X-Admin-Token for admin commands (health-checks; registry-api's ADMIN_TOKEN)
  NATS_URL, SUBJECT_PREFIX, NATS_*  for \`watch\`, as the apps read them

Exit codes: 0 success, 1 usage or validation error, 2 the registry could not be reached or refused the token.

Examples:
  admin-cli registry register --model-name llama-2-7b --environment development --namespace system
  admin-cli registry list --environment production --format json
  admin-cli services list --environment production
  admin-cli watch --environment development`,
    );
  // Before the subcommands exist: they copy these settings when created. Commander would exit by
  // itself otherwise; overriding keeps one exit path (runCli), which tests also run in-process.
  program.configureOutput({ writeOut: io.out, writeErr: io.err }).exitOverride();
  addRegistryCommands(program, io);
  addServiceCommands(program, io);
  addWatchCommand(program, io);
  return program;
}

/** Parses `argv` (without node and the script) and runs the command; resolves to the exit code. */
export async function runCli(argv: string[], io: CliIo): Promise<ExitCode> {
  const program = buildProgram(io);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return ExitCode.Ok;
  } catch (error) {
    if (error instanceof CommanderError) {
      // Help and version are successes; the message of a usage error is already printed.
      return error.exitCode === 0 ? ExitCode.Ok : ExitCode.Usage;
    }
    if (error instanceof CliException) {
      io.err(`admin-cli: ${error.message}\n`);
      return error.exitCode;
    }
    io.err(`admin-cli: unexpected error: ${(error as Error)?.stack ?? String(error)}\n`);
    return ExitCode.Usage;
  }
}

import { Command, Option } from 'commander';
import { OUTPUT_FORMATS, OutputFormat } from '../output/format.util';
import { RegistryApiClient } from '../registry/registry-api.util';
import { registrySettings, RegistryOptions } from './cli.config';

/** Where a command writes; the process streams in main.ts, buffers in tests. */
export interface CliIo {
  out: (text: string) => void;
  err: (text: string) => void;
}

export interface CommonOptions extends RegistryOptions {
  format: OutputFormat;
}

/** What each command's action gets: its parsed options, the registry client they configure, and the output. */
export interface CommandContext<O> {
  options: O & CommonOptions;
  registry: () => RegistryApiClient;
  io: CliIo;
}

/** `--format`, `--registry-url`, `--token` on every command that talks to the registry, so each `--help` lists them. */
export function withCommonOptions(command: Command, formats: readonly string[] = OUTPUT_FORMATS): Command {
  return command
    .addOption(new Option('--format <format>', 'output format').choices(formats).default('table'))
    .addOption(new Option('--registry-url <url>', 'registry-api base URL (env: SWITCHBOARD_REGISTRY_URL, default http://127.0.0.1:3013)'))
    .addOption(new Option('--token <token>', 'token for this command; prefer SWITCHBOARD_REGISTRY_TOKEN / SWITCHBOARD_ADMIN_TOKEN (a flag shows in `ps` and shell history)'));
}

/** Wraps an action so it receives a {@link CommandContext}; errors propagate to {@link runCli}. */
export function action<O>(io: CliIo, run: (context: CommandContext<O>, ...args: string[]) => Promise<void>) {
  return async (...params: unknown[]): Promise<void> => {
    const command = params[params.length - 1] as Command;
    const options = command.opts() as O & CommonOptions;
    const args = params.slice(0, -2).filter((p): p is string => typeof p === 'string');
    let client: RegistryApiClient | undefined;
    await run({ options, io, registry: () => (client ??= new RegistryApiClient(registrySettings(options))) }, ...args);
  };
}

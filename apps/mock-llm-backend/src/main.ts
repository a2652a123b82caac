import { startMockBackend } from '@switchboard/mock-llm-backend';
import { loadMockBackendConfig, MockBackendAppConfig, MockBackendConfigError } from './mock-backend.config';

async function main(): Promise<void> {
  let config: MockBackendAppConfig;
  try {
    config = loadMockBackendConfig(process.env);
  } catch (error) {
    if (error instanceof MockBackendConfigError) {
      process.stderr.write(`mock-llm-backend: ${error.message}\n`);
      process.exit(78); // EX_CONFIG
    }
    throw error;
  }
  const backend = await startMockBackend(config);
  process.stdout.write(
    `mock-llm-backend ${backend.name} listening on http://${config.host}:${backend.port} ` +
      `models=${backend.models.join(',')} latencyMs=${config.latencyMs} tokensPerSecond=${config.tokensPerSecond} completionTokens=${config.completionTokens}\n`,
  );
  const stop = (signal: NodeJS.Signals): void => {
    // A second signal while closing means "now".
    process.once(signal, () => process.exit(1));
    backend.close().then(
      () => {
        process.stdout.write(`mock-llm-backend ${backend.name} stopped on ${signal}\n`);
        process.exit(0);
      },
      (error: Error) => {
        process.stderr.write(`mock-llm-backend: close failed on ${signal}: ${error.message}\n`);
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

main().catch((error: Error) => {
  process.stderr.write(`mock-llm-backend failed to start: ${error.stack ?? error.message}\n`);
  process.exit(1);
});

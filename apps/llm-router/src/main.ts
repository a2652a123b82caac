import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { ConfigValidationError, loadConfig, redactedConfig } from '@switchboard/config';
import { createLlmRouter } from './bootstrap';
import { LlmRouterConfig, productionRules } from './config/llm-router.config';

async function main(): Promise<void> {
  let config: LlmRouterConfig;
  try {
    config = loadConfig(LlmRouterConfig, process.env, productionRules);
  } catch (error) {
    if (error instanceof ConfigValidationError) {
      process.stderr.write(`llm-router: ${error.message}\n`);
      process.exit(78); // EX_CONFIG
    }
    throw error;
  }
  const app = await createLlmRouter(config);
  await app.listen(config.PORT, config.HOST);
  new Logger('llm-router').log(`listening on http://${config.HOST}:${config.PORT} for ${config.ROUTER_ENVIRONMENT} with ${JSON.stringify(redactedConfig(config))}`);
}

main().catch((error: Error) => {
  process.stderr.write(`llm-router failed to start: ${error.stack ?? error.message}\n`);
  process.exit(1);
});

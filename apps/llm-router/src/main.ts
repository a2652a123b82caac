import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { exitOnShutdownSignals, exitOnStartFailure, loadConfigOrExit, redactedConfig } from '@switchboard/config';
import { createLlmRouter } from './bootstrap';
import { LlmRouterConfig, productionRules } from './config/llm-router.config';

async function main(): Promise<void> {
  const config = loadConfigOrExit('llm-router', LlmRouterConfig, productionRules);
  if (config.isOpen) {
    new Logger('llm-router').warn('ROUTER_API_KEYS is not set: /v1 is served without authentication (development only; NODE_ENV=production refuses to start without keys)');
  }
  const app = await createLlmRouter(config);
  exitOnShutdownSignals(app, { app: 'llm-router', graceMs: config.shutdownGraceMs });
  await app.listen(config.PORT, config.HOST);
  new Logger('llm-router').log(`listening on http://${config.HOST}:${config.PORT} for ${config.ROUTER_ENVIRONMENT} with ${JSON.stringify(redactedConfig(config))}`);
}

main().catch(exitOnStartFailure('llm-router'));

import './tracing';
import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { exitOnShutdownSignals, exitOnStartFailure, loadConfigOrExit, redactedConfig } from '@switchboard/config';
import { createCacheInvalidator } from './bootstrap';
import { CacheInvalidatorConfig } from './config/cache-invalidator.config';

async function main(): Promise<void> {
  const config = loadConfigOrExit('cache-invalidator', CacheInvalidatorConfig);
  const app = await createCacheInvalidator(config);
  exitOnShutdownSignals(app, { app: 'cache-invalidator', graceMs: config.shutdownGraceMs });
  await app.listen(config.PORT, config.HOST);
  new Logger('cache-invalidator').log(`listening on http://${config.HOST}:${config.PORT} with ${JSON.stringify(redactedConfig(config))}`);
}

main().catch(exitOnStartFailure('cache-invalidator'));

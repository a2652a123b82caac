import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { ConfigValidationError, loadConfig, redactedConfig } from '@switchboard/config';
import { createCacheInvalidator } from './bootstrap';
import { CacheInvalidatorConfig } from './config/cache-invalidator.config';

async function main(): Promise<void> {
  let config: CacheInvalidatorConfig;
  try {
    config = loadConfig(CacheInvalidatorConfig, process.env);
  } catch (error) {
    if (error instanceof ConfigValidationError) {
      process.stderr.write(`cache-invalidator: ${error.message}\n`);
      process.exit(78); // EX_CONFIG
    }
    throw error;
  }
  const app = await createCacheInvalidator(config);
  await app.listen(config.PORT, config.HOST);
  new Logger('cache-invalidator').log(`listening on http://${config.HOST}:${config.PORT} with ${JSON.stringify(redactedConfig(config))}`);
}

main().catch((error: Error) => {
  process.stderr.write(`cache-invalidator failed to start: ${error.stack ?? error.message}\n`);
  process.exit(1);
});

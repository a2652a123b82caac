import './tracing';
import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { migrateWithLock, registryDataSourceOptions } from '@switchboard/persistence';
import { exitOnShutdownSignals, exitOnStartFailure, loadConfigOrExit, redactedConfig } from '@switchboard/config';
import { createRegistryApi } from './bootstrap';
import { productionRules, RegistryApiConfig } from './config/registry-api.config';

async function main(): Promise<void> {
  const logger = new Logger('registry-api');
  const config = loadConfigOrExit('registry-api', RegistryApiConfig, productionRules);
  if (process.argv[2] === 'migrate') {
    // `main.js migrate`: apply pending migrations under the advisory lock, touch nothing else. Two
    // connections: one holds the lock while the migrations run on the other.
    const dataSource = await new DataSource(registryDataSourceOptions(config.DATABASE_URL, 2)).initialize();
    const applied = await migrateWithLock(dataSource);
    logger.log(applied.length ? `applied migrations: ${applied.join(', ')}` : 'schema is up to date');
    await dataSource.destroy();
    return;
  }
  const app = await createRegistryApi(config);
  exitOnShutdownSignals(app, { app: 'registry-api', graceMs: config.shutdownGraceMs });
  await app.listen(config.PORT, config.HOST);
  logger.log(`listening on http://${config.HOST}:${config.PORT} (OpenAPI at /api/docs) with ${JSON.stringify(redactedConfig(config))}`);
}

main().catch(exitOnStartFailure('registry-api'));

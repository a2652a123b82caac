import { Global, Logger, Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { Client, ClientConfig } from 'pg';
import { DataSource, DataSourceOptions } from 'typeorm';
import { redactUrlsInText } from '@switchboard/config';
import { migrateWithLock, registryDataSourceOptions, RegistryRepository } from '@switchboard/persistence';
import type { RegistryApiConfig } from '../config/registry-api.config';
import { REGISTRY_API_CONFIG } from '../registry-api.tokens';

const logger = new Logger('Database');

/** Creates the database named in the URL when it is missing, so a fresh machine starts with one command. */
async function ensureDatabase(url: string): Promise<void> {
  const target = new URL(url);
  const name = decodeURIComponent(target.pathname.slice(1));
  const admin = new URL(url);
  admin.pathname = '/postgres';
  const client = new Client({ connectionString: admin.toString() });
  await client.connect();
  try {
    const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (!rowCount) {
      await client.query(`CREATE DATABASE "${name.replace(/"/g, '""')}"`).catch((error: { code?: string }) => {
        if (error.code !== '42P04') throw error; // created by a replica meanwhile
      });
      logger.log(`created database ${name}`);
    }
  } finally {
    await client.end();
  }
}

/**
 * The model workflow's troubleshooting text starts from this line: `failed to connect to database`,
 * with the cause (refused, unknown host, authentication, missing database); DATABASE_URL itself is never logged.
 * The error goes on to TypeORM's module, which retries and then stops the app, as before.
 */
async function connecting<T>(step: () => Promise<T>): Promise<T> {
  try {
    return await step();
  } catch (error) {
    const cause = (error as { code?: string; message?: string }).message || (error as { code?: string }).code || String(error);
    logger.error(`failed to connect to database: ${redactUrlsInText(cause)}`);
    throw error;
  }
}

/**
 * pg-pool takes its 'error' listener off a client while the client is checked out, and TypeORM's query
 * runner takes its own off once released: a connection terminated in such a gap (a failover,
 * pg_terminate_backend) emitted 'error' with no listener, which ends the process. So every client keeps
 * one listener for its whole life. Nothing is lost by it: the statement in flight still rejects, and the
 * pool drops a client that is no longer queryable.
 */
class GuardedClient extends Client {
  constructor(config?: string | ClientConfig) {
    super(config);
    this.on('error', () => undefined);
  }
}

@Global()
@Module({
  imports: [
    TypeOrmModule.forRootAsync({
      inject: [REGISTRY_API_CONFIG],
      useFactory: async (config: RegistryApiConfig) => {
        if (config.DATABASE_CREATE_IF_MISSING) await connecting(() => ensureDatabase(config.DATABASE_URL));
        const options = registryDataSourceOptions(config.DATABASE_URL, config.DATABASE_POOL_SIZE);
        // `extra` goes to pg's Pool, which builds its clients with `Client`.
        return { ...options, extra: { ...options.extra, Client: GuardedClient } };
      },
      dataSourceFactory: async (options) => {
        const dataSource = await connecting(() => new DataSource(options as DataSourceOptions).initialize());
        const applied = await migrateWithLock(dataSource);
        if (applied.length) logger.log(`applied migrations: ${applied.join(', ')}`);
        return dataSource;
      },
    }),
  ],
  providers: [{ provide: RegistryRepository, inject: [DataSource], useFactory: (ds: DataSource) => new RegistryRepository(ds) }],
  exports: [RegistryRepository],
})
export class DatabaseModule {}

import { DataSource, DataSourceOptions } from 'typeorm';
import { InitialSchema1732320000000 } from './migrations/1732320000000-initial-schema';
import { HealthCheckSettings1732400000000 } from './migrations/1732400000000-health-check-settings';
import { LockInstanceFunction1732500000000 } from './migrations/1732500000000-lock-instance-function';
import { LockInstancesFunction1732600000000 } from './migrations/1732600000000-lock-instances-function';
import { LockInstancesRows1732700000000 } from './migrations/1732700000000-lock-instances-rows';
import { OutboxEntity } from './outbox.entity';
import { ServiceInstanceEntity } from './service-instance.entity';
import { ServiceTombstoneEntity } from './service-tombstone.entity';

export const REGISTRY_ENTITIES = [ServiceInstanceEntity, ServiceTombstoneEntity, OutboxEntity];
export const REGISTRY_MIGRATIONS = [InitialSchema1732320000000, HealthCheckSettings1732400000000, LockInstanceFunction1732500000000, LockInstancesFunction1732600000000, LockInstancesRows1732700000000];

/** Any string hashes into this key space; the constant marks "registry-api migrations". */
const MIGRATION_LOCK_KEY = 7_357_001;

export function registryDataSourceOptions(url: string, poolSize = 10): DataSourceOptions {
  return {
    type: 'postgres',
    url,
    entities: REGISTRY_ENTITIES,
    migrations: REGISTRY_MIGRATIONS,
    migrationsTableName: 'registry_migrations',
    synchronize: false,
    migrationsRun: false,
    logging: ['error'],
    extra: { max: poolSize, application_name: 'switchboard-registry-api' },
  };
}

/**
 * Runs pending migrations holding a session advisory lock, so replicas that start together
 * wait for one another instead of racing on DDL. Returns the names of the migrations applied.
 */
export async function migrateWithLock(dataSource: DataSource): Promise<string[]> {
  const runner = dataSource.createQueryRunner();
  await runner.connect();
  try {
    await runner.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
    const applied = await dataSource.runMigrations({ transaction: 'each' });
    return applied.map((m) => m.name);
  } finally {
    await runner.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]).catch(() => undefined);
    await runner.release();
  }
}

import { DataSource } from 'typeorm';
import { createTestEnvironment, TestEnvironment } from '@switchboard/testing';
import { migrateWithLock, registryDataSourceOptions } from './data-source.config';

describe('migrations under an advisory lock (real PostgreSQL)', () => {
  let env: TestEnvironment;
  const sources: DataSource[] = [];

  beforeAll(async () => {
    env = await createTestEnvironment('migrations');
  });
  afterAll(async () => {
    await Promise.all(sources.map((s) => s.destroy()));
    await env.dispose();
  });

  it('lets replicas that start together migrate once, without racing on DDL', async () => {
    for (let i = 0; i < 4; i++) sources.push(await new DataSource(registryDataSourceOptions(env.databaseUrl, 2)).initialize());

    const applied = await Promise.all(sources.map((s) => migrateWithLock(s)));

    const names = ['InitialSchema1732320000000', 'HealthCheckSettings1732400000000', 'LockInstanceFunction1732500000000', 'LockInstancesFunction1732600000000', 'LockInstancesRows1732700000000'];
    expect(applied.flat()).toEqual(names);
    const rows = await sources[0].query('SELECT name FROM registry_migrations ORDER BY id');
    expect(rows).toEqual(names.map((name) => ({ name })));
    const tables = await sources[0].query(`SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename`);
    expect(tables.map((t: { tablename: string }) => t.tablename)).toEqual(['registry_migrations', 'registry_outbox', 'service_instances', 'service_tombstones']);
    // And again: nothing left to do.
    expect(await migrateWithLock(sources[1])).toEqual([]);
  });
});

import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import { testServices } from './services.util';

/**
 * What one integration suite owns: its own database (created here, dropped on dispose) and its
 * own subject prefix, so suites run in parallel and in any order against shared servers.
 */
export interface TestEnvironment {
  databaseUrl: string;
  natsUrl: string;
  redisUrl: string;
  subjectPrefix: string;
  /** Prefix of this suite's Redis keys (the apps' default for its subject prefix). */
  redisKeyPrefix: string;
  dispose(): Promise<void>;
}

export async function createTestEnvironment(label = 'suite'): Promise<TestEnvironment> {
  const services = testServices();
  const id = `${label.replace(/[^a-z0-9]/gi, '').toLowerCase().slice(0, 20)}_${randomBytes(4).toString('hex')}`;
  const database = `sb_test_${id}`;
  const admin = new Client({ connectionString: services.databaseUrl });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE "${database}"`);
  } finally {
    await admin.end();
  }
  const url = new URL(services.databaseUrl);
  url.pathname = `/${database}`;
  return {
    databaseUrl: url.toString(),
    natsUrl: services.natsUrl,
    redisUrl: services.redisUrl,
    subjectPrefix: `t_${id}`,
    redisKeyPrefix: `t_${id}:`,
    async dispose() {
      const client = new Client({ connectionString: services.databaseUrl });
      await client.connect();
      try {
        await client.query(`DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`);
      } finally {
        await client.end();
      }
    },
  };
}

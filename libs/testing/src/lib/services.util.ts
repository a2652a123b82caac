/**
 * Where the integration tiers find PostgreSQL, NATS and Redis. Resolution order:
 * 1. DATABASE_URL / NATS_URL / REDIS_URL from the environment (they always win);
 * 2. containers started by testcontainers, when a container engine answers within a second;
 * 3. the services on loopback at their standard ports (the development machines and CI).
 */
export interface TestServices {
  databaseUrl: string;
  natsUrl: string;
  redisUrl: string;
  source: 'env' | 'testcontainers' | 'loopback';
}

export const LOOPBACK: Omit<TestServices, 'source'> = {
  databaseUrl: 'postgres://postgres@127.0.0.1:5432/postgres',
  natsUrl: 'nats://127.0.0.1:4222',
  redisUrl: 'redis://127.0.0.1:6379',
};

/** Set by the jest globalSetup and inherited by every worker. */
export const SERVICES_ENV = 'SWITCHBOARD_TEST_SERVICES';

export function testServices(): TestServices {
  const raw = process.env[SERVICES_ENV];
  if (raw) return JSON.parse(raw) as TestServices;
  return {
    databaseUrl: process.env['DATABASE_URL'] ?? LOOPBACK.databaseUrl,
    natsUrl: process.env['NATS_URL'] ?? LOOPBACK.natsUrl,
    redisUrl: process.env['REDIS_URL'] ?? LOOPBACK.redisUrl,
    source: 'loopback',
  };
}

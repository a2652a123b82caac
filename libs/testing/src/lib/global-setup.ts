import { getContainerRuntimeClient, GenericContainer, StartedTestContainer, Wait } from 'testcontainers';
import { LOOPBACK, SERVICES_ENV, TestServices } from './services.util';

declare global {
  var __switchboardContainers: StartedTestContainer[] | undefined;
}

const ENGINE_PROBE_MS = 1000;

async function containerEngineAnswers(): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ENGINE_PROBE_MS)));
  try {
    return await Promise.race([getContainerRuntimeClient().then(() => true, () => false), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

async function startContainers(): Promise<Omit<TestServices, 'source'>> {
  const [pg, nats, redis] = await Promise.all([
    new GenericContainer('postgres:16-alpine')
      .withEnvironment({ POSTGRES_HOST_AUTH_METHOD: 'trust' })
      .withExposedPorts(5432)
      .withWaitStrategy(Wait.forLogMessage(/database system is ready to accept connections/, 2))
      .start(),
    new GenericContainer('nats:2.10-alpine').withCommand(['-js']).withExposedPorts(4222).withWaitStrategy(Wait.forLogMessage(/Server is ready/)).start(),
    new GenericContainer('redis:7-alpine').withExposedPorts(6379).start(),
  ]);
  globalThis.__switchboardContainers = [pg, nats, redis];
  return {
    databaseUrl: `postgres://postgres@${pg.getHost()}:${pg.getMappedPort(5432)}/postgres`,
    natsUrl: `nats://${nats.getHost()}:${nats.getMappedPort(4222)}`,
    redisUrl: `redis://${redis.getHost()}:${redis.getMappedPort(6379)}`,
  };
}

export default async function globalSetup(): Promise<void> {
  const fromEnv = {
    databaseUrl: process.env['DATABASE_URL'],
    natsUrl: process.env['NATS_URL'],
    redisUrl: process.env['REDIS_URL'],
  };
  let services: TestServices;
  if (fromEnv.databaseUrl && fromEnv.natsUrl && fromEnv.redisUrl) {
    services = { ...(fromEnv as Omit<TestServices, 'source'>), source: 'env' };
  } else if (await containerEngineAnswers()) {
    services = { ...(await startContainers()), ...stripUndefined(fromEnv), source: 'testcontainers' };
  } else {
    services = { ...LOOPBACK, ...stripUndefined(fromEnv), source: 'loopback' };
  }
  process.env[SERVICES_ENV] = JSON.stringify(services);
  process.stdout.write(`\n[test services] ${services.source}: postgres, nats, redis at ${redact(services.databaseUrl)}, ${services.natsUrl}, ${services.redisUrl}\n`);
}

function stripUndefined(o: Record<string, string | undefined>): Record<string, string> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Record<string, string>;
}

function redact(url: string): string {
  return url.replace(/\/\/([^:@/]+):[^@]+@/, '//$1:***@');
}

/**
 * docker-compose.yml, offline (no Docker engine here): every app service builds from the Dockerfile
 * with a real APP, sets only variables its configuration reads, listens and is health-checked on its
 * PORT, depends on services that exist with a condition they can meet, runs pinned images, and
 * commits no secret.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Document, isMap, isScalar, parseDocument, Scalar } from 'yaml';
import { appEnv, buildableApps, isKnownVariable, parseYaml, readRepoFile, ROOT, SERVICE_APPS } from './deploy-checks.util';

interface Service {
  image?: string;
  build?: { context: string; dockerfile?: string; args?: Record<string, string> };
  command?: string[];
  entrypoint?: string[];
  environment?: Record<string, string>;
  ports?: string[];
  healthcheck?: { test: string[] };
  depends_on?: Record<string, { condition?: string }> | string[];
  restart?: string;
  profiles?: string[];
  volumes?: string[];
}

interface ComposeFile {
  services: Record<string, Service>;
}

const text = readRepoFile('docker-compose.yml');
const compose = parseYaml(text) as ComposeFile;
const services = Object.entries(compose.services);
const appServices = services.filter(([, s]) => s.build !== undefined);
const appOf = (service: Service): string => service.build?.args?.['APP'] ?? '';
/** Runs once and exits: a migration, a registration, key generation. Others depend on its completion. */
const isOneShot = (service: Service): boolean => service.restart === 'no';
/** Where the Dockerfile's image starts an app: `node dist/apps/${APP}/src/main.js`. */
const imageMain = (app: string): string => `dist/apps/${app}/src/main.js`;

/** `${VAR}` or `${VAR:-}`: the value comes from the environment (or .env), none is committed. */
const INTERPOLATED_WITHOUT_DEFAULT = /^\$\{[A-Z][A-Z0-9_]*(:?-)?\}$/;

describe('docker-compose.yml', () => {
  it('runs the whole system: the four apps, their engines, a mock backend and its registration, Jaeger, Prometheus, Grafana', () => {
    const names = new Set(Object.keys(compose.services));
    for (const name of [...SERVICE_APPS, 'registry-migrate', 'mock-llm-backend', 'register-mock-model', 'nats-auth', 'postgres', 'redis', 'jaeger', 'prometheus', 'grafana']) {
      expect([name, names.has(name)]).toEqual([name, true]);
    }
  });

  it('builds every app service from the Dockerfile with an APP that the Dockerfile can build', () => {
    const dockerfile = readRepoFile('Dockerfile');
    expect(dockerfile).toMatch(/^ARG APP=/m);
    expect(dockerfile).toContain('dist/apps/${APP} ./dist');
    expect(dockerfile).toContain(imageMain('${APP}'));
    const buildable = buildableApps();
    expect(appServices.length).toBeGreaterThanOrEqual(SERVICE_APPS.length + 3);
    for (const [name, service] of appServices) {
      expect([name, service.build?.context, service.build?.dockerfile ?? 'Dockerfile']).toEqual([name, '.', 'Dockerfile']);
      expect([name, buildable]).toEqual([name, expect.arrayContaining([appOf(service)])]);
      expect([name, service.image]).toEqual([name, undefined]);
    }
    for (const app of SERVICE_APPS) expect(appOf(compose.services[app] as Service)).toBe(app);
  });

  it("one-shot commands start the image's own main.js of their APP", () => {
    for (const [name, service] of appServices) {
      const script = [...(service.command ?? [])].join(' ');
      const mains = [...script.matchAll(/dist\/apps\/([a-z-]+)\/src\/main\.js/g)];
      for (const [path, app] of mains) {
        expect([name, path]).toEqual([name, imageMain(appOf(service))]);
        expect(existsSync(join(ROOT, `apps/${app}/src/main.ts`))).toBe(true);
      }
    }
    expect(compose.services['registry-migrate']?.command).toEqual(['node', imageMain('registry-api'), 'migrate']);
  });

  it('sets only variables the app reads (its configuration class, or the OpenTelemetry SDK)', () => {
    const problems: string[] = [];
    for (const [name, service] of appServices) {
      const app = appOf(service);
      const env = appEnv(app);
      for (const variable of Object.keys(service.environment ?? {})) {
        if (!isKnownVariable(app, env, variable)) problems.push(`${name}: ${variable} is not read by ${env.source}`);
      }
    }
    expect(problems).toEqual([]);
  });

  it("publishes and health-checks each app on the PORT it listens on, /health through node's fetch (the image has no curl)", () => {
    for (const [name, service] of appServices.filter(([, s]) => !isOneShot(s))) {
      const app = appOf(service);
      const port = Number(service.environment?.['PORT'] ?? appEnv(app).defaultPort);
      expect([name, Number.isInteger(port)]).toEqual([name, true]);
      const test = service.healthcheck?.test ?? [];
      expect([name, test.slice(0, 3)]).toEqual([name, ['CMD', 'node', '-e']]);
      expect([name, test[3]]).toEqual([name, expect.stringContaining(`fetch('http://127.0.0.1:${port}/health')`)]);
      for (const mapping of service.ports ?? []) expect([name, mapping.split(':').at(-1)]).toEqual([name, String(port)]);
    }
    for (const app of SERVICE_APPS) {
      // The documented ports, which `npm start` uses too.
      expect([app, compose.services[app]?.ports]).toEqual([app, [`${appEnv(app).defaultPort}:${appEnv(app).defaultPort}`]]);
    }
  });

  it('gives every long-running service a healthcheck', () => {
    for (const [name, service] of services) {
      if (isOneShot(service)) continue;
      expect([name, Array.isArray(service.healthcheck?.test) && (service.healthcheck?.test.length ?? 0) > 1]).toEqual([name, true]);
    }
  });

  it('depends only on services that exist, each with a condition it can meet', () => {
    for (const [name, service] of services) {
      if (service.depends_on === undefined) continue;
      expect([name, Array.isArray(service.depends_on)]).toEqual([name, false]);
      for (const [target, { condition }] of Object.entries(service.depends_on as Record<string, { condition?: string }>)) {
        const dependency = compose.services[target];
        expect([name, target, dependency !== undefined]).toEqual([name, target, true]);
        if (isOneShot(dependency as Service)) {
          expect([name, target, condition]).toEqual([name, target, 'service_completed_successfully']);
        } else {
          expect([name, target, condition]).toEqual([name, target, 'service_healthy']);
          expect([target, dependency?.healthcheck]).toEqual([target, expect.objectContaining({ test: expect.any(Array) })]);
        }
        // A dependency outside the default set would never start: `docker compose up` would wait forever.
        expect([name, target, dependency?.profiles ?? []]).toEqual([name, target, service.profiles ?? []]);
      }
    }
    expect(compose.services['registry-api']?.depends_on).toEqual(expect.objectContaining({ 'registry-migrate': { condition: 'service_completed_successfully' } }));
  });

  it('keeps `docker compose up -d nats postgres redis` an engines-only start for `npm start` on the host', () => {
    for (const [name, port] of [['nats', '4222'], ['postgres', '5432'], ['redis', '6379']] as const) {
      const service = compose.services[name] as Service;
      expect([name, service.build, service.depends_on]).toEqual([name, undefined, undefined]);
      expect([name, service.ports]).toEqual([name, expect.arrayContaining([`${port}:${port}`])]);
    }
    // The open development server: no config file, so the apps' defaults (no credentials) connect.
    expect(compose.services['nats']?.command).toEqual(expect.arrayContaining(['-js']));
    expect(compose.services['nats']?.command?.join(' ')).not.toContain('-c');
  });

  it("runs the system's NATS on the shipped least-privilege config, each app with its own role's seed", () => {
    expect(compose.services['nats-auth']?.command?.join(' ')).toContain('nats-server -c /run/switchboard/nats/nats-server.conf');
    expect(compose.services['nats-identities']?.command?.join(' ')).toContain('deploy/nats/identities.mjs --out /run/switchboard/nats');
    expect(compose.services['nats-identities']?.volumes).toContain('./deploy/nats:/app/deploy/nats:ro');
    for (const app of SERVICE_APPS) {
      const env = compose.services[app]?.environment ?? {};
      expect([app, env['NATS_URL'], env['NATS_NKEY_SEED_FILE']]).toEqual([app, 'nats://nats-auth:4222', `/run/switchboard/nats/seeds/${app}.nk`]);
      expect([app, env['SUBJECT_PREFIX']]).toEqual([app, undefined]); // the shipped config refuses prefixed subjects
    }
    expect(compose.services['llm-router']?.environment?.['ROUTER_WORKERS']).toBe('1');
  });

  it('runs only pinned images (a release tag: major.minor[.patch], never latest)', () => {
    for (const [name, service] of services) {
      if (service.build) continue;
      expect([name, service.image]).toEqual([name, expect.stringMatching(/^[a-z0-9./_-]+:v?\d+\.\d+(\.\d+)?[A-Za-z0-9.-]*$/)]);
    }
  });

  it('commits no secret: secrets are ${VAR} from the environment or .env, other dev-only values say so', () => {
    const doc = parseDocument(text, { merge: true }) as Document;
    const problems: string[] = [];
    for (const [name, service] of services) {
      const secrets = service.build ? appEnv(appOf(service)).secrets : new Set<string>();
      for (const [variable, value] of Object.entries(service.environment ?? {})) {
        const credentialInUrl = /^[a-z][a-z0-9+.-]*:\/\/[^/@\s]*:[^/@\s]*@/i.test(value);
        if (credentialInUrl) problems.push(`${name}: ${variable} carries a password`);
        const secretByName = /(^|_)(TOKEN|PASSWORD|SECRET|API_KEYS?|PRIVATE_KEY)(_|$)/.test(variable);
        const plainUrl = /^[a-z][a-z0-9+.-]*:\/\//i.test(value) && !credentialInUrl; // e.g. redis://redis:6379
        if ((secretByName || secrets.has(variable)) && !INTERPOLATED_WITHOUT_DEFAULT.test(value) && !plainUrl) {
          problems.push(`${name}: ${variable} is committed (${value}); use \${${variable}} or \${NAME:-}`);
        }
      }
    }
    // Values that are unsafe outside a developer's machine carry an inline "development only" comment.
    const devOnly: [string, string][] = [
      ['postgres', 'POSTGRES_HOST_AUTH_METHOD'],
      ['grafana', 'GF_AUTH_ANONYMOUS_ENABLED'],
    ];
    for (const [service, variable] of devOnly) {
      const node = doc.getIn(['services', service, 'environment', variable], true) as Scalar | undefined;
      expect([service, variable, isScalar(node) && /development only/.test(node.comment ?? '')]).toEqual([service, variable, true]);
    }
    expect(isMap(doc.contents)).toBe(true);
    expect(problems).toEqual([]);
  });
});

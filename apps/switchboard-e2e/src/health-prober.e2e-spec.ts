import { hostname } from 'node:os';
import { SubjectSpace } from '@switchboard/contracts';
import { decodeJson, NatsClient } from '@switchboard/messaging';
import { freePort, waitFor } from '@switchboard/testing';
import { rawRouterCall, RunningApp, stopApp, System } from './support/system.util';

const REGISTRY = '/api/v2/services/registry';

async function metric(app: RunningApp, name: string, labels = ''): Promise<number> {
  const text = await (await fetch(`${app.url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name}${labels ? `{${labels}` : ''}`));
  return line ? Number(line.split(' ').pop()) : 0;
}

describe('health-prober end to end (real HTTP backends, registry-api, NATS, PostgreSQL)', () => {
  let system: System;

  beforeAll(async () => {
    system = await System.start('prober');
  });
  afterAll(async () => {
    await system?.stop();
  });

  describe('one replica', () => {
    let prober: RunningApp;

    beforeAll(async () => {
      prober = await system.addProber({ HEARTBEAT_TTL_MS: '1000', OFFLINE_AFTER_MS: '2000', PRUNE_AFTER_MS: '10000', MASS_FAILURE_MIN_INSTANCES: '5', MASS_FAILURE_MAX_HOLD_MS: '5000' });
    });
    afterAll(async () => {
      await stopApp(prober);
    });

    it('marks an instance unhealthy after N failed checks and healthy again after M passing ones', async () => {
      const backend = await system.addBackend('hp-flaky', ['m1']);
      backend.setFaults({ health: 'unhealthy' });
      await waitFor(async () => (await system.instance('hp-flaky'))?.status === 'unhealthy', 10_000, 'unhealthy');
      backend.clearFaults();
      await waitFor(async () => (await system.instance('hp-flaky'))?.status === 'healthy', 10_000, 'healthy again');
    });

    it('does not flap on one lost probe', async () => {
      const backend = await system.addBackend('hp-steady', ['m1']);
      const revision = (await system.registryCall('GET', `${REGISTRY}/services/hp-steady`)).body.service.revision;
      backend.setFaults({ health: 'unhealthy', count: 1 });
      await waitFor(() => (backend.stats().byPath['/health'] ?? 0) >= 6, 10_000, 'several checks');
      const after = (await system.registryCall('GET', `${REGISTRY}/services/hp-steady`)).body.service;
      expect(after).toMatchObject({ status: 'healthy', revision });
    });

    it('marks an instance degraded when its check answers degraded', async () => {
      const backend = await system.addBackend('hp-slow', ['m1']);
      backend.setFaults({ health: 'degraded', healthDelayMs: 10 } as never);
      await waitFor(async () => (await system.instance('hp-slow'))?.status === 'degraded', 10_000, 'degraded');
      backend.clearFaults();
      await waitFor(async () => (await system.instance('hp-slow'))?.status === 'healthy', 10_000, 'healthy');
    });

    it('takes a dead backend unhealthy, then offline, then prunes it from the registry', async () => {
      const backend = await system.addBackend('hp-dead', ['m1']);
      await backend.kill();
      await waitFor(async () => (await system.instance('hp-dead'))?.status === 'unhealthy', 10_000, 'unhealthy');
      await waitFor(async () => (await system.instance('hp-dead'))?.status === 'offline', 10_000, 'offline');
      await waitFor(async () => (await system.instance('hp-dead')) === undefined, 20_000, 'pruned');
    });

    it('expires an instance that stops heartbeating (TTL): unhealthy, then offline; heartbeats alone do not promote it again', async () => {
      // Every status change of the two instances below, in the order registry-api published them.
      const subjects = new SubjectSpace(system.env.subjectPrefix);
      const watcher = await NatsClient.connect({ servers: system.env.natsUrl, name: 'e2e-beat-watcher' });
      const changes: { serviceId: string; to: string; reason?: string }[] = [];
      watcher.subscribe(subjects.registryEvent('statusChanged', 'development', 'vllm'), (msg) => {
        const event = decodeJson(msg.data) as { subject: string; data: { to: { status: string }; reason?: string } };
        if (event.subject.startsWith('hp-beat')) changes.push({ serviceId: event.subject, to: event.data.to.status, reason: event.data.reason });
      });
      await watcher.connection.flush();
      try {
        await system.addBackend('hp-beat', ['m1'], {}, { healthCheck: { enabled: false, heartbeatTtlMs: 1000 } });
        await system.addBackend('hp-beat-sentinel', ['m1'], {}, { healthCheck: { enabled: false, heartbeatTtlMs: 1000 } });
        // One heartbeat makes it an instance that heartbeats; then silence (checks are off, so only the TTL can act).
        expect((await system.registryCall('POST', `${REGISTRY}/hp-beat/heartbeat`, { metadata: { inflight: 1 } })).status).toBe(200);
        await waitFor(() => changes.some((c) => c.serviceId === 'hp-beat' && c.to === 'offline'), 10_000, 'offline');
        expect(changes.filter((c) => c.serviceId === 'hp-beat').map((c) => c.to)).toEqual(['unhealthy', 'offline']);
        expect(changes[0].reason).toMatch(/no heartbeat/);

        // Heartbeats alone are not a check: the operator (or the service re-registering) brings it back.
        // The sentinel's first heartbeat goes out after hp-beat's on the same connection, so the prober has
        // heard hp-beat's before the sentinel's; the sentinel expiring (a TTL later) proves it judged both.
        const before = changes.length;
        const beats = await NatsClient.connect({ servers: system.env.natsUrl, name: 'e2e-beats' });
        try {
          beats.publish(subjects.heartbeat('development', 'vllm', 'hp-beat'), { metadata: { inflight: 1 } });
          beats.publish(subjects.heartbeat('development', 'vllm', 'hp-beat-sentinel'), { metadata: { inflight: 1 } });
          await beats.connection.flush();
        } finally {
          await beats.close();
        }
        await waitFor(() => changes.slice(before).some((c) => c.serviceId === 'hp-beat-sentinel'), 10_000, 'the sentinel to expire');
        const promoted = changes.slice(before).filter((c) => c.serviceId === 'hp-beat' && (c.to === 'healthy' || c.to === 'degraded'));
        expect(promoted).toEqual([]);
        expect(['offline', 'unhealthy']).toContain((await system.instance('hp-beat'))?.status);
      } finally {
        await watcher.close();
      }
    });

    it('runs a round on demand through registry-api and answers a summary', async () => {
      const denied = await system.registryCall('POST', `${REGISTRY}/health-checks`);
      expect(denied.status).toBe(401);
      const res = await system.registryCall('POST', `${REGISTRY}/health-checks`, undefined, { 'x-admin-token': 'dev-admin-token' });
      expect(res.status).toBe(200);
      expect(res.body.summary).toMatchObject({ checked: expect.any(Number), healthy: expect.any(Number), unhealthy: expect.any(Number), tookMs: expect.any(Number) });
      expect(res.body.summary.checked).toBeGreaterThanOrEqual(3);
      expect(res.body.summary.healthy + res.body.summary.degraded + res.body.summary.unhealthy).toBe(res.body.summary.checked);
    });

    it('holds state when most of an environment fails at once (self-preservation), and says so', async () => {
      const fleet = [];
      // The default threshold (3): a mass failure is seen before any single instance's streak completes.
      for (let i = 0; i < 6; i++) fleet.push(await system.addBackend(`hp-mass-${i}`, ['mass'], {}, { environment: 'staging', healthCheck: { unhealthyThreshold: 3 } }));
      await waitFor(async () => (await metric(prober, 'prober_probes_total', 'outcome="pass"')) > 0);
      for (const backend of fleet.slice(0, 5)) backend.setFaults({ health: 'unhealthy' });
      await waitFor(async () => (await metric(prober, 'prober_self_preservation', 'environment="staging"')) === 1, 10_000, 'self-preservation').catch(async (e) => {
        console.log(prober.output.join('').slice(-5000));
        console.log((await (await fetch(`${prober.url}/metrics`)).text()).split('\n').filter((l) => l.startsWith('prober_')).join('\n'));
        throw e;
      });
      // Each failing instance reached its downgrade and had it held (counted), so none was reported.
      await waitFor(async () => (await metric(prober, 'prober_held_transitions_total', 'environment="staging"')) >= 5, 5000, 'five held downgrades');
      for (let i = 0; i < 5; i++) expect((await system.instance(`hp-mass-${i}`))?.status).toBe('healthy');
      for (const backend of fleet) backend.clearFaults();
      await waitFor(async () => (await metric(prober, 'prober_self_preservation', 'environment="staging"')) === 0, 10_000, 'the end of self-preservation');
    });

    it('ends a hold by itself after MASS_FAILURE_MAX_HOLD_MS: the dead instances become unhealthy', async () => {
      const fleet = [];
      for (let i = 0; i < 6; i++) fleet.push(await system.addBackend(`hp-box-${i}`, ['box'], {}, { environment: 'production', healthCheck: { unhealthyThreshold: 3 } }));
      for (const backend of fleet.slice(0, 5)) backend.setFaults({ health: 'unhealthy' });
      await waitFor(async () => (await metric(prober, 'prober_self_preservation', 'environment="production"')) === 1, 10_000, 'self-preservation');
      // The backends stay dead: the 5 s hold (this suite's MASS_FAILURE_MAX_HOLD_MS) must end without any help.
      await waitFor(async () => {
        const statuses = await Promise.all([0, 1, 2, 3, 4].map(async (i) => (await system.instance(`hp-box-${i}`))?.status));
        return statuses.every((s) => s === 'unhealthy' || s === 'offline');
      }, 30_000, 'the held instances to be marked down');
      expect(await metric(prober, 'prober_self_preservation', 'environment="production"')).toBe(0);
      expect((await system.instance('hp-box-5'))?.status).toBe('healthy');
      expect(prober.output.join('')).toContain('self-preservation in production expired');
      for (const backend of fleet) backend.clearFaults();
    });
  });

  describe('replicas', () => {
    it('split the instances without overlap and take over a dead replica’s share', async () => {
      const a = await system.addProber();
      const b = await system.addProber();
      const members = async (app: RunningApp) => ((await (await fetch(`${app.url}/health`)).json()) as { members: string[] }).members;
      await waitFor(async () => (await members(a)).length === 2 && (await members(b)).length === 2, 15_000, 'two members');
      const total = (await system.registryCall('GET', `${REGISTRY}/services`)).body.count;
      await waitFor(async () => (await metric(a, 'prober_owned_instances')) + (await metric(b, 'prober_owned_instances')) === total, 5000, 'a full split');
      expect(await metric(a, 'prober_owned_instances')).toBeGreaterThan(0);
      expect(await metric(b, 'prober_owned_instances')).toBeGreaterThan(0);

      await stopApp(b, 'SIGKILL');
      await waitFor(async () => (await members(a)).length === 1, 10_000, 'the dead replica to drop out');
      const now = (await system.registryCall('GET', `${REGISTRY}/services`)).body.count;
      await waitFor(async () => (await metric(a, 'prober_owned_instances')) === now, 5000, 'the survivor to own everything');
      await stopApp(a);
    });
  });

  describe('identity', () => {
    it('a prober restarted on the same host and port replaces its registration instead of adding one', async () => {
      const port = String(await freePort());
      const registrations = async () =>
        ((await system.registryCall('GET', `${REGISTRY}/services?serviceName=health-prober`)).body.services as { serviceId: string; vmIp: string; internalPort: number }[]).filter(
          (s) => s.internalPort === Number(port),
        );
      // What an earlier version left behind on this host and port (a random id per start).
      const legacy = `health-prober-${hostname().replace(/[^A-Za-z0-9_-]/g, '-').slice(0, 40)}-0a1b2c`;
      const seeded = await system.registryCall('POST', `${REGISTRY}/register`, {
        serviceName: 'health-prober', serviceId: legacy, vmIp: '127.0.0.1', internalPort: Number(port), externalDomain: '127.0.0.1',
        version: '0.0.9', deploymentId: 'health-prober', environment: 'development', region: 'local',
      });
      expect(seeded.status).toBe(201);
      const first = await system.addProber({ PORT: port });
      await waitFor(async () => {
        const now = await registrations();
        return now.length === 1 && now[0].serviceId !== legacy;
      }, 10_000, 'the first registration to replace the legacy one');
      await stopApp(first, 'SIGKILL'); // a crash: no chance to deregister
      const second = await system.addProber({ PORT: port, ADVERTISE_HOST: 'localhost' });
      // Its own address in the registry shows the second replica has registered.
      await waitFor(async () => (await registrations()).some((s) => s.vmIp === 'localhost'), 10_000, 'the second registration');
      expect(await registrations()).toHaveLength(1);
      // A clean stop leaves none: the replica deregisters itself.
      await stopApp(second);
      expect(await registrations()).toHaveLength(0);
    });
  });

  describe('with the router', () => {
    it('stops routing to a killed backend within interval × threshold + timeout', async () => {
      const prober = await system.addProber();
      const doomed = await system.addBackend('hp-route-a', ['route-model']);
      await system.addBackend('hp-route-b', ['route-model']);
      await doomed.kill();
      // interval 200 ms × threshold 2 + timeout 200 ms = 600 ms; allow for jitter and scheduling.
      await waitFor(async () => (await system.instance('hp-route-a'))?.status === 'unhealthy', 5000, 'the prober to mark it').catch((e) => {
        console.log(prober.output.join(''));
        throw e;
      });
      const served = new Set<string>();
      for (let i = 0; i < 20; i++) {
        const res = await rawRouterCall(system, '/v1/chat/completions', { model: 'route-model', messages: [{ role: 'user', content: 'x' }] });
        expect(res.status).toBe(200);
        served.add(res.headers.get('x-switchboard-instance') as string);
      }
      expect([...served]).toEqual(['hp-route-b']);
      await stopApp(prober);
    });
  });
});

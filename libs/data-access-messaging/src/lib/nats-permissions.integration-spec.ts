import {
  AckPolicy,
  connect,
  DeliverPolicy,
  JetStreamManager,
  Msg,
  nanos,
  NatsConnection,
  nkeyAuthenticator,
  nkeys,
  RequestStrategy,
  RetentionPolicy,
  StorageType,
  Subscription,
} from 'nats';
import { SecuredNatsServer, waitFor } from '@switchboard/testing';
import { NatsClient } from './nats.client';
import { StreamFeed } from './stream-feed';

/**
 * The shipped deploy/nats/nats-server.conf, run by a private nats-server with throwaway identities
 * from deploy/nats/identities.mjs (SecuredNatsServer): what each identity may and may not do. Production subjects (no
 * prefix): the server is this suite's alone. Non-delivery is proven with a sentinel: the forbidden
 * message first, then an allowed one on the same connection that the same observer receives; once
 * the sentinel is there, the forbidden one would have been too.
 */

const SERVICE_ID = 'vllm-1';
const OWN_HEARTBEAT = `registry.heartbeat.production.vllm.${SERVICE_ID}`;
const OTHER_HEARTBEAT = 'registry.heartbeat.production.vllm.vllm-2';
const FORGED_EVENT = 'registry.events.registered.production.vllm';

type Violation = { operation: string; subject: string };

interface Party {
  nc: NatsConnection;
  /** What the server refused on this connection, as nats.js reports it through `status()`. */
  violations: Violation[];
}

const encoder = new TextEncoder();
const json = (value: unknown) => encoder.encode(JSON.stringify(value));
/** A reply, when there is one, shows up in a failed expectation as a word rather than a dump of the connection. */
const answered = (reply: Promise<Msg>) => reply.then(() => 'answered');

describe('NATS identities and permissions of deploy/nats/nats-server.conf', () => {
  let server: SecuredNatsServer;
  const parties: Party[] = [];
  let registry: Party;
  let prober: Party;
  let router: Party;
  let invalidator: Party;
  let operator: Party;
  let service: Party;
  let jsm: JetStreamManager;
  /** Subjects of the commands registry-api's responder received, in order. */
  const commands: string[] = [];
  /** Subjects of the prober commands health-prober's responder received, in order. */
  const proberCommands: string[] = [];

  async function connectAs(seedFile: string, name: string): Promise<Party> {
    const nc = await connect({ servers: server.url, name, inboxPrefix: `_INBOX.${name}`, authenticator: nkeyAuthenticator(SecuredNatsServer.seed(seedFile)) });
    const party: Party = { nc, violations: [] };
    void (async () => {
      for await (const status of nc.status()) {
        if (status.permissionContext) party.violations.push(status.permissionContext);
      }
    })();
    parties.push(party);
    return party;
  }

  /** Records the subjects `party` receives on `subjects` (its subscriptions are confirmed by the server on return). */
  async function watch(party: Party, ...subjects: string[]): Promise<{ seen: string[]; errors: string[]; subscriptions: Subscription[] }> {
    const seen: string[] = [];
    const errors: string[] = [];
    const subscriptions = subjects.map((subject) =>
      party.nc.subscribe(subject, { callback: (error, msg) => (error ? errors.push(error.message) : seen.push(msg.subject)) }),
    );
    await party.nc.flush();
    return { seen, errors, subscriptions };
  }

  async function violationReported(party: Party, operation: 'publish' | 'subscription', subject: string): Promise<void> {
    await waitFor(() => party.violations.some((v) => v.operation === operation && v.subject === subject), 5000, `${operation} violation for ${subject}`);
  }

  async function lastStreamSeq(): Promise<number> {
    return (await jsm.streams.info('REGISTRY')).state.last_seq;
  }

  /** The stream's next sequence goes to a sentinel event from registry-api: nothing else got in before it. */
  async function streamSentinelSeq(): Promise<number> {
    const ack = await registry.nc.jetstream().publish('registry.events.registered.production.sentinel', json({ sentinel: true }));
    return ack.seq;
  }

  beforeAll(async () => {
    server = await SecuredNatsServer.start({ services: [`production/vllm/${SERVICE_ID}`, 'production/vllm/vllm-2'] });

    registry = await connectAs(server.roleSeedFile('registry-api'), 'registry-api');
    prober = await connectAs(server.roleSeedFile('health-prober'), 'health-prober');
    router = await connectAs(server.roleSeedFile('llm-router'), 'llm-router');
    invalidator = await connectAs(server.roleSeedFile('cache-invalidator'), 'cache-invalidator');
    operator = await connectAs(server.roleSeedFile('operator'), 'admin-cli');
    service = await connectAs(server.serviceSeedFile('production', 'vllm', SERVICE_ID), SERVICE_ID);

    jsm = await registry.nc.jetstreamManager();
    await jsm.streams.add({ name: 'REGISTRY', subjects: ['registry.events.>'], retention: RetentionPolicy.Limits, storage: StorageType.File, max_age: nanos(3_600_000) });
    // registry-api's command responder: the snapshot in three chunks and the empty sentinel, as the app answers it.
    registry.nc.subscribe('registry.cmd.>', {
      queue: 'registry-api',
      callback: (_error, msg: Msg) => {
        commands.push(msg.subject);
        if (msg.subject === 'registry.cmd.snapshot') {
          for (let chunk = 0; chunk < 3; chunk++) msg.respond(json({ revision: 7, instances: [], chunk }));
          msg.respond(new Uint8Array(0));
        } else {
          msg.respond(json({ ok: true, revision: 7 }));
        }
      },
    });
    prober.nc.subscribe('prober.cmd.>', {
      callback: (_error, msg: Msg) => {
        proberCommands.push(msg.subject);
        msg.respond(json({ ok: true }));
      },
    });
    await Promise.all([registry.nc.flush(), prober.nc.flush()]);
  });

  afterAll(async () => {
    await Promise.all(parties.map((p) => p.nc.close()));
    await server?.dispose();
  });

  it('lets each role do its own work', async () => {
    // registry-api: the stream's lifecycle, a JetStream publish, a manual round from the prober.
    await jsm.streams.update('REGISTRY', { subjects: ['registry.events.>'], max_age: nanos(7_200_000) });
    const published = await registry.nc.jetstream().publish('registry.events.registered.development.vllm', json({ ok: 1 }), { msgID: 'positive-1' });
    expect(JSON.parse(new TextDecoder().decode((await registry.nc.request('prober.cmd.runChecks', json({}), { timeout: 5000 })).data))).toEqual({ ok: true });

    // llm-router, health-prober and the operator: the chunked snapshot (several responses to one request) and the revision.
    for (const reader of [router, prober, operator]) {
      const chunks: unknown[] = [];
      for await (const msg of await reader.nc.requestMany('registry.cmd.snapshot', json({}), { strategy: RequestStrategy.SentinelMsg, maxWait: 5000 })) {
        if (!msg.data.length) break;
        chunks.push(JSON.parse(new TextDecoder().decode(msg.data)));
      }
      expect(chunks).toHaveLength(3);
      await expect(reader.nc.request('registry.cmd.revision', json({}), { timeout: 5000 })).resolves.toBeDefined();
    }

    // llm-router and health-prober: the watch, an ephemeral consumer of the stream (StreamFeed), from the event above.
    for (const [role, name] of [['llm-router', 'llm-router'], ['health-prober', 'health-prober']] as const) {
      const client = await NatsClient.connect({ servers: server.url, name, auth: { kind: 'nkeySeed', seed: SecuredNatsServer.seed(server.roleSeedFile(role)) } });
      const received: number[] = [];
      const feed = new StreamFeed({ nats: client, stream: 'REGISTRY', onMessage: (_msg, seq) => received.push(seq), onLost: () => undefined, inactiveThresholdMs: 500 });
      try {
        await feed.start(published.seq);
        await waitFor(() => received.includes(published.seq), 5000, `${role} reading the stream`);
        // Not the invalidator's durable consumer, though: a named create is refused.
        await expect((await client.jsm()).consumers.add('REGISTRY', { durable_name: 'cache-invalidator', ack_policy: AckPolicy.Explicit })).rejects.toThrow(/permissions|timeout/i);
      } finally {
        feed.stop();
        await client.close();
      }
    }

    // health-prober: its commands and its membership heartbeat.
    await expect(prober.nc.request('registry.cmd.reportHealth', json({}), { timeout: 5000 })).resolves.toBeDefined();
    await expect(prober.nc.request('registry.cmd.deregister', json({}), { timeout: 5000 })).resolves.toBeDefined();
    const membership = await watch(registry, 'registry.heartbeat.>');
    prober.nc.publish('registry.heartbeat.production.health-prober.prober-1', json({}));
    await waitFor(() => membership.seen.includes('registry.heartbeat.production.health-prober.prober-1'), 5000, 'the prober heartbeat');

    // cache-invalidator: its durable pull consumer, created, updated, pulled from and acknowledged.
    const invalidatorJsm = await invalidator.nc.jetstreamManager();
    await invalidatorJsm.consumers.add('REGISTRY', {
      durable_name: 'cache-invalidator',
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      filter_subject: 'registry.events.>',
      ack_wait: nanos(5000),
    });
    await invalidatorJsm.consumers.update('REGISTRY', 'cache-invalidator', { max_ack_pending: 500 });
    const consumer = await invalidator.nc.jetstream().consumers.get('REGISTRY', 'cache-invalidator');
    const event = await consumer.next({ expires: 5000 });
    expect(event?.seq).toBe(published.seq);
    await event?.ackAck();
    expect((await invalidatorJsm.consumers.info('REGISTRY', 'cache-invalidator')).ack_floor.stream_seq).toBe(published.seq);

    for (const party of parties) expect(party.violations).toEqual([]);
  });

  it('refuses a connection without an identity, or with a key it does not know', async () => {
    const connected = (options: Parameters<typeof connect>[0]) => connect({ servers: server.url, ...options }).then((nc) => nc.close().then(() => 'connected'));
    await expect(connected({ name: 'anonymous' })).rejects.toMatchObject({ code: 'AUTHORIZATION_VIOLATION' });
    await expect(connected({ name: 'registry-api', authenticator: nkeyAuthenticator(nkeys.createUser().getSeed()) })).rejects.toMatchObject({
      code: 'AUTHORIZATION_VIOLATION',
    });
  });

  it('lets a service heartbeat as itself and as no other instance', async () => {
    const heartbeats = await watch(registry, 'registry.heartbeat.>');
    service.nc.publish(OTHER_HEARTBEAT, json({ metadata: { inflight: 1 } }));
    service.nc.publish('registry.heartbeat.staging.vllm.vllm-1', json({ metadata: { inflight: 1 } }));
    service.nc.publish(OWN_HEARTBEAT, json({ metadata: { inflight: 1 } }));
    await waitFor(() => heartbeats.seen.includes(OWN_HEARTBEAT), 5000, 'the service heartbeat');
    expect(heartbeats.seen).toEqual([OWN_HEARTBEAT]);
    await violationReported(service, 'publish', OTHER_HEARTBEAT);
    await violationReported(service, 'publish', 'registry.heartbeat.staging.vllm.vllm-1');
  });

  it('keeps a service from publishing a registry event, on the bus or into the stream', async () => {
    const events = await watch(router, 'registry.events.>', 'registry.heartbeat.>');
    const before = await lastStreamSeq();
    service.nc.publish(FORGED_EVENT, json({ data: { revision: 1e12, instance: { internalUrl: 'http://attacker:80' } } }));
    await expect(service.nc.jetstream().publish(FORGED_EVENT, json({ data: { revision: 1e12 } }), { timeout: 2000 })).rejects.toMatchObject({
      code: 'PERMISSIONS_VIOLATION',
    });
    service.nc.publish(OWN_HEARTBEAT, json({}));
    await waitFor(() => events.seen.includes(OWN_HEARTBEAT), 5000, 'the service heartbeat');
    expect(events.seen).toEqual([OWN_HEARTBEAT]);
    expect(await streamSentinelSeq()).toBe(before + 1);
    await violationReported(service, 'publish', FORGED_EVENT);
  });

  it('keeps a service from sending any command', async () => {
    const registrySide = await watch(registry, 'registry.heartbeat.>');
    const proberSide = await watch(prober, 'registry.heartbeat.>');
    const mark = commands.length;
    const proberMark = proberCommands.length;
    const forbidden = ['registry.cmd.deregister', 'registry.cmd.reportHealth', 'registry.cmd.snapshot', 'registry.cmd.revision', 'prober.cmd.runChecks'];
    for (const subject of forbidden) service.nc.publish(subject, json({ serviceId: 'vllm-2', status: 'offline' }), { reply: `_INBOX.${SERVICE_ID}.x` });
    service.nc.publish(OWN_HEARTBEAT, json({}));
    await waitFor(() => registrySide.seen.includes(OWN_HEARTBEAT) && proberSide.seen.includes(OWN_HEARTBEAT), 5000, 'the service heartbeat');
    expect(commands.slice(mark)).toEqual([]);
    expect(proberCommands.slice(proberMark)).toEqual([]);
    for (const subject of forbidden) await violationReported(service, 'publish', subject);
  });

  it('lets the router ask for the snapshot and the revision, and nothing else', async () => {
    const heartbeats = await watch(registry, 'registry.heartbeat.>');
    const before = await lastStreamSeq();
    const mark = commands.length;
    router.nc.publish(FORGED_EVENT, json({ data: { revision: 1e12 } }));
    router.nc.publish(OWN_HEARTBEAT, json({}));
    for (const subject of ['registry.cmd.deregister', 'registry.cmd.reportHealth', 'prober.cmd.runChecks']) {
      await expect(answered(router.nc.request(subject, json({ serviceId: SERVICE_ID, status: 'offline' }), { timeout: 2000 }))).rejects.toMatchObject({
        code: 'PERMISSIONS_VIOLATION',
      });
    }
    // Sentinel: an allowed command on the same connection, answered by registry-api.
    await router.nc.request('registry.cmd.revision', json({}), { timeout: 5000 });
    expect(commands.slice(mark)).toEqual(['registry.cmd.revision']);
    expect(heartbeats.seen).toEqual([]);
    expect(await streamSentinelSeq()).toBe(before + 1);
    await violationReported(router, 'publish', FORGED_EVENT);
    await violationReported(router, 'publish', OWN_HEARTBEAT);
  });

  it('lets nobody but registry-api listen to registry.cmd.>', async () => {
    const eavesdroppers = [prober, router, invalidator, operator, service];
    const taps = await Promise.all(eavesdroppers.map((party) => watch(party, 'registry.cmd.>')));
    await router.nc.request('registry.cmd.revision', json({}), { timeout: 5000 });
    // Sentinel per eavesdropper: its own PONG comes after anything the server delivered to it before.
    await Promise.all(eavesdroppers.map((party) => party.nc.flush()));
    for (const tap of taps) expect(tap.seen).toEqual([]);
    for (const party of eavesdroppers) await violationReported(party, 'subscription', 'registry.cmd.>');
    for (const tap of taps) expect(tap.errors[0]).toMatch(/permissions violation/i);
  });

  it("keeps every identity out of another's inbox", async () => {
    const taps = await Promise.all([
      watch(router, '_INBOX.registry-api.>'),
      watch(prober, '_INBOX.llm-router.>'),
      watch(invalidator, '_INBOX.>'),
      watch(service, '_INBOX.>'),
    ]);
    await registry.nc.request('prober.cmd.runChecks', json({}), { timeout: 5000 });
    await router.nc.request('registry.cmd.revision', json({}), { timeout: 5000 });
    await Promise.all([router, prober, invalidator, service].map((party) => party.nc.flush()));
    for (const tap of taps) expect(tap.seen).toEqual([]);
    await violationReported(router, 'subscription', '_INBOX.registry-api.>');
    await violationReported(prober, 'subscription', '_INBOX.llm-router.>');
    await violationReported(invalidator, 'subscription', '_INBOX.>');
    await violationReported(service, 'subscription', '_INBOX.>');
  });

  it('lets the cache-invalidator read the stream through its own consumer only', async () => {
    const invalidatorJsm = await invalidator.nc.jetstreamManager();
    const messages = (await jsm.streams.info('REGISTRY')).state.messages;
    await expect(invalidatorJsm.streams.purge('REGISTRY')).rejects.toMatchObject({ code: 'PERMISSIONS_VIOLATION' });
    await expect(invalidatorJsm.streams.delete('REGISTRY')).rejects.toMatchObject({ code: 'PERMISSIONS_VIOLATION' });
    await expect(invalidatorJsm.streams.update('REGISTRY', { subjects: ['registry.events.>', 'registry.cmd.>'] })).rejects.toMatchObject({
      code: 'PERMISSIONS_VIOLATION',
    });
    await expect(
      invalidatorJsm.consumers.add('REGISTRY', { durable_name: 'tap', ack_policy: AckPolicy.Explicit, filter_subject: 'registry.events.>' }),
    ).rejects.toMatchObject({ code: 'PERMISSIONS_VIOLATION' });
    await expect(answered(invalidator.nc.request('registry.events.registered.production.vllm', json({}), { timeout: 2000 }))).rejects.toMatchObject({
      code: 'PERMISSIONS_VIOLATION',
    });
    const info = await jsm.streams.info('REGISTRY');
    expect(info.state.messages).toBe(messages);
    expect(info.config.subjects).toEqual(['registry.events.>']);
    // Its own, from the first test, once the router's and prober's ephemeral watches there have expired (a durable 'tap' would stay).
    await waitFor(async () => (await jsm.streams.info('REGISTRY')).state.consumer_count === 1, 10_000, 'only the durable consumer left');
  });
});

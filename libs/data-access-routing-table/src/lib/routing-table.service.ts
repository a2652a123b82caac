import {
  AdminState,
  HealthCheckSettings,
  HealthStatus,
  isRoutable,
  LoadFigures,
  parseHeartbeat,
  parseRegistryEvent,
  ParsedRegistryEvent,
  RegistryEventKind,
  SubjectSpace,
} from '@switchboard/contracts';
import { decodeJsonObject, encodeJson, inChildSpan, MAX_EVENT_BYTES, MAX_HEARTBEAT_BYTES, MessageRejected, Msg, NatsClient, RejectionCounter, StreamFeed, Subscription } from '@switchboard/messaging';
import { RequestStrategy } from 'nats';
import { DEFAULT_EVENT_REVISION_MAX_AHEAD, RevisionGuard, RevisionRejectReason } from './revision-guard.util';
import { parseSnapshotChunk, SnapshotChunkRejected, SnapshotInstance } from './snapshot-chunk.util';

/** What a router (or an SDK) needs of an instance to send it traffic. */
export interface RoutedInstance {
  serviceId: string;
  serviceName: string;
  environment: string;
  models: readonly string[];
  internalUrl: string;
  healthCheckEndpoint: string;
  healthCheck: HealthCheckSettings;
  status: HealthStatus;
  adminState: AdminState;
  routable: boolean;
  revision: number;
  /** Latest figures from heartbeats (mutated in place as they arrive). */
  load: LoadFigures;
  lastHeartbeatAt?: number;
  /** Only with `keepDetails`: what a person looking at the fleet wants besides routing. */
  details?: InstanceDetails;
}

/** Display fields of an instance, kept only by tables built with `keepDetails` (the console's). */
export interface InstanceDetails {
  version?: string;
  region?: string;
  /** When the registry last heard of it (ISO 8601), as of the event or snapshot. */
  lastSeen?: string;
}

export interface RoutingTableLogger {
  log(message: string): void;
  warn(message: string): void;
}

export interface RoutingTableOptions {
  nats: NatsClient;
  subjects: SubjectSpace;
  /** How often to compare our highest revision with the registry's (cheap request). 0 disables. */
  driftCheckIntervalMs?: number;
  /**
   * How long one snapshot may take, all chunks included. Default 60 s: `npm run bench:table` loads
   * 100,000 instances in ~6 s on 2 cores, and a snapshot cut short would only be taken again.
   */
  snapshotTimeoutMs?: number;
  /**
   * An event further than this past the highest revision known to be real waits for the registry to
   * confirm it (see RevisionGuard). Default 1000.
   */
  eventRevisionMaxAhead?: number;
  logger?: RoutingTableLogger;
  /** Each event rejected as not issued by the registry, and each drift check that found the table ahead of it. */
  onRejected?: (reason: RevisionRejectReason) => void;
  /** Messages refused on its subscriptions (`routing_table_messages_rejected_total`), by pattern and reason. */
  messagesRejected?: RejectionCounter;
  /** The event stream's idle heartbeat: three of silence recreate its consumer. Default 1000 ms. */
  feedHeartbeatMs?: number;
  /** How long a deregistration learned from an event is remembered (snapshots bring the registry's own). Default 14 days. */
  tombstoneRetentionMs?: number;
  /**
   * Keep {@link InstanceDetails} too: the snapshot is asked for every field (~2x the bytes of the
   * routing view), and events' instances are read for them. For a console, not for a router.
   */
  keepDetails?: boolean;
  /** Tests only: what the network does to event messages before the table sees them (drop, duplicate, reorder). */
  eventTransport?: (msg: Msg, deliver: (msg: Msg) => void) => void;
}

export interface RoutingTableStats {
  eventsApplied: number;
  eventsIgnored: number;
  invalidEvents: number;
  /** Events not confirmed by the registry (forged?), and tables found ahead of the registry. */
  eventsRejected: number;
  resyncs: number;
  /** Snapshots that failed (each retried with backoff). */
  resyncFailures: number;
  /** Snapshot chunks refused as malformed (the snapshot was taken again). */
  snapshotChunksRejected: number;
  heartbeats: number;
}

/** What one event changed (`onChange`); undefined when a snapshot replaced the whole table. */
export interface TableChange {
  serviceId: string;
  /** The instance as the table holds it now; undefined once deregistered. */
  instance?: RoutedInstance;
  previous?: RoutedInstance;
  /** The registry event that made it (the table always says; hand-made changes in tests may not). */
  kind?: RegistryEventKind;
}

const DEFAULT_SNAPSHOT_TIMEOUT_MS = 60_000;
const silent: RoutingTableLogger = { log: () => undefined, warn: () => undefined };
const key = (environment: string, model: string) => `${environment}\u0000${model}`;

/**
 * The registry, in memory, kept fresh by events: list, then watch (the Kubernetes informer pattern),
 * with the REGISTRY stream as the watch, so nothing is missed:
 * 1. note the stream's last sequence S, 2. take `registry.cmd.snapshot` (instances and tombstones),
 * 3. read the stream from S+1 on ({@link StreamFeed}). Every change not in the snapshot committed
 * after it was read, so was published after S. From then on each event applies only if its revision
 * is newer than what the table holds for that instance (or its tombstone), so duplicates, the
 * overlap with the snapshot and reordering between publishers are harmless. A NATS outage or restart
 * only pauses the feed: it resumes at its own position, without a snapshot. A fresh snapshot is taken
 * only when the stream no longer holds what the feed needs, or when the periodic `registry.cmd.revision`
 * check disagrees; a snapshot that fails is retried with backoff, never abandoned. Reads never leave
 * the process.
 */
export class RoutingTable {
  private readonly instances = new Map<string, RoutedInstance>();
  /** Deregistered ids, with when we learned it (pruned after tombstoneRetentionMs). */
  private tombstones = new Map<string, { revision: number; at: number }>();
  private byModel = new Map<string, readonly RoutedInstance[]>();
  /** (environment, serviceName) → instances; copy-on-write like byModel (the SDK calls services by name). */
  private byService = new Map<string, readonly RoutedInstance[]>();
  private highest = 0;
  private subscriptions: Subscription[] = [];
  private driftTimer?: NodeJS.Timeout;
  private resyncing?: Promise<void>;
  private stopped = false;
  private lastPrune = Date.now();
  private readonly feed: StreamFeed;
  private readonly listeners = new Set<(change?: TableChange) => void>();
  private readonly heartbeatListeners = new Set<(instance: RoutedInstance) => void>();
  private readonly logger: RoutingTableLogger;
  private readonly guard: RevisionGuard;
  readonly stats: RoutingTableStats = { eventsApplied: 0, eventsIgnored: 0, invalidEvents: 0, eventsRejected: 0, resyncs: 0, resyncFailures: 0, snapshotChunksRejected: 0, heartbeats: 0 };

  constructor(private readonly options: RoutingTableOptions) {
    this.logger = options.logger ?? silent;
    this.guard = new RevisionGuard({
      maxAhead: options.eventRevisionMaxAhead ?? DEFAULT_EVENT_REVISION_MAX_AHEAD,
      askRegistry: async () => (await options.nats.request<{ revision: number }>(options.subjects.revisionCommand, {}, 2000)).revision,
      logger: this.logger,
      onReject: (reason) => {
        this.stats.eventsRejected++;
        options.onRejected?.(reason);
      },
    });
    this.feed = new StreamFeed({
      nats: options.nats,
      stream: options.subjects.registryStream,
      onMessage: (msg) => this.onEvent(msg),
      onLost: (expected, found) => {
        this.logger.warn(`the event stream no longer holds sequence ${expected} (next it has: ${found}); taking a fresh snapshot`);
        void this.resync();
      },
      heartbeatMs: options.feedHeartbeatMs,
      logger: this.logger,
      rejections: options.messagesRejected,
      // The subjects it carries, as the core subscription was counted before.
      label: options.subjects.registryEventsAll,
      transport: options.eventTransport,
    });
  }

  /** Loads the snapshot and starts the feed and the drift check. Resolves when the table is usable. */
  async start(): Promise<void> {
    const { nats, subjects } = this.options;
    this.stopped = false;
    this.subscriptions = [nats.subscribe(subjects.heartbeatAll, (msg) => this.onHeartbeat(msg), { rejections: this.options.messagesRejected })];
    // registry-api may start after us (or be restarting): resync() waits for its stream and snapshot, retrying.
    await this.resync();
    const interval = this.options.driftCheckIntervalMs ?? 5000;
    if (interval > 0) {
      this.driftTimer = setInterval(() => {
        this.pruneTombstones();
        void this.checkDrift().catch(() => undefined);
      }, interval);
      this.driftTimer.unref();
    }
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.driftTimer);
    this.feed.stop();
    for (const subscription of this.subscriptions) subscription.unsubscribe();
    this.subscriptions = [];
  }

  /** Consumers the event feed created; more than one means it recovered from an outage or a gap. */
  get feedRestarts(): number {
    return this.feed.restarts;
  }

  /** Highest revision applied (events or snapshot). */
  get revision(): number {
    return this.highest;
  }

  get size(): number {
    return this.instances.size;
  }

  /** Every instance serving `model` in `environment`, routable or not (for "not ready" messages). */
  instancesFor(environment: string, model: string): readonly RoutedInstance[] {
    return this.byModel.get(key(environment, model)) ?? [];
  }

  routable(environment: string, model: string): RoutedInstance[] {
    return this.instancesFor(environment, model).filter((i) => i.routable);
  }

  /** Every instance of the service `serviceName` in `environment`, routable or not. */
  instancesOfService(environment: string, serviceName: string): readonly RoutedInstance[] {
    return this.byService.get(key(environment, serviceName)) ?? [];
  }

  /** Models with at least one routable instance in `environment`. */
  routableModels(environment: string): string[] {
    const models: string[] = [];
    for (const [k, list] of this.byModel) {
      const [env, model] = k.split('\u0000');
      if (env === environment && list.some((i) => i.routable)) models.push(model);
    }
    return models.sort();
  }

  get(serviceId: string): RoutedInstance | undefined {
    return this.instances.get(serviceId);
  }

  /** Every instance, whatever its state (the prober judges them all). */
  all(): IterableIterator<RoutedInstance> {
    return this.instances.values();
  }

  /**
   * Called after every change of the table (not on heartbeats): with the instance an event changed, or
   * with nothing when a snapshot replaced the whole table.
   */
  onChange(listener: (change?: TableChange) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Called after a heartbeat updated an instance's load and lastHeartbeatAt (in place). */
  watchHeartbeats(listener: (instance: RoutedInstance) => void): () => void {
    this.heartbeatListeners.add(listener);
    return () => this.heartbeatListeners.delete(listener);
  }

  /**
   * Replaces the table with a fresh snapshot and restarts the feed just after it; until that
   * succeeds it retries with backoff (the current table stays in use meanwhile). Coalesced.
   */
  resync(): Promise<void> {
    this.resyncing ??= this.resyncUntilDone().finally(() => (this.resyncing = undefined));
    return this.resyncing;
  }

  private async resyncUntilDone(): Promise<void> {
    for (let attempt = 1; !this.stopped; attempt++) {
      try {
        await this.resyncOnce();
        return;
      } catch (error) {
        this.stats.resyncFailures++;
        if (attempt === 1 || attempt % 20 === 0) {
          this.logger.warn(`registry snapshot not available (attempt ${attempt}): ${describeError(error)}; retrying`);
        }
        await new Promise((r) => setTimeout(r, Math.min(2000, 100 * attempt)));
      }
    }
  }

  private async resyncOnce(): Promise<void> {
    // Before the snapshot: every change it does not show is published after this sequence.
    const last = await this.feed.lastSequence();
    // Chunk by chunk into compact entries: a 100,000-instance snapshot is ~27 MiB of JSON, never held whole.
    const fresh = new Map<string, RoutedInstance>();
    const tombstones = new Map<string, number>();
    let revision = 0;
    await this.forEachSnapshotChunk((instances, chunkTombstones, chunkRevision) => {
      revision = Math.max(revision, chunkRevision);
      for (const view of instances) {
        const kept = this.instances.get(view.serviceId);
        fresh.set(view.serviceId, toRouted(view, kept?.load, kept?.lastHeartbeatAt, this.options.keepDetails));
      }
      for (const [id, deletedAt] of chunkTombstones) tombstones.set(id, deletedAt);
    });
    // What was published while the snapshot was read: the table is usable once it holds that too.
    const since = await this.feed.lastSequence();
    if (this.stopped) return;
    this.replace(fresh, tombstones, revision);
    this.guard.observe(revision);
    this.stats.resyncs++;
    // If NATS is down now, the feed keeps retrying from there by itself.
    await this.feed.start(last + 1).catch((error: Error) => this.logger.warn(`event feed not started yet: ${error.message}; retrying`));
    await this.feed.caughtUp(since, this.options.snapshotTimeoutMs ?? DEFAULT_SNAPSHOT_TIMEOUT_MS);
    this.logger.log(`routing table loaded: ${this.instances.size} instance(s) at revision ${this.highest}, events from stream sequence ${last + 1}`);
  }

  /**
   * `registry.cmd.snapshot` with `{ view: 'routing' }` (only the fields the table keeps; an older
   * registry ignores it and sends every field, which is read alike). Each chunk is size-bounded by the
   * server, decoded and type-checked here ({@link parseSnapshotChunk}); a malformed one is counted
   * (`stats.snapshotChunksRejected`, the rejection counter) and fails this snapshot, which is retried.
   */
  private async forEachSnapshotChunk(apply: (instances: SnapshotInstance[], tombstones: [string, number][], revision: number) => void): Promise<void> {
    const { nats, subjects } = this.options;
    const timeoutMs = this.options.snapshotTimeoutMs ?? DEFAULT_SNAPSHOT_TIMEOUT_MS;
    const maxBytes = nats.connection.info?.max_payload ?? 1024 * 1024;
    const replies = await nats.connection.requestMany(subjects.snapshotCommand, encodeJson({ view: this.options.keepDetails ? 'full' : 'routing' }), { strategy: RequestStrategy.SentinelMsg, maxWait: timeoutMs });
    for await (const msg of replies) {
      if (!msg.data.length) return;
      let chunk;
      try {
        chunk = parseSnapshotChunk(decodeJsonObject(msg.data, maxBytes));
      } catch (error) {
        if (error instanceof SnapshotChunkRejected || error instanceof MessageRejected) {
          this.stats.snapshotChunksRejected++;
          this.options.messagesRejected?.inc({ subject: subjects.snapshotCommand, reason: error instanceof MessageRejected ? error.reason : 'invalid' });
        }
        throw error;
      }
      apply(chunk.instances, chunk.tombstones, chunk.revision);
    }
    throw new Error(`${subjects.snapshotCommand}: the answer ended before its last chunk (timeout after ${timeoutMs} ms?)`);
  }

  /**
   * Compares with the registry's highest revision. Behind it, by a gap that outlives in-flight events:
   * we missed one. Ahead of it: we applied a revision the registry never issued (a forged event that
   * was within the plausible window); either way a fresh snapshot replaces the table.
   */
  async checkDrift(): Promise<boolean> {
    // Every event applied before the request is sent was committed before it is answered.
    const before = this.highest;
    const remote = await this.guard.registryRevision();
    if (before > remote) {
      this.guard.reject('table_ahead_of_registry', before);
      this.logger.warn(`routing table ahead of the registry (${before} > ${remote}): it applied an event the registry never issued; taking a fresh snapshot`);
      await this.resync();
      return true;
    }
    if (remote <= this.highest) return false;
    await new Promise((r) => setTimeout(r, 250));
    if (remote <= this.highest) return false;
    this.logger.warn(`routing table behind the registry (${this.highest} < ${remote}); taking a fresh snapshot`);
    await this.resync();
    return true;
  }

  private onEvent(msg: Msg): void {
    let parsed: ParsedRegistryEvent;
    try {
      parsed = parseRegistryEvent(decodeJsonObject(msg.data, MAX_EVENT_BYTES));
    } catch (error) {
      this.stats.invalidEvents++;
      // NatsClient counts it and logs at most once per interval: a flood is not a flood of log lines.
      throw error instanceof MessageRejected ? error : new MessageRejected('invalid', (error as Error).message);
    }
    // Under the feed's consumer span: one trace from the REST write to this table.
    inChildSpan('routing-table apply', { 'switchboard.event.kind': parsed.kind, 'switchboard.revision': parsed.event.data.revision, 'switchboard.service_id': parsed.event.subject }, () => this.admit(parsed));
  }

  /** Applies a plausible event at once; one implausibly far ahead only once the registry confirms it. */
  private admit(parsed: ParsedRegistryEvent): void {
    const revision = parsed.event.data.revision;
    if (this.guard.plausible(revision)) {
      this.apply(parsed);
      return;
    }
    void this.guard.verify(revision).then((verdict) => {
      if (verdict.ok) this.apply(parsed);
    });
  }

  private onHeartbeat(msg: Msg): void {
    const target = this.options.subjects.parseHeartbeat(msg.subject);
    const instance = target && this.instances.get(target.serviceId);
    if (!instance) return;
    const parsed = parseHeartbeat(msg.data.length ? decodeJsonObject(msg.data, MAX_HEARTBEAT_BYTES) : {});
    if (!parsed.ok) throw new MessageRejected('invalid', `invalid heartbeat: ${parsed.errors.map((e) => e.reason).join('; ')}`);
    if (parsed.value.metadata) Object.assign(instance.load, parsed.value.metadata);
    instance.lastHeartbeatAt = Date.now();
    this.stats.heartbeats++;
    for (const listener of this.heartbeatListeners) listener(instance);
  }

  private apply(parsed: ParsedRegistryEvent): void {
    const data = parsed.event.data;
    const serviceId = parsed.kind === 'deregistered' ? parsed.event.data.serviceId : parsed.event.data.instance.serviceId;
    const current = this.instances.get(serviceId);
    const tombstone = this.tombstones.get(serviceId)?.revision;
    if ((current && current.revision >= data.revision) || (tombstone !== undefined && tombstone >= data.revision)) {
      this.stats.eventsIgnored++;
      return;
    }
    this.highest = Math.max(this.highest, data.revision);
    if (current) this.unindex(current);
    let next: RoutedInstance | undefined;
    if (parsed.kind === 'deregistered') {
      this.instances.delete(serviceId);
      this.tombstones.set(serviceId, { revision: data.revision, at: Date.now() });
    } else {
      next = toRouted(parsed.event.data.instance, current?.load, current?.lastHeartbeatAt, this.options.keepDetails);
      this.instances.set(serviceId, next);
      this.tombstones.delete(serviceId);
      this.index(next);
    }
    this.stats.eventsApplied++;
    this.notify({ serviceId, instance: next, previous: current, kind: parsed.kind });
  }

  private replace(fresh: Map<string, RoutedInstance>, snapshotTombstones: Map<string, number>, revision: number): void {
    const previous = new Map(this.instances);
    const previousTombstones = this.tombstones;
    const now = Date.now();
    this.instances.clear();
    const byModel = new Map<string, RoutedInstance[]>();
    const byService = new Map<string, RoutedInstance[]>();
    for (const [id, instance] of fresh) {
      this.instances.set(id, instance);
      const s = key(instance.environment, instance.serviceName);
      const same = byService.get(s);
      if (same) same.push(instance);
      else byService.set(s, [instance]);
      for (const model of instance.models) {
        const k = key(instance.environment, model);
        const list = byModel.get(k);
        if (list) list.push(instance);
        else byModel.set(k, [instance]);
      }
    }
    this.byModel = byModel;
    this.byService = byService;
    // The registry's tombstones, at their own revisions: a re-registration committed after the
    // snapshot has a higher one and applies; a late, older event of a deleted instance does not.
    const tombstones = new Map<string, { revision: number; at: number }>();
    for (const [id, deletedAt] of snapshotTombstones) if (!fresh.has(id)) tombstones.set(id, { revision: deletedAt, at: now });
    for (const [id, known] of previousTombstones) {
      // A tombstone newer than the snapshot was never issued by the registry (forged): it would hide a real re-registration.
      if (fresh.has(id) || known.revision > revision) continue;
      if ((tombstones.get(id)?.revision ?? 0) < known.revision) tombstones.set(id, known);
    }
    // Gone while we were not looking, and the registry no longer remembers when: nothing at or below
    // the revision we held can bring it back.
    for (const [id, instance] of previous) if (!fresh.has(id) && !tombstones.has(id)) tombstones.set(id, { revision: Math.min(instance.revision, revision), at: now });
    this.tombstones = tombstones;
    // The snapshot is the truth, also when the table held a higher (forged) revision.
    this.highest = revision;
    this.notify();
  }

  /** Deregistrations learned long ago are forgotten: no event that old can still arrive. */
  private pruneTombstones(): void {
    const now = Date.now();
    if (now - this.lastPrune < 60_000) return;
    this.lastPrune = now;
    const cutoff = now - (this.options.tombstoneRetentionMs ?? 14 * 86_400_000);
    for (const [id, tombstone] of this.tombstones) if (tombstone.at < cutoff) this.tombstones.delete(id);
  }

  private index(instance: RoutedInstance): void {
    for (const model of instance.models) {
      const k = key(instance.environment, model);
      this.byModel.set(k, [...(this.byModel.get(k) ?? []), instance]);
    }
    const s = key(instance.environment, instance.serviceName);
    this.byService.set(s, [...(this.byService.get(s) ?? []), instance]);
  }

  private unindex(instance: RoutedInstance): void {
    for (const model of instance.models) {
      const k = key(instance.environment, model);
      const rest = (this.byModel.get(k) ?? []).filter((i) => i.serviceId !== instance.serviceId);
      if (rest.length) this.byModel.set(k, rest);
      else this.byModel.delete(k);
    }
    const s = key(instance.environment, instance.serviceName);
    const others = (this.byService.get(s) ?? []).filter((i) => i.serviceId !== instance.serviceId);
    if (others.length) this.byService.set(s, others);
    else this.byService.delete(s);
  }

  private notify(change?: TableChange): void {
    for (const listener of this.listeners) listener(change);
  }
}

/** An event's instance view, or a snapshot's (checked, possibly without the fields that have defaults). */
function toRouted(v: SnapshotInstance, load?: LoadFigures, lastHeartbeatAt?: number, keepDetails = false): RoutedInstance {
  const routed: RoutedInstance = {
    serviceId: v.serviceId,
    serviceName: v.serviceName,
    environment: v.environment,
    models: v.models ?? [],
    internalUrl: v.internalUrl,
    healthCheckEndpoint: v.healthCheckEndpoint ?? '/health',
    healthCheck: v.healthCheck ?? {},
    status: v.status,
    adminState: v.adminState,
    routable: isRoutable(v),
    revision: v.revision,
    load: { ...v.load, ...load },
    lastHeartbeatAt,
  };
  if (keepDetails) routed.details = detailsOf(v as unknown as Record<string, unknown>);
  return routed;
}

const MAX_DETAIL = 256;
const detail = (v: unknown): string | undefined => (typeof v === 'string' && v.length <= MAX_DETAIL ? v : undefined);

/** Checked like the rest of a chunk: only short strings are kept, anything else is left out. */
function detailsOf(v: Record<string, unknown>): InstanceDetails {
  return { version: detail(v['version']), region: detail(v['region']), lastSeen: detail(v['lastSeen']) };
}

/** NATS reports "no responders" as a bare 503. */
function describeError(error: unknown): string {
  const e = error as { code?: string; message?: string };
  return e.code === '503' ? 'no registry-api is answering registry.cmd.snapshot' : e.message ?? String(error);
}

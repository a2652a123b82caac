import {
  AdminState,
  HealthCheckSettings,
  HealthStatus,
  isRoutable,
  LoadFigures,
  parseHeartbeat,
  parseRegistryEvent,
  ParsedRegistryEvent,
  RegistrySnapshot,
  ServiceInstanceView,
  SubjectSpace,
} from '@switchboard/contracts';
import { decodeJsonObject, MAX_EVENT_BYTES, MAX_HEARTBEAT_BYTES, MessageRejected, Msg, NatsClient, RejectionCounter, Subscription } from '@switchboard/messaging';
import { DEFAULT_EVENT_REVISION_MAX_AHEAD, RevisionGuard, RevisionRejectReason } from './revision-guard.util';

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
}

export interface RoutingTableStats {
  eventsApplied: number;
  eventsIgnored: number;
  invalidEvents: number;
  /** Events not confirmed by the registry (forged?), and tables found ahead of the registry. */
  eventsRejected: number;
  resyncs: number;
  heartbeats: number;
}

const silent: RoutingTableLogger = { log: () => undefined, warn: () => undefined };
const key = (environment: string, model: string) => `${environment}\u0000${model}`;

/**
 * The registry, in memory, kept fresh by events: list, then watch (the Kubernetes informer pattern).
 * It subscribes to `registry.events.>` first, then asks `registry.cmd.snapshot`, applies it, then
 * the events that arrived meanwhile; from then on each event applies only if its revision is newer
 * than what the table holds for that instance (or its tombstone), so duplicates and reordering are
 * harmless. A periodic `registry.cmd.revision` check, and every NATS reconnect, trigger a fresh
 * snapshot if anything was missed. Reads never leave the process.
 */
export class RoutingTable {
  private readonly instances = new Map<string, RoutedInstance>();
  private readonly tombstones = new Map<string, number>();
  private byModel = new Map<string, readonly RoutedInstance[]>();
  private highest = 0;
  private buffer: ParsedRegistryEvent[] | null = null;
  private subscriptions: Subscription[] = [];
  private driftTimer?: NodeJS.Timeout;
  private resyncing?: Promise<void>;
  private readonly listeners = new Set<() => void>();
  private readonly logger: RoutingTableLogger;
  private readonly guard: RevisionGuard;
  readonly stats: RoutingTableStats = { eventsApplied: 0, eventsIgnored: 0, invalidEvents: 0, eventsRejected: 0, resyncs: 0, heartbeats: 0 };

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
  }

  /** Subscribes, loads the snapshot, and starts the drift check. Resolves when the table is usable. */
  async start(): Promise<void> {
    const { nats, subjects } = this.options;
    this.subscriptions = [
      nats.subscribe(subjects.registryEventsAll, (msg) => this.onEvent(msg), { rejections: this.options.messagesRejected }),
      nats.subscribe(subjects.heartbeatAll, (msg) => this.onHeartbeat(msg), { rejections: this.options.messagesRejected }),
    ];
    // The server must know the subscriptions before the snapshot is taken, or an event could fall between.
    await nats.connection.flush();
    // registry-api may start after us (or be restarting): wait for its snapshot, retrying.
    for (let attempt = 1; ; attempt++) {
      try {
        await this.resync();
        break;
      } catch (error) {
        if (attempt === 1 || attempt % 20 === 0) {
          this.logger.warn(`registry snapshot not available yet (attempt ${attempt}): ${describeError(error)}; retrying`);
        }
        await new Promise((r) => setTimeout(r, Math.min(2000, 100 * attempt)));
      }
    }
    nats.onReconnect(() => void this.resync().catch((error: Error) => this.logger.warn(`resync after reconnect failed: ${error.message}`)));
    const interval = this.options.driftCheckIntervalMs ?? 5000;
    if (interval > 0) {
      this.driftTimer = setInterval(() => void this.checkDrift().catch(() => undefined), interval);
      this.driftTimer.unref();
    }
  }

  stop(): void {
    clearInterval(this.driftTimer);
    for (const subscription of this.subscriptions) subscription.unsubscribe();
    this.subscriptions = [];
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

  /** Called after every change of the table (not on heartbeats). */
  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Replaces the table with a fresh snapshot, then applies the events that arrived meanwhile. */
  resync(): Promise<void> {
    this.resyncing ??= this.doResync().finally(() => (this.resyncing = undefined));
    return this.resyncing;
  }

  private async doResync(): Promise<void> {
    const { nats, subjects } = this.options;
    this.buffer = [];
    try {
      // Chunk by chunk into compact entries: a 10,000-instance snapshot is ~9 MiB of JSON, never held whole.
      const fresh = new Map<string, RoutedInstance>();
      let revision = 0;
      await nats.forEachChunk<RegistrySnapshot | { error: { message: string } }>(
        subjects.snapshotCommand,
        {},
        (chunk) => {
          if ('error' in chunk) throw new Error(`snapshot refused: ${chunk.error.message}`);
          revision = Math.max(revision, chunk.revision);
          for (const view of chunk.instances) {
            const kept = this.instances.get(view.serviceId);
            fresh.set(view.serviceId, toRouted(view, kept?.load, kept?.lastHeartbeatAt));
          }
        },
        this.options.snapshotTimeoutMs ?? 10_000,
      );
      this.replace(fresh, revision);
      this.guard.observe(revision);
      for (const event of this.buffer) this.admit(event);
      this.stats.resyncs++;
      this.logger.log(`routing table loaded: ${this.instances.size} instance(s) at revision ${this.highest}`);
    } finally {
      this.buffer = null;
    }
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
    if (this.buffer) this.buffer.push(parsed);
    else this.admit(parsed);
  }

  /** Applies a plausible event at once; one implausibly far ahead only once the registry confirms it. */
  private admit(parsed: ParsedRegistryEvent): void {
    const revision = parsed.event.data.revision;
    if (this.guard.plausible(revision)) {
      this.apply(parsed);
      return;
    }
    void this.guard.verify(revision).then((verdict) => {
      if (!verdict.ok) return;
      // A resync started meanwhile: its buffer keeps the order with the snapshot.
      if (this.buffer) this.buffer.push(parsed);
      else this.apply(parsed);
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
  }

  private apply(parsed: ParsedRegistryEvent): void {
    const data = parsed.event.data;
    const serviceId = parsed.kind === 'deregistered' ? parsed.event.data.serviceId : parsed.event.data.instance.serviceId;
    const current = this.instances.get(serviceId);
    const tombstone = this.tombstones.get(serviceId);
    if ((current && current.revision >= data.revision) || (tombstone !== undefined && tombstone >= data.revision)) {
      this.stats.eventsIgnored++;
      return;
    }
    this.highest = Math.max(this.highest, data.revision);
    if (current) this.unindex(current);
    if (parsed.kind === 'deregistered') {
      this.instances.delete(serviceId);
      this.tombstones.set(serviceId, data.revision);
    } else {
      const next = toRouted(parsed.event.data.instance, current?.load, current?.lastHeartbeatAt);
      this.instances.set(serviceId, next);
      this.tombstones.delete(serviceId);
      this.index(next);
    }
    this.stats.eventsApplied++;
    this.notify();
  }

  private replace(fresh: Map<string, RoutedInstance>, revision: number): void {
    const previous = [...this.instances.keys()];
    this.instances.clear();
    const byModel = new Map<string, RoutedInstance[]>();
    for (const [id, instance] of fresh) {
      this.instances.set(id, instance);
      this.tombstones.delete(id);
      for (const model of instance.models) {
        const k = key(instance.environment, model);
        const list = byModel.get(k);
        if (list) list.push(instance);
        else byModel.set(k, [instance]);
      }
    }
    this.byModel = byModel;
    // A tombstone newer than the snapshot was never issued by the registry (forged): it would hide a real re-registration.
    for (const [id, tombstone] of this.tombstones) if (tombstone > revision) this.tombstones.delete(id);
    // Gone while we were not looking: remember them as deleted at the snapshot's revision.
    for (const id of previous) if (!this.instances.has(id)) this.tombstones.set(id, revision);
    // The snapshot is the truth, also when the table held a higher (forged) revision.
    this.highest = revision;
    this.notify();
  }

  private index(instance: RoutedInstance): void {
    for (const model of instance.models) {
      const k = key(instance.environment, model);
      this.byModel.set(k, [...(this.byModel.get(k) ?? []), instance]);
    }
  }

  private unindex(instance: RoutedInstance): void {
    for (const model of instance.models) {
      const k = key(instance.environment, model);
      const rest = (this.byModel.get(k) ?? []).filter((i) => i.serviceId !== instance.serviceId);
      if (rest.length) this.byModel.set(k, rest);
      else this.byModel.delete(k);
    }
  }

  private notify(): void {
    for (const listener of this.listeners) listener();
  }
}

function toRouted(view: ServiceInstanceView | (Pick<ServiceInstanceView, 'serviceId'> & Partial<ServiceInstanceView>), load?: LoadFigures, lastHeartbeatAt?: number): RoutedInstance {
  const v = view as ServiceInstanceView;
  return {
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
}

/** NATS reports "no responders" as a bare 503. */
function describeError(error: unknown): string {
  const e = error as { code?: string; message?: string };
  return e.code === '503' ? 'no registry-api is answering registry.cmd.snapshot' : e.message ?? String(error);
}

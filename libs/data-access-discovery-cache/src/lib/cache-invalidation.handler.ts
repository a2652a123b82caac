import type { Span } from '@opentelemetry/api';
import { AckPolicy, ConsumerMessages, DeliverPolicy, JsMsg, nanos } from 'nats';
import { cacheKeysForEvent, parseRegistryEvent, ParsedRegistryEvent, RegistryEventKind, SubjectSpace } from '@switchboard/contracts';
import { decodeJsonObject, MAX_EVENT_BYTES, NatsClient, processStreamMessage } from '@switchboard/messaging';
import { DEFAULT_EVENT_REVISION_MAX_AHEAD, RevisionGuard, RevisionRejectReason } from '@switchboard/routing-table';
import { DiscoveryCacheRepository } from './discovery-cache.repository';

export interface CacheInvalidationLogger {
  log(message: string): void;
  warn(message: string): void;
}

/** What each handled event did, for metrics. */
export interface InvalidationOutcome {
  kind: RegistryEventKind;
  revision: number;
  keys: number;
  /** Keys replaced by a marker; the others already held this revision or a newer one. */
  replaced: number;
  /** From the event's `time` (its write in registry-api) to the keys' replacement. */
  lagMs: number;
}

export interface CacheInvalidationOptions {
  nats: NatsClient;
  subjects: SubjectSpace;
  cache: DiscoveryCacheRepository;
  /** The durable consumer every replica shares, so each event is handled once. */
  durableName: string;
  /** Events delivered and not yet acknowledged, across replicas. */
  maxAckPending?: number;
  /** An event not acknowledged within this is redelivered (a replica died holding it). */
  ackWaitMs?: number;
  /** Events pulled per request. */
  batch?: number;
  /**
   * An event further than this past the highest revision the registry has confirmed waits for one
   * `registry.cmd.revision` answer; one the registry has not reached is dropped (forged?). Default 1000.
   */
  eventRevisionMaxAhead?: number;
  logger?: CacheInvalidationLogger;
  onInvalidated?: (outcome: InvalidationOutcome) => void;
  onFailure?: (reason: 'invalid_event' | 'redis') => void;
  /** An event the registry did not confirm: dropped (`ahead_of_registry`) or redelivered later (`unverifiable`). */
  onRejected?: (reason: RevisionRejectReason) => void;
}

export interface InvalidationStatus {
  /** Pulling from the durable consumer right now. */
  consuming: boolean;
  /** Events handled (keys replaced or found newer) by this process since it started. */
  handled: number;
  /** False from the first failed Redis write until the next successful one. */
  redisWritable: boolean;
}

/** How long one pull waits for events before the next; also sets the idle heartbeat (half of it). */
const PULL_EXPIRES_MS = 5000;

const silent: CacheInvalidationLogger = { log: () => undefined, warn: () => undefined };

/** Redelivery delay after a failed Redis write: 100 ms doubling to 2 s, so a returning Redis is caught up within seconds. */
export function redeliveryDelayMs(redeliveries: number): number {
  return Math.min(100 * 2 ** Math.min(redeliveries, 5), 2000);
}

/**
 * cache-invalidator's work: a durable JetStream pull consumer of the registry events. For each
 * event it replaces every key the event affects by a revision marker, then acknowledges. Nothing
 * is acknowledged before Redis has it, so a Redis outage or a crash only delays invalidations: the
 * stream redelivers them (a failed write is nak'ed with a delay; an unacknowledged one comes back
 * after `ackWaitMs`). Replays and reordering are harmless: a marker never replaces a newer entry.
 */
export class CacheInvalidationHandler {
  private readonly logger: CacheInvalidationLogger;
  private messages?: ConsumerMessages;
  private running?: Promise<void>;
  private stopped = false;
  private wake?: () => void;
  private handled = 0;
  private consuming = false;
  private redisWritable = true;
  private streamMissingLogged = false;
  private readonly guard: RevisionGuard;

  constructor(private readonly options: CacheInvalidationOptions) {
    this.logger = options.logger ?? silent;
    this.guard = new RevisionGuard({
      maxAhead: options.eventRevisionMaxAhead ?? DEFAULT_EVENT_REVISION_MAX_AHEAD,
      askRegistry: async () => (await options.nats.request<{ revision: number }>(options.subjects.revisionCommand, {}, 2000)).revision,
      logger: this.logger,
      onReject: (reason) => options.onRejected?.(reason),
    });
  }

  get status(): InvalidationStatus {
    return { consuming: this.consuming, handled: this.handled, redisWritable: this.redisWritable };
  }

  /** Starts consuming in the background; returns at once (the stream may not exist yet). */
  start(): void {
    this.stopped = false;
    this.running ??= this.supervise();
  }

  /** Stops pulling, lets the event in hand finish, and returns. Unacknowledged events stay on the consumer. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    this.messages?.stop();
    await this.running;
    this.running = undefined;
  }

  /** Events not yet delivered plus delivered and unacknowledged; undefined while the consumer is unknown. */
  async backlog(): Promise<{ pending: number; unacknowledged: number } | undefined> {
    try {
      const info = await (await this.options.nats.jsm()).consumers.info(this.options.subjects.registryStream, this.options.durableName);
      return { pending: info.num_pending, unacknowledged: info.num_ack_pending };
    } catch {
      return undefined;
    }
  }

  private async supervise(): Promise<void> {
    for (let attempt = 0; !this.stopped; attempt++) {
      try {
        await this.ensureConsumer();
        const consumer = await this.options.nats.js.consumers.get(this.options.subjects.registryStream, this.options.durableName);
        // Pulls expire after 5 s (heartbeats every 2.5 s) instead of 30 s (15 s): a pull held by a node
        // that died, or by the consumer's previous leader, is noticed after two missed heartbeats, so
        // a JetStream leader change stalls the invalidation ~5 s instead of ~30 s.
        this.messages = await consumer.consume({ max_messages: this.options.batch ?? 100, expires: PULL_EXPIRES_MS, abort_on_missing_resource: true });
        if (this.stopped) this.messages.stop();
        this.consuming = true;
        attempt = 0;
        for await (const msg of this.messages) {
          // A consumer span under the event's publish (its headers), so the write's trace reaches Redis.
          await processStreamMessage(this.options.subjects.registryStream, msg, (span) => this.handle(msg, span), { 'messaging.consumer.group.name': this.options.durableName });
        }
      } catch (error) {
        if (!this.stopped && !(error instanceof StreamMissing)) this.logger.warn(`event consumer stopped: ${(error as Error).message}; restarting`);
      } finally {
        this.consuming = false;
        this.messages = undefined;
      }
      if (!this.stopped) await this.sleep(Math.min(100 * 2 ** Math.min(attempt, 5), 2000));
    }
  }

  /** Creates the durable consumer, or brings its limits to ours when another version created it. */
  private async ensureConsumer(): Promise<void> {
    const jsm = await this.options.nats.jsm();
    const stream = this.options.subjects.registryStream;
    const limits = { max_ack_pending: this.options.maxAckPending ?? 1000, ack_wait: nanos(this.options.ackWaitMs ?? 5000) };
    try {
      await jsm.streams.info(stream);
    } catch (error) {
      if (!/stream not found/i.test((error as Error).message)) throw error;
      if (!this.streamMissingLogged) this.logger.warn(`stream ${stream} does not exist yet (registry-api creates it); waiting`);
      this.streamMissingLogged = true;
      throw new StreamMissing();
    }
    if (this.streamMissingLogged) this.logger.log(`stream ${stream} found`);
    this.streamMissingLogged = false;
    try {
      const info = await jsm.consumers.info(stream, this.options.durableName);
      if (info.config.max_ack_pending !== limits.max_ack_pending || info.config.ack_wait !== limits.ack_wait) {
        await jsm.consumers.update(stream, this.options.durableName, limits);
      }
    } catch (error) {
      if (!/consumer not found/i.test((error as Error).message)) throw error;
      // deliver_policy all: a consumer created late (or re-created) replays the retained stream; markers make that harmless.
      await jsm.consumers.add(stream, {
        durable_name: this.options.durableName,
        ack_policy: AckPolicy.Explicit,
        deliver_policy: DeliverPolicy.All,
        filter_subject: this.options.subjects.registryEventsAll,
        ...limits,
      });
      this.logger.log(`created durable consumer ${this.options.durableName} on ${stream}`);
    }
  }

  private async handle(msg: JsMsg, span?: Span): Promise<void> {
    let parsed: ParsedRegistryEvent;
    try {
      // Size and strict UTF-8 before JSON.parse; depth before class-transformer (inside parseRegistryEvent).
      parsed = parseRegistryEvent(decodeJsonObject(msg.data, MAX_EVENT_BYTES));
    } catch (error) {
      // Redelivering cannot fix it: terminate, so it never blocks or loops.
      this.logger.warn(`dropped an invalid event (stream seq ${msg.seq}, ${msg.subject}): ${(error as Error).message}`);
      this.options.onFailure?.('invalid_event');
      settle(() => msg.term()); // no reason text: servers before 2.10.4 ignore "+TERM <reason>"
      return;
    }
    const keys = cacheKeysForEvent(parsed);
    const revision = parsed.event.data.revision;
    span?.setAttributes({ 'switchboard.event.kind': parsed.kind, 'switchboard.revision': revision, 'switchboard.service_id': parsed.event.subject });
    // A forged marker with a huge revision would refuse every fill of its keys until it expires.
    if (!this.guard.plausible(revision)) {
      const verdict = await this.guard.verify(revision);
      if (!verdict.ok) {
        // Not reached by the registry: never will be applied. Unanswered: ask again when it is redelivered.
        if (verdict.reason === 'ahead_of_registry') settle(() => msg.term());
        else settle(() => msg.nak(redeliveryDelayMs(msg.info.redeliveryCount)));
        return;
      }
    }
    let replaced: number;
    try {
      replaced = await this.options.cache.invalidate(keys, revision);
    } catch (error) {
      if (this.redisWritable) this.logger.warn(`Redis unavailable (${(error as Error).message}): events stay unacknowledged and are redelivered until it returns`);
      this.redisWritable = false;
      this.options.onFailure?.('redis');
      settle(() => msg.nak(redeliveryDelayMs(msg.info.redeliveryCount)));
      return;
    }
    span?.setAttribute('switchboard.cache.keys_replaced', replaced);
    settle(() => msg.ack());
    if (!this.redisWritable) this.logger.log('Redis writable again: catching up from the stream');
    this.redisWritable = true;
    this.handled++;
    this.options.onInvalidated?.({ kind: parsed.kind, revision, keys: keys.length, replaced, lagMs: Date.now() - Date.parse(parsed.event.time) });
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }
}

class StreamMissing extends Error {}

/** Acks go out on the connection; if it is gone the server redelivers after ack_wait, which is the right outcome. */
function settle(reply: () => void): void {
  try {
    reply();
  } catch {
    // connection closed
  }
}

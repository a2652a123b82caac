import { AckPolicy, DeliverPolicy, Msg, nanos, Subscription } from 'nats';
import { LogThrottle } from '@switchboard/observability';
import { NatsClient } from './nats.client';
import { RejectionCounter } from './untrusted-message.util';

export interface StreamFeedLogger {
  log(message: string): void;
  warn(message: string): void;
}

export interface StreamFeedOptions {
  nats: NatsClient;
  stream: string;
  /** Each message of the stream, once, in stream order. A throw is counted and logged by NatsClient; the position still advances. */
  onMessage: (msg: Msg, sequence: number) => void;
  /**
   * The stream no longer holds `expected` (aged out, purged, or the stream was recreated): what was
   * there is gone, and the caller must take a snapshot and {@link StreamFeed.start} again.
   */
  onLost: (expected: number, found: number) => void;
  /** The server's idle heartbeat; silence for three of them restarts the consumer. Default 1000 ms. */
  heartbeatMs?: number;
  /** How long the server keeps the ephemeral consumer once nobody listens (a dead process). Default 30 s. */
  inactiveThresholdMs?: number;
  logger?: StreamFeedLogger;
  rejections?: RejectionCounter;
  /** What its refusals are counted under (its inbox changes with every consumer). Default `stream <name>`. */
  label?: string;
  /**
   * What the network does to a message before the feed sees it (tests: drop, duplicate, reorder).
   * Default: delivers it.
   */
  transport?: (msg: Msg, deliver: (msg: Msg) => void) => void;
}

/** Where a JetStream message sits in its stream and its consumer, from the reply subject. */
export function jetStreamPosition(reply: string | undefined): { stream: number; delivery: number } | undefined {
  if (!reply) return undefined;
  const tokens = reply.split('.');
  if (tokens[0] !== '$JS' || tokens[1] !== 'ACK') return undefined;
  // $JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<dseq>.<ts>.<pending>, or with <domain>.<account hash> after ACK (and a token at the end).
  const offset = tokens.length === 9 ? 0 : 2;
  const stream = Number(tokens[5 + offset]);
  const delivery = Number(tokens[6 + offset]);
  return Number.isSafeInteger(stream) && Number.isSafeInteger(delivery) ? { stream, delivery } : undefined;
}

const silent: StreamFeedLogger = { log: () => undefined, warn: () => undefined };

/**
 * Every message of a JetStream stream from a given sequence on, each once and in order, across NATS
 * outages, server restarts and lost messages, through an ephemeral push consumer (no acks, in
 * memory) that it recreates at its own position whenever it cannot be sure it saw everything: a gap
 * in the consumer's delivery sequence, a heartbeat naming a delivery it never got, three heartbeats of
 * silence, or a reconnect. Unlike a core subscription, nothing published meanwhile is missed: the
 * stream holds it. Only when the stream itself no longer holds the next message (its limits dropped it,
 * or it was recreated) does the caller hear {@link StreamFeedOptions.onLost} and resync from a snapshot.
 *
 * Written here rather than taken from nats.js's ordered consumers: theirs notice a restarted server
 * only after missing heartbeats (10 s or more), and recreate with a backoff of up to 30 s.
 */
export class StreamFeed {
  private next = 1;
  private delivered = 0;
  private generation = 0;
  private subscription?: Subscription;
  private lastActivity = 0;
  private watchdog?: NodeJS.Timeout;
  private opening?: Promise<void>;
  private reopenWanted = false;
  private stopped = true;
  private readonly logger: StreamFeedLogger;
  private readonly failureLog = new LogThrottle(10_000);
  /** Consumers created (the first included); a rising count means the feed keeps recovering. */
  restarts = 0;
  private readonly waiters = new Set<{ sequence: number; resolve: (reached: boolean) => void }>();

  constructor(private readonly options: StreamFeedOptions) {
    this.logger = options.logger ?? silent;
    options.nats.onReconnect(() => {
      if (!this.stopped) void this.reopen('NATS reconnected');
    });
  }

  /** The sequence of the next message it expects. */
  get position(): number {
    return this.next;
  }

  /**
   * Resolves true once every message up to `sequence` has been handed over, false after `timeoutMs`
   * (or when stopped) without that.
   */
  caughtUp(sequence: number, timeoutMs: number): Promise<boolean> {
    if (this.next > sequence) return Promise.resolve(true);
    return new Promise((resolve) => {
      const waiter = {
        sequence,
        resolve: (reached: boolean) => {
          clearTimeout(timer);
          this.waiters.delete(waiter);
          resolve(reached);
        },
      };
      const timer = setTimeout(() => waiter.resolve(false), timeoutMs);
      this.waiters.add(waiter);
    });
  }

  /** The stream's last sequence now (0 when empty): start from the one after it to get what follows. */
  async lastSequence(): Promise<number> {
    const jsm = await this.options.nats.jsm();
    return (await jsm.streams.info(this.options.stream)).state.last_seq;
  }

  /** (Re)starts delivery at `sequence`; resolves once the consumer exists. Retries by itself if it cannot. */
  async start(sequence: number): Promise<void> {
    this.stopped = false;
    this.next = Math.max(1, sequence);
    const heartbeatMs = this.options.heartbeatMs ?? 1000;
    if (!this.watchdog) {
      this.watchdog = setInterval(() => {
        if (!this.stopped && this.options.nats.isConnected && Date.now() - this.lastActivity > 3 * heartbeatMs) void this.reopen('no message or heartbeat');
      }, heartbeatMs);
      this.watchdog.unref();
    }
    await this.reopen(undefined, true);
  }

  stop(): void {
    this.stopped = true;
    this.generation++;
    clearInterval(this.watchdog);
    this.watchdog = undefined;
    this.subscription?.unsubscribe();
    this.subscription = undefined;
    for (const waiter of [...this.waiters]) waiter.resolve(false);
  }

  /** Coalesced: one consumer creation at a time, and one more if asked meanwhile. */
  private reopen(why: string | undefined, throwOnFailure = false): Promise<void> {
    if (this.opening) {
      this.reopenWanted = true;
      return this.opening;
    }
    const run = async (): Promise<void> => {
      do {
        this.reopenWanted = false;
        if (this.stopped) return;
        await this.open(why);
      } while (this.reopenWanted);
    };
    this.opening = run().finally(() => (this.opening = undefined));
    return throwOnFailure ? this.opening : this.opening.catch(() => undefined);
  }

  private async open(why: string | undefined): Promise<void> {
    const { nats, stream } = this.options;
    const generation = ++this.generation;
    this.subscription?.unsubscribe();
    this.subscription = undefined;
    // The watchdog retries a failed attempt after three heartbeats.
    this.lastActivity = Date.now();
    try {
      const jsm = await nats.jsm();
      const state = (await jsm.streams.info(stream)).state;
      // Recreated (its sequence restarted below ours) or trimmed past us: what we had not read is gone.
      if (state.last_seq < this.next - 1 || state.first_seq > this.next) {
        const found = state.last_seq < this.next - 1 ? state.last_seq + 1 : state.first_seq;
        this.logger.warn(`stream ${stream} no longer holds sequence ${this.next} (now ${state.first_seq}..${state.last_seq})`);
        this.options.onLost(this.next, found);
        return;
      }
      const inbox = nats.newInbox();
      this.delivered = 0;
      this.subscription = nats.subscribe(inbox, (msg) => this.receive(generation, msg), { rejections: this.options.rejections, label: this.options.label ?? `stream ${stream}` });
      const heartbeatMs = this.options.heartbeatMs ?? 1000;
      await jsm.consumers.add(stream, {
        deliver_subject: inbox,
        deliver_policy: DeliverPolicy.StartSequence,
        opt_start_seq: this.next,
        ack_policy: AckPolicy.None,
        mem_storage: true,
        flow_control: true,
        idle_heartbeat: nanos(heartbeatMs),
        inactive_threshold: nanos(this.options.inactiveThresholdMs ?? 30_000),
      });
      this.restarts++;
      this.lastActivity = Date.now();
      if (why) this.logger.log(`stream ${stream}: consumer recreated at sequence ${this.next} (${why})`);
    } catch (error) {
      if (generation === this.generation) {
        this.subscription?.unsubscribe();
        this.subscription = undefined;
      }
      const suppressed = this.failureLog.take();
      if (suppressed !== undefined) this.logger.warn(`stream ${stream}: cannot create a consumer at ${this.next}: ${(error as Error).message}; retrying`);
      throw error;
    }
  }

  private receive(generation: number, raw: Msg): void {
    if (generation !== this.generation) return;
    const deliver = (msg: Msg) => this.handle(generation, msg);
    if (this.options.transport) this.options.transport(raw, deliver);
    else deliver(raw);
  }

  private handle(generation: number, msg: Msg): void {
    if (generation !== this.generation || this.stopped) return;
    this.lastActivity = Date.now();
    const status = msg.headers?.code ?? 0;
    if (!msg.data.length && status >= 100) {
      if (status === 100) {
        // Flow control asks for an answer; an idle heartbeat names the last delivery it made.
        if (msg.reply) msg.respond();
        const stalled = msg.headers?.get('Nats-Consumer-Stalled');
        if (stalled) this.options.nats.connection.publish(stalled);
        const last = Number(msg.headers?.get('Nats-Last-Consumer') || 0);
        if (!msg.reply && last !== this.delivered) void this.reopen(`missed delivery ${this.delivered + 1}..${last}`);
      } else {
        // 409 consumer deleted, 503 and the like: this consumer is done.
        void this.reopen(`status ${status}`);
      }
      return;
    }
    const position = jetStreamPosition(msg.reply);
    if (!position) return;
    if (position.delivery <= this.delivered) return; // a duplicate
    if (position.delivery !== this.delivered + 1) {
      void this.reopen(`delivery ${position.delivery} after ${this.delivered}`);
      return;
    }
    this.delivered = position.delivery;
    if (position.stream < this.next) return; // already seen
    if (position.stream > this.next) {
      // The consumer started at ours: a later first message means the stream lost the ones between.
      const expected = this.next;
      this.generation++;
      this.subscription?.unsubscribe();
      this.subscription = undefined;
      this.options.onLost(expected, position.stream);
      return;
    }
    this.next = position.stream + 1;
    try {
      this.options.onMessage(msg, position.stream);
    } finally {
      for (const waiter of this.waiters) if (this.next > waiter.sequence) waiter.resolve(true);
    }
  }
}

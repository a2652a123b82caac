import { Logger } from '@nestjs/common';
import {
  Authenticator,
  connect,
  ConnectionOptions,
  createInbox,
  credsAuthenticator,
  ErrorCode,
  headers as natsHeaders,
  JetStreamClient,
  JetStreamManager,
  Msg,
  MsgHdrs,
  NatsConnection,
  NatsError,
  nkeyAuthenticator,
  PubAck,
  RequestStrategy,
  RetentionPolicy,
  StorageType,
  Subscription,
  tokenAuthenticator,
  usernamePasswordAuthenticator,
} from 'nats';
import { NatsAuthSettings, redactUrls, redactUrlsInText } from '@switchboard/config';
import { Counter, LogThrottle, metricsRegistry } from '@switchboard/observability';
import { MessageRejected, RejectionCounter } from './untrusted-message.util';
import {
  contextOfHeaders,
  contextOfMessage,
  endSpan,
  inSpan,
  insideTrace,
  messagingAttributes,
  SpanKind,
  startMessagingSpan,
  withTraceHeaders,
} from './message-tracing.util';
import { context, ROOT_CONTEXT } from '@opentelemetry/api';

/** A flood of bad messages is one log line per subscription per interval, with the count since the last. */
export const REJECTION_LOG_INTERVAL_MS = 60_000;

/** One way to authenticate; seeds and creds are file contents, read when the app starts. */
export type NatsAuth = NatsAuthSettings;

/** Apps get these from their env class (`NatsEnv.natsConnection(name)` in util-config). */
export interface NatsClientOptions {
  /** Comma-separated. Credentials go in `auth`: nats.js ignores `user:pass@` in a URL. */
  servers: string;
  /** Connection name shown by `nats server report connections`. */
  name: string;
  /** Default `_INBOX.<name>`: the server's permissions can then allow each identity only its own replies. */
  inboxPrefix?: string;
  auth?: NatsAuth;
  /** PEM files; nats.js reads them when it connects. */
  tls?: { caFile?: string; certFile?: string; keyFile?: string };
  /** Refuse a server whose INFO says it does not require authentication (production). */
  requireAuthenticatedServer?: boolean;
  /** Delay between reconnect attempts; reconnects never stop. */
  reconnectTimeWaitMs?: number;
  /** At start-up, how long to keep retrying before giving up. */
  connectTimeoutMs?: number;
  /**
   * Core publishes (fire-and-forget) nats.js may buffer while disconnected, per outage; the rest are
   * shed and counted in `nats_publishes_shed_total{connection}`. Default {@link MAX_BUFFERED_PUBLISHES}.
   */
  maxBufferedPublishes?: number;
  /** The same bound in bytes (payload + headers). Default {@link MAX_BUFFERED_PUBLISH_BYTES}. */
  maxBufferedPublishBytes?: number;
}

/**
 * nats.js keeps what is published while disconnected in its outbound buffer, without limit, until the
 * next dial attempt (which discards it) or the reconnect (which sends it). A heartbeat is worth
 * nothing late, so an outage costs at most this much memory; the rest is dropped and counted.
 */
export const MAX_BUFFERED_PUBLISHES = 1000;
export const MAX_BUFFERED_PUBLISH_BYTES = 1024 * 1024;

/** JetStream publishes while disconnected fail at once with this; the outbox retries them. */
export class NatsNotConnectedError extends Error {
  constructor(subject: string) {
    super(`NATS not connected: ${subject} not published`);
    this.name = 'NatsNotConnectedError';
  }
}

/** `nats_publishes_shed_total{connection}`: core publishes dropped during an outage, registered once per process. */
function publishesShedCounter(): Counter<'connection'> {
  const name = 'nats_publishes_shed_total';
  return (
    (metricsRegistry.getSingleMetric(name) as Counter<'connection'> | undefined) ??
    new Counter({ name, help: 'Core NATS publishes (heartbeats, beats) dropped while disconnected, beyond what may wait for the reconnect', labelNames: ['connection'] })
  );
}

export interface StreamSpec {
  name: string;
  subjects: string[];
  /** How long events stay replayable. */
  maxAgeMs: number;
  /** Window in which a repeated `Nats-Msg-Id` is dropped. */
  duplicateWindowMs: number;
  /** Copies kept by a JetStream cluster (1–5, at most its size; default 1). */
  replicas?: number;
}

/**
 * Start-up refused on purpose (an open NATS in production), not a bug: the message is the whole
 * story, so the stack is left out and the line an operator sees says why and what to set.
 */
export class NatsStartRefusedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NatsStartRefusedError';
    this.stack = '';
  }
}

function authenticator(auth: NatsAuth): Authenticator {
  switch (auth.kind) {
    case 'userPassword':
      return usernamePasswordAuthenticator(auth.user, auth.password);
    case 'token':
      return tokenAuthenticator(auth.token);
    case 'nkeySeed':
      return nkeyAuthenticator(auth.seed);
    case 'creds':
      return credsAuthenticator(auth.creds);
  }
}

function inboxPrefixOf(options: NatsClientOptions): string {
  return options.inboxPrefix ?? `_INBOX.${options.name}`;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const NS_PER_MS = 1_000_000;

export function encodeJson(value: unknown): Uint8Array {
  return encoder.encode(JSON.stringify(value));
}

export function decodeJson(data: Uint8Array): unknown {
  return JSON.parse(decoder.decode(data));
}

/**
 * One NATS connection per process, with JetStream, behind a small class so apps and tests use the
 * same publish/subscribe/request semantics. Reconnects forever; callers see outages as failed
 * publishes/requests, never as a dead client.
 */
export class NatsClient {
  private readonly logger = new Logger(NatsClient.name);
  private jsClient?: JetStreamClient;
  private jsmClient?: JetStreamManager;

  private readonly maxBufferedPublishes: number;
  private readonly maxBufferedPublishBytes: number;
  private readonly shedCounter = publishesShedCounter();
  /** Core publishes handed to nats.js since the connection was lost; reset on reconnect. */
  private bufferedPublishes = 0;
  private bufferedPublishBytes = 0;
  private shedSinceReconnect = 0;

  private constructor(
    readonly connection: NatsConnection,
    private readonly options: NatsClientOptions,
  ) {
    this.maxBufferedPublishes = options.maxBufferedPublishes ?? MAX_BUFFERED_PUBLISHES;
    this.maxBufferedPublishBytes = options.maxBufferedPublishBytes ?? MAX_BUFFERED_PUBLISH_BYTES;
    void this.watchStatus();
  }

  /** Core publishes dropped by this client while disconnected (also in `nats_publishes_shed_total`). */
  get publishesShed(): number {
    return this.shedTotal;
  }

  private shedTotal = 0;

  static async connect(options: NatsClientOptions): Promise<NatsClient> {
    const logger = new Logger(NatsClient.name);
    const deadline = Date.now() + (options.connectTimeoutMs ?? 30_000);
    const connectionOptions: ConnectionOptions = {
      servers: options.servers.split(',').map((s) => s.trim()),
      name: options.name,
      inboxPrefix: inboxPrefixOf(options),
      authenticator: options.auth && authenticator(options.auth),
      tls: options.tls,
      maxReconnectAttempts: -1,
      // nats.js stops reconnecting after the same auth error twice; a server restarted with its
      // users being rotated would then leave a dead client in a live process.
      ignoreAuthErrorAbort: true,
      reconnectTimeWait: options.reconnectTimeWaitMs ?? 250,
      reconnectJitter: 50,
      pingInterval: 10_000,
    };
    // Callers pass servers without credentials; redacted anyway, since a log line is forever.
    const where = redactUrls(options.servers);
    for (let attempt = 1; ; attempt++) {
      let connection: NatsConnection;
      try {
        connection = await connect(connectionOptions);
      } catch (error) {
        // Wrong credentials stay wrong: say so at once instead of retrying until the deadline.
        if ((error as NatsError).code === ErrorCode.AuthorizationViolation) {
          throw new NatsStartRefusedError(`the NATS server at ${where} refused the credentials of connection '${options.name}' (authorization violation)`);
        }
        if (Date.now() > deadline) throw error;
        logger.warn(`NATS at ${where} not reachable (attempt ${attempt}): ${redactUrlsInText((error as Error).message)}; retrying`);
        await new Promise((r) => setTimeout(r, Math.min(2000, 200 * attempt)));
        continue;
      }
      if (options.requireAuthenticatedServer && !connection.info?.auth_required) {
        await connection.close();
        throw new NatsStartRefusedError(
          `refusing to start: the NATS server at ${where} does not require authentication, so anyone who reaches it can forge events and commands (NODE_ENV=production; set NATS_ALLOW_ANONYMOUS=true to allow it on purpose)`,
        );
      }
      return new NatsClient(connection, options);
    }
  }

  get isConnected(): boolean {
    return !this.connection.isClosed() && this.connection.info !== undefined && !this.reconnecting;
  }

  private reconnecting = false;
  private authRefusalLogged = false;
  private readonly reconnectListeners: (() => void)[] = [];

  /** Called after every reconnect: core subscriptions may have missed messages meanwhile. */
  onReconnect(listener: () => void): void {
    this.reconnectListeners.push(listener);
  }

  private async watchStatus(): Promise<void> {
    for await (const status of this.connection.status()) {
      if (status.type === 'disconnect' || status.type === 'reconnecting') {
        if (!this.reconnecting) this.logger.warn(`NATS connection lost (${status.type}); reconnecting`);
        this.reconnecting = true;
      } else if (status.type === 'reconnect') {
        this.reconnecting = false;
        this.authRefusalLogged = false;
        const shed = this.shedSinceReconnect ? `; ${this.shedSinceReconnect} core publishes were shed meanwhile` : '';
        this.bufferedPublishes = this.bufferedPublishBytes = this.shedSinceReconnect = 0;
        this.logger.log(`NATS reconnected to ${redactUrls(String(status.data))}${shed}`);
        for (const listener of this.reconnectListeners) listener();
      } else if (status.type === 'error' && status.data === ErrorCode.AuthorizationViolation && !this.authRefusalLogged) {
        // Once per outage: reconnects are retried every few hundred ms.
        this.authRefusalLogged = true;
        this.logger.error('NATS refuses this connection\'s credentials; retrying until it accepts them');
      }
    }
  }

  get js(): JetStreamClient {
    this.jsClient ??= this.connection.jetstream();
    return this.jsClient;
  }

  async jsm(): Promise<JetStreamManager> {
    this.jsmClient ??= await this.connection.jetstreamManager();
    return this.jsmClient;
  }

  /** Creates the stream, or updates it in place when its subjects or limits differ. Safe to run from every replica. */
  async ensureStream(spec: StreamSpec): Promise<void> {
    const jsm = await this.jsm();
    const wanted = {
      name: spec.name,
      subjects: spec.subjects,
      retention: RetentionPolicy.Limits,
      storage: StorageType.File,
      max_age: spec.maxAgeMs * NS_PER_MS,
      duplicate_window: spec.duplicateWindowMs * NS_PER_MS,
      num_replicas: spec.replicas ?? 1,
    };
    // Too many replicas for the cluster (or any on a single server) is refused by the server; say which setting.
    const refused = (error: unknown) => new Error(`stream ${spec.name} with ${wanted.num_replicas} replica(s): ${(error as Error).message}`);
    try {
      const info = await jsm.streams.info(spec.name);
      const c = info.config;
      const same =
        c.subjects.join(',') === wanted.subjects.join(',') &&
        c.max_age === wanted.max_age &&
        c.duplicate_window === wanted.duplicate_window &&
        c.num_replicas === wanted.num_replicas;
      if (!same) {
        // In place: the server copies the messages to new peers (or drops peers); never delete + recreate,
        // which would lose the history every table and the invalidator's durable consumer stand on.
        await jsm.streams
          .update(spec.name, { subjects: wanted.subjects, max_age: wanted.max_age, duplicate_window: wanted.duplicate_window, num_replicas: wanted.num_replicas })
          .catch((error: unknown) => Promise.reject(refused(error)));
        const replicas = c.num_replicas === wanted.num_replicas ? '' : `: replicas ${c.num_replicas} → ${wanted.num_replicas}`;
        this.logger.log(`stream ${spec.name} updated in place${replicas}`);
      }
    } catch (error) {
      if (!/stream not found/i.test((error as Error).message)) throw error;
      try {
        await jsm.streams.add(wanted);
        this.logger.log(`stream ${spec.name} created with ${wanted.num_replicas} replica(s)`);
      } catch (addError) {
        // Another replica created it between our info and add.
        if (!/already in use/i.test((addError as Error).message)) throw refused(addError);
      }
    }
  }

  /**
   * Publishes to JetStream and waits for the stream's ack; `msgID` makes retries idempotent. While
   * disconnected it fails at once ({@link NatsNotConnectedError}) instead of waiting in nats.js's buffer
   * for the timeout: the caller (the outbox) keeps the event and retries.
   */
  publishToStream(subject: string, payload: unknown, options: { msgID: string; headers?: Record<string, string> }): Promise<PubAck> {
    if (!this.isConnected) return Promise.reject(new NatsNotConnectedError(subject));
    const data = encodeJson(payload);
    // The producer span continues the trace stored with the message (the outbox row's traceparent,
    // taken in the request that wrote it), and its own context replaces it in the headers.
    const parent = contextOfHeaders(options.headers) ?? context.active();
    const attributes = messagingAttributes('publish', subject, { 'messaging.message.id': options.msgID, 'messaging.message.body.size': data.length });
    const { span, ctx } = startMessagingSpan(`publish ${subject}`, SpanKind.PRODUCER, attributes, parent);
    return this.js.publish(subject, data, { msgID: options.msgID, headers: toHeaders(withTraceHeaders(ctx, options.headers)), timeout: 5000 }).then(
      (ack) => {
        span.setAttribute('messaging.nats.stream_sequence', ack.seq);
        if (ack.duplicate) span.setAttribute('messaging.nats.duplicate', true);
        endSpan(span);
        return ack;
      },
      (error: unknown) => {
        endSpan(span, error);
        throw error;
      },
    );
  }

  /**
   * Core NATS publish (not stored, fire-and-forget). While disconnected, at most
   * `maxBufferedPublishes` messages / `maxBufferedPublishBytes` bytes wait in nats.js for the
   * reconnect; beyond that the message is dropped and counted. Returns false when it was dropped.
   */
  publish(subject: string, payload: unknown, hdrs?: Record<string, string>): boolean {
    const data = encodeJson(payload);
    // Only inside a trace (a REST heartbeat's republish): a beat sent by a timer is liveness, not a
    // request, and thousands of one-span traces a second would bury the ones people look for.
    if (insideTrace()) {
      const { span, ctx } = startMessagingSpan(`publish ${subject}`, SpanKind.PRODUCER, messagingAttributes('publish', subject, { 'messaging.message.body.size': data.length }));
      try {
        return this.publishData(subject, data, withTraceHeaders(ctx, hdrs));
      } finally {
        endSpan(span);
      }
    }
    return this.publishData(subject, data, hdrs);
  }

  private publishData(subject: string, data: Uint8Array, hdrs: Record<string, string> | undefined): boolean {
    const headers = toHeaders(hdrs);
    if (!this.isConnected && !this.connection.isClosed()) {
      // Headers as the wire carries them, roughly: `NATS/1.0\r\n`, `k: v\r\n` each.
      const bytes = data.length + Object.entries(hdrs ?? {}).reduce((n, [k, v]) => n + k.length + String(v).length + 4, 12);
      if (this.bufferedPublishes >= this.maxBufferedPublishes || this.bufferedPublishBytes + bytes > this.maxBufferedPublishBytes) {
        this.shedTotal++;
        this.shedSinceReconnect++;
        try {
          this.shedCounter.inc({ connection: this.options.name });
        } catch {
          // A failing counter must not turn a dropped heartbeat into an exception.
        }
        return false;
      }
      this.bufferedPublishes++;
      this.bufferedPublishBytes += bytes;
    }
    this.connection.publish(subject, data, { headers });
    return true;
  }

  /**
   * Nothing a handler throws, synchronously or as a rejected promise, reaches nats.js: an exception
   * in its callback stops it reading the connection, and the app goes deaf to every subject until a
   * reconnect. Each refusal is counted under `subject` (the pattern, so the label stays bounded) and
   * logged at most once per {@link REJECTION_LOG_INTERVAL_MS} per pattern.
   */
  subscribe(subject: string, handler: (msg: Msg) => unknown, options: { queue?: string; rejections?: RejectionCounter; label?: string } = {}): Subscription {
    // `label` stands for a subject that changes (an inbox), so the metric's label stays bounded.
    const refuse = (error: unknown, msg: Msg) => this.refused(options.label ?? subject, msg.subject, error, options.rejections);
    const pattern = options.label ?? subject;
    return this.connection.subscribe(subject, {
      queue: options.queue,
      callback: (error, msg) => {
        if (error) {
          this.logger.error(`subscription ${subject} failed: ${error.message}`);
          return;
        }
        try {
          const result = this.traced(pattern, options.queue, msg, handler);
          if (result instanceof Promise) result.catch((e: unknown) => refuse(e, msg));
        } catch (e) {
          refuse(e, msg);
        }
      },
    });
  }

  private readonly rejectionLog = new LogThrottle(REJECTION_LOG_INTERVAL_MS);

  /**
   * Runs a subscription's handler in a span when the message carries a trace context (a consumer span,
   * its child) or is a request (a server span, a new trace if the requester sent none). A message sent
   * outside any trace (a heartbeat) runs as it is, with no span.
   */
  private traced(pattern: string, queue: string | undefined, msg: Msg, handler: (msg: Msg) => unknown): unknown {
    const parent = msg.headers ? contextOfMessage(msg.headers) : undefined;
    // A JetStream delivery's reply is its ack subject ($JS.ACK…); any other reply subject is a request's.
    const request = msg.reply !== undefined && msg.reply !== '' && !msg.reply.startsWith('$JS.');
    if (!parent && !request) return handler(msg);
    const attributes = messagingAttributes('process', msg.subject, {
      'messaging.destination.template': pattern,
      'messaging.message.body.size': msg.data.length,
      ...(queue ? { 'messaging.consumer.group.name': queue } : {}),
    });
    return inSpan(`process ${pattern}`, request ? SpanKind.SERVER : SpanKind.CONSUMER, attributes, parent ?? ROOT_CONTEXT, () => handler(msg));
  }

  private refused(pattern: string, concrete: string, error: unknown, counter?: RejectionCounter): void {
    const reason = error instanceof MessageRejected ? error.reason : 'handler_error';
    try {
      counter?.inc({ subject: pattern, reason });
      const since = this.rejectionLog.take(pattern);
      if (since === undefined) return;
      const more = since ? ` (${since} more refused on ${pattern} since the last report)` : '';
      // The concrete subject and message only: a payload may be huge or hostile, and it is never logged.
      const text = `refused a message on ${escapeLogText(concrete)} (${reason}): ${describe(error)}${more}`;
      if (reason === 'handler_error') this.logger.error(text);
      else this.logger.warn(text);
    } catch {
      // A failing counter or logger must not reach nats.js either.
    }
  }

  /** A fresh subject under this connection's inbox prefix (what its NATS permissions let it subscribe to). */
  newInbox(): string {
    return createInbox(inboxPrefixOf(this.options));
  }

  /** A request/reply, in a client span whose context travels in the request's headers. */
  request<T = unknown>(subject: string, payload: unknown, timeoutMs = 5000): Promise<T> {
    const data = encodeJson(payload);
    return inSpan(`request ${subject}`, SpanKind.CLIENT, messagingAttributes('request', subject, { 'messaging.message.body.size': data.length }), context.active(), async () => {
      const reply = await this.connection.request(subject, data, { timeout: timeoutMs, headers: toHeaders(withTraceHeaders(context.active(), undefined)) });
      return decodeJson(reply.data) as T;
    });
  }

  /**
   * A request whose answer may exceed one message (NATS caps a payload at 1 MiB by default): the
   * responder sends any number of chunks and then an empty message ({@link respondInChunks}).
   */
  async requestChunks<T>(subject: string, payload: unknown, timeoutMs = 10_000): Promise<T[]> {
    const chunks: T[] = [];
    await this.forEachChunk<T>(subject, payload, (chunk) => chunks.push(chunk), timeoutMs);
    return chunks;
  }

  /** {@link requestChunks}, handing each chunk over as it arrives, so a large answer is never held whole. */
  forEachChunk<T>(subject: string, payload: unknown, onChunk: (chunk: T) => void, timeoutMs = 10_000): Promise<void> {
    const data = encodeJson(payload);
    return inSpan(`request ${subject}`, SpanKind.CLIENT, messagingAttributes('request', subject, { 'messaging.message.body.size': data.length }), context.active(), async (span) => {
      const headers = toHeaders(withTraceHeaders(context.active(), undefined));
      const replies = await this.connection.requestMany(subject, data, { strategy: RequestStrategy.SentinelMsg, maxWait: timeoutMs, headers });
      let chunks = 0;
      for await (const msg of replies) {
        if (!msg.data.length) {
          span.setAttribute('messaging.batch.message_count', chunks);
          return;
        }
        chunks++;
        onChunk(decodeJson(msg.data) as T);
      }
      throw new Error(`${subject}: the answer ended before its last chunk (timeout after ${timeoutMs} ms?)`);
    });
  }

  /** Answers {@link requestChunks}: each part as one message (kept under `maxBytes`), then the empty sentinel. */
  static respondInChunks(msg: Msg, parts: unknown[]): void {
    for (const part of parts) msg.respond(encodeJson(part));
    msg.respond(new Uint8Array(0));
  }

  async close(): Promise<void> {
    if (this.connection.isClosed()) return;
    // Draining flushes through the server: during an outage it would wait for a reconnect that may
    // never come, and keep reconnecting meanwhile (a process that never exits). Nothing can be
    // delivered then anyway, so close at once.
    if (!this.isConnected) return this.connection.close();
    await this.connection.drain().catch(() => this.connection.close());
  }
}

function describe(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return escapeLogText(text.length > 300 ? `${text.slice(0, 300)}…` : text);
}

/** Control characters from a payload must not forge log lines. */
function escapeLogText(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u001f\u007f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

function toHeaders(values?: Record<string, string>): MsgHdrs | undefined {
  if (!values) return undefined;
  const entries = Object.entries(values).filter(([, v]) => v !== undefined && v !== '');
  if (!entries.length) return undefined;
  const h = natsHeaders();
  for (const [k, v] of entries) h.set(k, v);
  return h;
}

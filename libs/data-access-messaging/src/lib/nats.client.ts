import { Logger } from '@nestjs/common';
import {
  Authenticator,
  connect,
  ConnectionOptions,
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
import { LogThrottle } from '@switchboard/observability';
import { MessageRejected, RejectionCounter } from './untrusted-message.util';

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
}

export interface StreamSpec {
  name: string;
  subjects: string[];
  /** How long events stay replayable. */
  maxAgeMs: number;
  /** Window in which a repeated `Nats-Msg-Id` is dropped. */
  duplicateWindowMs: number;
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

  private constructor(readonly connection: NatsConnection) {
    void this.watchStatus();
  }

  static async connect(options: NatsClientOptions): Promise<NatsClient> {
    const logger = new Logger(NatsClient.name);
    const deadline = Date.now() + (options.connectTimeoutMs ?? 30_000);
    const connectionOptions: ConnectionOptions = {
      servers: options.servers.split(',').map((s) => s.trim()),
      name: options.name,
      inboxPrefix: options.inboxPrefix ?? `_INBOX.${options.name}`,
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
      return new NatsClient(connection);
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
        this.logger.log(`NATS reconnected to ${redactUrls(String(status.data))}`);
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
    };
    try {
      const info = await jsm.streams.info(spec.name);
      const c = info.config;
      const same =
        c.subjects.join(',') === wanted.subjects.join(',') &&
        c.max_age === wanted.max_age &&
        c.duplicate_window === wanted.duplicate_window;
      if (!same) {
        await jsm.streams.update(spec.name, {
          subjects: wanted.subjects,
          max_age: wanted.max_age,
          duplicate_window: wanted.duplicate_window,
        });
        this.logger.log(`stream ${spec.name} updated`);
      }
    } catch (error) {
      if (!/stream not found/i.test((error as Error).message)) throw error;
      try {
        await jsm.streams.add(wanted);
        this.logger.log(`stream ${spec.name} created`);
      } catch (addError) {
        // Another replica created it between our info and add.
        if (!/already in use/i.test((addError as Error).message)) throw addError;
      }
    }
  }

  /** Publishes to JetStream and waits for the stream's ack; `msgID` makes retries idempotent. */
  publishToStream(subject: string, payload: unknown, options: { msgID: string; headers?: Record<string, string> }): Promise<PubAck> {
    return this.js.publish(subject, encodeJson(payload), {
      msgID: options.msgID,
      headers: toHeaders(options.headers),
      timeout: 5000,
    });
  }

  /** Core NATS publish (not stored). */
  publish(subject: string, payload: unknown, hdrs?: Record<string, string>): void {
    this.connection.publish(subject, encodeJson(payload), { headers: toHeaders(hdrs) });
  }

  /**
   * Nothing a handler throws, synchronously or as a rejected promise, reaches nats.js: an exception
   * in its callback stops it reading the connection, and the app goes deaf to every subject until a
   * reconnect. Each refusal is counted under `subject` (the pattern, so the label stays bounded) and
   * logged at most once per {@link REJECTION_LOG_INTERVAL_MS} per pattern.
   */
  subscribe(subject: string, handler: (msg: Msg) => unknown, options: { queue?: string; rejections?: RejectionCounter } = {}): Subscription {
    const refuse = (error: unknown, msg: Msg) => this.refused(subject, msg.subject, error, options.rejections);
    return this.connection.subscribe(subject, {
      queue: options.queue,
      callback: (error, msg) => {
        if (error) {
          this.logger.error(`subscription ${subject} failed: ${error.message}`);
          return;
        }
        try {
          const result = handler(msg);
          if (result instanceof Promise) result.catch((e: unknown) => refuse(e, msg));
        } catch (e) {
          refuse(e, msg);
        }
      },
    });
  }

  private readonly rejectionLog = new LogThrottle(REJECTION_LOG_INTERVAL_MS);

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

  async request<T = unknown>(subject: string, payload: unknown, timeoutMs = 5000): Promise<T> {
    const reply = await this.connection.request(subject, encodeJson(payload), { timeout: timeoutMs });
    return decodeJson(reply.data) as T;
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
  async forEachChunk<T>(subject: string, payload: unknown, onChunk: (chunk: T) => void, timeoutMs = 10_000): Promise<void> {
    const replies = await this.connection.requestMany(subject, encodeJson(payload), { strategy: RequestStrategy.SentinelMsg, maxWait: timeoutMs });
    for await (const msg of replies) {
      if (!msg.data.length) return;
      onChunk(decodeJson(msg.data) as T);
    }
    throw new Error(`${subject}: the answer ended before its last chunk (timeout after ${timeoutMs} ms?)`);
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

import { Logger } from '@nestjs/common';
import { hostname } from 'node:os';
import { redactUrls } from '@switchboard/config';
import { parseWith, RegisterServiceDto, SubjectSpace } from '@switchboard/contracts';
import { connectNats, resolveConnection, SwitchboardConnectionOptions, SwitchboardLogger } from '../options';
import { LoadMeter, ServiceLoad } from './load-meter';
import { loadMiddleware, LoadMiddleware } from './middleware';
import { RegistrationError } from './registration-error';
import { backoffMs, parseRetryAfter } from '../backoff';

const REGISTRY = '/api/v2/services/registry';
/** registry-api's and health-prober's default heartbeat TTL (HEARTBEAT_TTL_MS). */
export const DEFAULT_HEARTBEAT_TTL_MS = 30_000;
export const DEFAULT_VERIFY_INTERVAL_MS = 30_000;
export const DEFAULT_DRAIN_DEADLINE_MS = 30_000;
export const DEFAULT_DRAIN_PROPAGATION_MS = 1000;
const HTTP_TIMEOUT_MS = 5000;
const NATS_RETRY_MS = 30_000;
const LOG_EVERY_MS = 60_000;

/** The prober's per-instance check settings (registry-api's `healthCheck`); each is optional. */
export interface HealthCheckOptions {
  /** false: no active checks, heartbeat TTL only. */
  enabled?: boolean;
  intervalMs?: number;
  timeoutMs?: number;
  unhealthyThreshold?: number;
  healthyThreshold?: number;
  degradedLatencyMs?: number;
  /** Silence after the last heartbeat before unhealthy; default 30 000 (the prober's HEARTBEAT_TTL_MS). */
  heartbeatTtlMs?: number;
}

/** Backoff of the registration while registry-api is unreachable or answers 5xx/429. */
export interface RetryOptions {
  /** First delay, ms (default 250); doubled after each failure. */
  initialDelayMs?: number;
  /** Ceiling of the delay, ms (default 10 000). Each delay is drawn in [½, 1] × its value (jitter). */
  maxDelayMs?: number;
}

/** @internal A NATS connection the host app already has (health-prober's own, with its permissions). */
export interface HeartbeatPublisher {
  readonly isConnected: boolean;
  publish(subject: string, payload: unknown): boolean;
}

/**
 * What `register()` needs. Only `serviceName` is required; the rest comes from the registry guide's
 * environment variables, and explicit options win.
 */
export interface RegisterOptions extends SwitchboardConnectionOptions {
  serviceName: string;
  /** The port the service listens on. `PORT`; required one way or the other. */
  internalPort?: number;
  /** Default `<serviceName>-<hostname>-<port>`: stable across restarts, so a restart replaces its registration. */
  serviceId?: string;
  /** Address the router and prober reach the service at. `VM_IP`, default `127.0.0.1`. */
  vmIp?: string;
  /** `EXTERNAL_DOMAIN`, default the `vmIp`. */
  externalDomain?: string;
  /** `SERVICE_REGION`, default `local`. */
  region?: string;
  /** `SERVICE_VERSION`, default `0.0.0`. */
  version?: string;
  /** `DEPLOYMENT_ID`, default `sdk`. */
  deploymentId?: string;
  /** Models this instance serves (OpenAI `model` names). */
  models?: string[];
  capabilities?: string[];
  namespace?: string;
  /** Path the prober checks, default `/health`; the middleware does not count requests to it. */
  healthCheckEndpoint?: string;
  healthCheck?: HealthCheckOptions;
  metadata?: Record<string, unknown>;
  /** Default a third of `healthCheck.heartbeatTtlMs` (30 s), so 10 s: two beats may be lost before the TTL. */
  heartbeatIntervalMs?: number;
  /**
   * How often a REST heartbeat checks the registry still knows the instance (NATS heartbeats get no
   * answer); on 404 it registers again. Default 30 000.
   */
  verifyIntervalMs?: number;
  /** `nats` (default; REST while NATS is unreachable) or `rest` only. */
  heartbeatTransport?: 'nats' | 'rest';
  /**
   * true (default): `register()` resolves once registry-api accepted the registration (retrying meanwhile).
   * false: it resolves at once; `ready` settles when registered (rejects on a configuration error).
   */
  waitForRegistration?: boolean;
  retry?: RetryOptions;
  /** Share a meter (e.g. created before the port was known); default a new one ignoring the health check path. */
  loadMeter?: LoadMeter;
  /** @internal */
  nats?: HeartbeatPublisher;
  /** @internal Environment to read defaults from (tests). */
  env?: NodeJS.ProcessEnv;
}

/** The registration body sent to `POST /api/v2/services/registry/register`. */
export interface RegistrationBody {
  serviceName: string;
  serviceId: string;
  vmIp: string;
  internalPort: number;
  externalDomain: string;
  version: string;
  deploymentId: string;
  environment: string;
  region: string;
  models?: string[];
  capabilities?: string[];
  namespace?: string;
  healthCheckEndpoint: string;
  healthCheck?: HealthCheckOptions;
  metadata?: Record<string, unknown>;
}

export interface DrainOptions {
  /** Give in-flight requests until this long after the call, ms (default 30 000); then deregister anyway. */
  deadlineMs?: number;
  /** Wait at least this long after `draining` is set, for routers to apply it (default 1000, capped by the deadline). */
  propagationMs?: number;
}

export interface DrainResult {
  /** Requests still in flight when the instance was deregistered (0 unless the deadline ran out). */
  inflightLeft: number;
  tookMs: number;
  /** False when registry-api could not be told (unreachable): the instance then expires by its heartbeat TTL. */
  deregistered: boolean;
}

export interface SignalOptions extends DrainOptions {
  /** Called with the exit code after the drain (0, with its result) or on a second signal (1). Default `process.exit`. */
  exit?: (code: number, result?: DrainResult) => void;
  signals?: NodeJS.Signals[];
}

/** A registered instance: keeps it alive in the registry and leaves cleanly. */
export interface ServiceRegistration {
  readonly serviceId: string;
  readonly serviceName: string;
  readonly environment: string;
  /** What was sent to registry-api. */
  readonly body: Readonly<RegistrationBody>;
  /** Counts the requests the middleware sees; its figures go out with every heartbeat. */
  readonly load: LoadMeter;
  readonly middleware: LoadMiddleware;
  /** Settles when first registered (already settled when `register()` waited). */
  readonly ready: Promise<void>;
  readonly registered: boolean;
  /** How the last heartbeat went out. */
  readonly heartbeatTransport: 'nats' | 'rest' | 'none';
  /** Times the instance was found missing (404) and registered again. */
  readonly reRegistrations: number;
  /** Sends one heartbeat now over REST (verifying the registration; registers again on 404). */
  verify(): Promise<void>;
  /** Admin state `draining` → wait for in-flight requests (or the deadline) → deregister → stop. */
  drain(options?: DrainOptions): Promise<DrainResult>;
  /** On SIGTERM/SIGINT: drain, then exit 0; a second signal exits 1 at once. Returns a function removing the handlers. */
  handleSignals(options?: SignalOptions): () => void;
  /** Stops heartbeats and closes the SDK's NATS connection; deregisters first unless `deregister: false`. */
  close(options?: { deregister?: boolean }): Promise<void>;
}

/** @internal A stable, subject-safe identity: `<serviceName>-<hostname>-<port>` (health-prober's scheme). */
export function defaultServiceId(serviceName: string, host: string, port: number): string {
  const suffix = `-${port}`;
  const base = `${serviceName}-${host.replace(/[^A-Za-z0-9_-]/g, '-').slice(0, 80)}`;
  return `${base.slice(0, 128 - suffix.length)}${suffix}`;
}

function read(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const value = env[name]?.trim();
  return value ? value : undefined;
}

/** @internal Builds and validates the registration body (registry-api's own rules); throws RegistrationError naming the fields. */
export function registrationBody(options: RegisterOptions, env: NodeJS.ProcessEnv = process.env): RegistrationBody {
  if (!options || typeof options.serviceName !== 'string') throw new RegistrationError('invalid registration: serviceName is required', undefined, [{ field: 'serviceName', reason: 'serviceName is required' }]);
  const connection = resolveConnection(options, env);
  const rawPort = options.internalPort ?? (read(env, 'PORT') === undefined ? undefined : Number(read(env, 'PORT')));
  if (rawPort === undefined) throw new RegistrationError('invalid registration: internalPort is required (option or PORT)', undefined, [{ field: 'internalPort', reason: 'internalPort is required' }]);
  const vmIp = options.vmIp ?? read(env, 'VM_IP') ?? '127.0.0.1';
  const body: RegistrationBody = {
    serviceName: options.serviceName,
    serviceId: options.serviceId ?? defaultServiceId(options.serviceName, hostname(), rawPort),
    vmIp,
    internalPort: rawPort,
    externalDomain: options.externalDomain ?? read(env, 'EXTERNAL_DOMAIN') ?? vmIp,
    version: options.version ?? read(env, 'SERVICE_VERSION') ?? '0.0.0',
    deploymentId: options.deploymentId ?? read(env, 'DEPLOYMENT_ID') ?? 'sdk',
    environment: connection.environment,
    region: options.region ?? read(env, 'SERVICE_REGION') ?? 'local',
    healthCheckEndpoint: options.healthCheckEndpoint ?? '/health',
  };
  if (options.models !== undefined) body.models = options.models;
  if (options.capabilities !== undefined) body.capabilities = options.capabilities;
  if (options.namespace !== undefined) body.namespace = options.namespace;
  if (options.healthCheck !== undefined) body.healthCheck = options.healthCheck;
  if (options.metadata !== undefined) body.metadata = options.metadata;
  const parsed = parseWith(RegisterServiceDto, body);
  if (!parsed.ok) throw new RegistrationError(`invalid registration: ${parsed.errors.map((e) => `${e.field}: ${e.reason}`).join('; ')}`, undefined, parsed.errors);
  return body;
}

function positive(name: string, value: number | undefined, fallback: number, min: number): number {
  if (value === undefined) return fallback;
  if (!Number.isFinite(value) || value < min) throw new RegistrationError(`invalid registration: ${name} must be a number ≥ ${min}`, undefined, [{ field: name, reason: `${name} must be a number ≥ ${min}` }]);
  return value;
}

/** @internal Delay before retry `attempt` (1-based): exponential, capped, drawn in [½, 1] of it. */
export function backoffDelay(attempt: number, retry: RetryOptions = {}, random: () => number = Math.random): number {
  return backoffMs(attempt, { baseMs: retry.initialDelayMs ?? 250, maxMs: retry.maxDelayMs ?? 10_000 }, random);
}

/**
 * Registers this instance with registry-api and keeps it there: heartbeats with the load the middleware
 * measured (NATS, REST while NATS is unreachable), a periodic REST check that registers again when the
 * registry lost it, and `drain()`/`handleSignals()` to leave without failing a request.
 */
export async function register(options: RegisterOptions): Promise<ServiceRegistration> {
  const registration = new Registration(options);
  if (options.waitForRegistration === false) {
    registration.ready.catch(() => undefined); // reported through the logger and `ready`
    return registration;
  }
  try {
    await registration.ready;
  } catch (error) {
    await registration.close({ deregister: false });
    throw error;
  }
  return registration;
}

type State = 'running' | 'draining' | 'closed';

class Registration implements ServiceRegistration {
  readonly serviceId: string;
  readonly serviceName: string;
  readonly environment: string;
  readonly body: Readonly<RegistrationBody>;
  readonly load: LoadMeter;
  readonly middleware: LoadMiddleware;
  readonly ready: Promise<void>;
  registered = false;
  heartbeatTransport: 'nats' | 'rest' | 'none' = 'none';
  reRegistrations = 0;

  private readonly logger: SwitchboardLogger;
  private readonly registryUrl: string;
  private readonly token?: string;
  private readonly subject: string;
  private readonly heartbeatIntervalMs: number;
  private readonly verifyIntervalMs: number;
  private readonly retry: RetryOptions;
  private readonly stop = new AbortController();
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly lastLogged = new Map<string, number>();
  private state: State = 'running';
  private nats?: HeartbeatPublisher;
  private ownedNats?: { close(): Promise<void> };
  private registering?: Promise<void>;
  private beating = false;
  private draining?: Promise<DrainResult>;

  constructor(options: RegisterOptions) {
    const env = options.env ?? process.env;
    this.body = registrationBody(options, env);
    const connection = resolveConnection(options, env);
    this.serviceId = this.body.serviceId;
    this.serviceName = this.body.serviceName;
    this.environment = this.body.environment;
    this.registryUrl = connection.registryUrl;
    this.token = connection.registryToken;
    this.logger = options.logger ?? new Logger('switchboard');
    this.retry = options.retry ?? {};
    const ttl = options.healthCheck?.heartbeatTtlMs ?? DEFAULT_HEARTBEAT_TTL_MS;
    this.heartbeatIntervalMs = positive('heartbeatIntervalMs', options.heartbeatIntervalMs, Math.max(100, Math.floor(ttl / 3)), 10);
    this.verifyIntervalMs = positive('verifyIntervalMs', options.verifyIntervalMs, DEFAULT_VERIFY_INTERVAL_MS, 10);
    this.subject = new SubjectSpace(connection.subjectPrefix ?? '').heartbeat(this.environment, this.serviceName, this.serviceId);
    if (this.environment === 'production' && options.vmIp === undefined && read(env, 'VM_IP') === undefined) {
      this.logger.warn(`${this.serviceId} registers at 127.0.0.1 in production: set VM_IP (or vmIp) to the address routers reach it at`);
    }
    this.load = options.loadMeter ?? new LoadMeter({ ignorePaths: [this.body.healthCheckEndpoint] });
    this.middleware = loadMiddleware(this.load);

    if (options.nats) this.nats = options.nats;
    else if (options.heartbeatTransport !== 'rest') void this.connectNats(connection.natsUrl, options.connectionName ?? this.serviceId, env);

    this.ready = this.registerWithRetry(false);
    this.every(this.heartbeatIntervalMs, () => this.heartbeat());
    this.every(this.verifyIntervalMs, () => this.verifyIfNats());
    // The first beat at once: membership (health-prober) and load are visible without waiting an interval.
    if (this.nats) void this.heartbeat();
  }

  async verify(): Promise<void> {
    await this.restHeartbeat();
  }

  drain(options: DrainOptions = {}): Promise<DrainResult> {
    this.draining ??= this.runDrain(options);
    return this.draining;
  }

  handleSignals(options: SignalOptions = {}): () => void {
    const exit = options.exit ?? ((code: number) => process.exit(code));
    const signals = options.signals ?? ['SIGTERM', 'SIGINT'];
    let received = false;
    const handler = (signal: NodeJS.Signals) => {
      if (received) {
        this.logger.warn(`${signal} again while draining ${this.serviceId}: exiting now`);
        exit(1);
        return;
      }
      received = true;
      this.logger.log(`${signal}: draining ${this.serviceId}`);
      this.drain(options).then(
        (result) => exit(0, result),
        (error: Error) => {
          this.logger.error(`drain of ${this.serviceId} failed: ${error.message}`);
          exit(1);
        },
      );
    };
    for (const signal of signals) process.on(signal, handler);
    return () => {
      for (const signal of signals) process.off(signal, handler);
    };
  }

  async close(options: { deregister?: boolean } = {}): Promise<void> {
    await this.shutdown(options.deregister ?? true);
  }

  /** Stops timers and retries, deregisters when asked (and registered), closes the SDK's NATS. True when not left in the registry. */
  private async shutdown(deregister: boolean): Promise<boolean> {
    if (this.state === 'closed') return !this.registered;
    this.state = 'closed';
    this.shutdownTimers();
    const gone = deregister && this.registered ? await this.deregister() : !this.registered;
    await this.closeNats();
    return gone;
  }

  // --- registration ---------------------------------------------------------------------------

  /** Registers, retrying while registry-api is unreachable or answers 5xx/429; a 4xx is thrown. */
  private registerWithRetry(again: boolean): Promise<void> {
    this.registering ??= (async () => {
      try {
        for (let attempt = 1; ; attempt++) {
          if (this.state !== 'running') throw new RegistrationError(`registration of ${this.serviceId} stopped (${this.state})`);
          let status: number;
          let answer: Record<string, unknown> | undefined;
          let retryAfterMs = 0;
          try {
            const res = await this.call('POST', `${REGISTRY}/register`, this.body);
            status = res.status;
            answer = res.body;
            retryAfterMs = res.retryAfterMs;
          } catch (error) {
            this.throttled('register', `registry-api at ${this.registryUrl} not reachable to register ${this.serviceId} (attempt ${attempt}): ${(error as Error).message}; retrying`);
            await this.sleep(backoffDelay(attempt, this.retry));
            continue;
          }
          if (status >= 200 && status < 300) {
            this.registered = true;
            this.lastLogged.delete('register');
            this.logger.log(again ? `${this.serviceId} registered again` : `registered ${this.serviceId} in ${this.environment}`);
            return;
          }
          const message = typeof answer?.['message'] === 'string' ? (answer['message'] as string) : `HTTP ${status}`;
          if (status >= 400 && status < 500 && status !== 429) {
            const errors = Array.isArray(answer?.['errors']) ? (answer['errors'] as { field: string; reason: string }[]) : [];
            const error = new RegistrationError(`registry-api refused the registration of ${this.serviceId} (HTTP ${status}): ${message}`, status, errors);
            this.logger.error(error.message);
            throw error;
          }
          this.throttled('register', `registry-api answered HTTP ${status} to the registration of ${this.serviceId} (attempt ${attempt}): ${message}; retrying`);
          await this.sleep(Math.max(retryAfterMs, backoffDelay(attempt, this.retry)));
        }
      } finally {
        this.registering = undefined;
      }
    })();
    return this.registering;
  }

  /** The registry answered 404 for this instance: restored from a backup, or pruned. Register again. */
  private lost(): void {
    if (this.state !== 'running' || this.registering) return;
    this.registered = false;
    this.reRegistrations++;
    this.logger.warn(`registry-api no longer knows ${this.serviceId} (404): registering again`);
    this.registerWithRetry(true).catch((error: Error) => this.throttled('reregister', `could not register ${this.serviceId} again: ${error.message}`));
  }

  /** True when the registry no longer has the instance. */
  private async deregister(): Promise<boolean> {
    try {
      const res = await this.call('DELETE', `${REGISTRY}/services/${encodeURIComponent(this.serviceId)}`, undefined, false);
      if (res.status === 404 || (res.status >= 200 && res.status < 300)) {
        this.registered = false;
        this.logger.log(`deregistered ${this.serviceId}`);
        return true;
      }
      this.logger.warn(`could not deregister ${this.serviceId}: HTTP ${res.status}`);
    } catch (error) {
      this.logger.warn(`could not deregister ${this.serviceId}: ${(error as Error).message}`);
    }
    return false;
  }

  // --- heartbeats -----------------------------------------------------------------------------

  private payload(): { metadata: ServiceLoad } {
    return { metadata: this.load.snapshot() };
  }

  private async heartbeat(): Promise<void> {
    if (this.state === 'closed') return;
    if (this.nats?.isConnected) {
      try {
        if (this.nats.publish(this.subject, this.payload())) {
          this.heartbeatTransport = 'nats';
          return;
        }
      } catch (error) {
        this.throttled('nats-publish', `NATS heartbeat of ${this.serviceId} failed: ${(error as Error).message}; using REST`);
      }
    }
    // No NATS (not configured, not reachable, or refused): REST keeps the instance alive meanwhile.
    await this.restHeartbeat();
  }

  /** NATS heartbeats get no answer: a REST one now and then tells whether the registry still has us. */
  private async verifyIfNats(): Promise<void> {
    if (this.heartbeatTransport === 'nats') await this.restHeartbeat();
  }

  private async restHeartbeat(): Promise<void> {
    if (this.state === 'closed' || this.beating || !this.registered) return;
    this.beating = true;
    try {
      const res = await this.call('POST', `${REGISTRY}/${encodeURIComponent(this.serviceId)}/heartbeat`, this.payload());
      if (res.status === 404) this.lost();
      else if (res.status >= 200 && res.status < 300) this.heartbeatTransport = this.nats?.isConnected ? this.heartbeatTransport : 'rest';
      else this.throttled('rest-heartbeat', `REST heartbeat of ${this.serviceId}: HTTP ${res.status}`);
    } catch (error) {
      this.throttled('rest-heartbeat', `REST heartbeat of ${this.serviceId} failed: ${(error as Error).message}`);
    } finally {
      this.beating = false;
    }
  }

  private async connectNats(natsUrl: string, name: string, env: NodeJS.ProcessEnv): Promise<void> {
    while (this.state !== 'closed') {
      try {
        const client = await connectNats(natsUrl, name, env);
        if ((this.state as State) === 'closed') {
          await client.close();
          return;
        }
        this.nats = client;
        this.ownedNats = client;
        void this.heartbeat();
        return;
      } catch (error) {
        const refused = (error as Error).name === 'NatsStartRefusedError' || /credentials|NATS settings/.test((error as Error).message);
        this.logger.warn(`NATS at ${redactUrls(natsUrl)} not available for heartbeats of ${this.serviceId} (${(error as Error).message}); heartbeats go over REST${refused ? '' : `, NATS retried in ${NATS_RETRY_MS / 1000} s`}`);
        if (refused) return;
        await this.sleep(NATS_RETRY_MS).catch(() => undefined);
      }
    }
  }

  private async closeNats(): Promise<void> {
    const owned = this.ownedNats;
    this.ownedNats = undefined;
    this.nats = undefined;
    await owned?.close().catch(() => undefined);
  }

  // --- drain ----------------------------------------------------------------------------------

  private async runDrain(options: DrainOptions): Promise<DrainResult> {
    const started = Date.now();
    const deadlineMs = positive('deadlineMs', options.deadlineMs, DEFAULT_DRAIN_DEADLINE_MS, 0);
    const deadline = started + deadlineMs;
    const propagationMs = Math.min(deadlineMs, positive('propagationMs', options.propagationMs, DEFAULT_DRAIN_PROPAGATION_MS, 0));
    if (this.state === 'closed') return { inflightLeft: this.load.inflight, tookMs: 0, deregistered: !this.registered };
    this.state = 'draining'; // a 404 no longer registers again; a registration under way gives up
    if (this.registered) {
      // Routers stop sending new requests when they see `draining` (not routable); heartbeats go on meanwhile.
      await this.setDraining(deadline);
      await delay(Math.max(0, Math.min(propagationMs, deadline - Date.now())));
    }
    while (this.load.inflight > 0 && Date.now() < deadline) await delay(20);
    const inflightLeft = this.load.inflight;
    if (inflightLeft) this.logger.warn(`drain deadline of ${this.serviceId} reached with ${inflightLeft} request(s) in flight`);
    const deregistered = await this.shutdown(true);
    return { inflightLeft, tookMs: Date.now() - started, deregistered };
  }

  private async setDraining(deadline: number): Promise<void> {
    for (let attempt = 1; Date.now() < deadline; attempt++) {
      try {
        const res = await this.call('PUT', `${REGISTRY}/${encodeURIComponent(this.serviceId)}/status`, { adminState: 'draining' });
        if (res.status >= 200 && res.status < 300) return;
        if (res.status === 404) return; // already gone: nothing routes to it
        if (res.status < 500 && res.status !== 429) {
          this.logger.warn(`could not set ${this.serviceId} draining: HTTP ${res.status}`);
          return;
        }
      } catch (error) {
        this.throttled('drain', `could not reach registry-api to set ${this.serviceId} draining: ${(error as Error).message}`);
      }
      await delay(Math.min(backoffDelay(attempt, this.retry), Math.max(0, deadline - Date.now())));
    }
  }

  // --- plumbing -------------------------------------------------------------------------------

  /** One registry-api call; `abortable` ones (retries, heartbeats) end when the registration is closed. */
  private async call(method: string, path: string, body?: unknown, abortable = true): Promise<{ status: number; body?: Record<string, unknown>; retryAfterMs: number }> {
    const headers: Record<string, string> = {};
    // No content-type without a body: Fastify refuses an empty JSON body (400), and DELETE has none.
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (this.token) headers['x-registry-token'] = this.token;
    const res = await fetch(`${this.registryUrl}${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: abortable ? AbortSignal.any([AbortSignal.timeout(HTTP_TIMEOUT_MS), this.stop.signal]) : AbortSignal.timeout(HTTP_TIMEOUT_MS),
    });
    const text = await res.text().catch(() => '');
    let parsed: Record<string, unknown> | undefined;
    try {
      const value: unknown = JSON.parse(text);
      if (typeof value === 'object' && value !== null && !Array.isArray(value)) parsed = value as Record<string, unknown>;
    } catch {
      parsed = undefined; // not JSON (a proxy's error page): the status says enough
    }
    // Seconds or an HTTP date, as the client reads it.
    const retryAfter = parseRetryAfter(res.headers.get('retry-after') ?? undefined) ?? 0;
    return { status: res.status, body: parsed, retryAfterMs: Math.min(60_000, retryAfter) };
  }

  private every(ms: number, task: () => Promise<void>): void {
    const timer = setInterval(() => void task().catch((error: Error) => this.throttled('timer', `${this.serviceId}: ${error.message}`)), ms);
    timer.unref();
    this.timers.push(timer);
  }

  private shutdownTimers(): void {
    for (const timer of this.timers) clearInterval(timer);
    this.timers.length = 0;
    this.stop.abort();
  }

  /** Sleeps `ms`; rejects when the registration is closed meanwhile. */
  private sleep(ms: number): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.stop.signal.aborted) return reject(new RegistrationError(`registration of ${this.serviceId} closed`));
      const timer = setTimeout(() => {
        this.stop.signal.removeEventListener('abort', onAbort);
        resolve();
      }, ms);
      const onAbort = () => {
        clearTimeout(timer);
        reject(new RegistrationError(`registration of ${this.serviceId} closed`));
      };
      this.stop.signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** A warning at most once a minute per kind: retries and failed beats repeat every few seconds. */
  private throttled(kind: string, message: string): void {
    const now = Date.now();
    const last = this.lastLogged.get(kind);
    if (last !== undefined && now - last < LOG_EVERY_MS) return;
    this.lastLogged.set(kind, now);
    this.logger.warn(message);
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

import { BeforeApplicationShutdown, Inject, Injectable, Logger, OnApplicationShutdown } from '@nestjs/common';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { SubjectSpace } from '@switchboard/contracts';
import { NatsClient } from '@switchboard/messaging';
import { Counter, Gauge, metricsRegistry } from '@switchboard/observability';
import { RoutedInstance, RoutingTable, TableChange } from '@switchboard/routing-table';
import type { RegistryApiConfig } from '../config/registry-api.config';
import { REGISTRY_API_CONFIG, SUBJECTS } from '../registry-api.tokens';
import { RegistryErrorCode, RegistryException } from '../registry/registry.exception';
import { ClientQueue } from './client-queue.util';
import { consoleLoad, lastSeenOf, sseMessage, toConsoleInstance } from './console-instance.util';

function once<T>(name: string, create: () => T): T {
  return (metricsRegistry.getSingleMetric(name) as T | undefined) ?? create();
}

/** Load figures change many times a second at scale: sent at most this often, only the changed instances. */
const LOAD_INTERVAL_MS = 1000;
/** Proxies close idle connections; a comment line keeps the stream alive. */
const KEEPALIVE_MS = 15_000;
/** Without viewers the table (a full copy of the registry) is dropped after this long. */
const IDLE_STOP_MS = 60_000;

interface Client {
  queue: ClientQueue;
  /** Until the table is loaded nothing but the snapshot may go first. */
  ready: boolean;
}

/**
 * The console's live feed (`GET /console/api/events`): a RoutingTable of its own (the list-then-watch
 * of the REGISTRY stream every consumer uses, with display details), started when the first viewer
 * connects. Each client gets the whole fleet first, then one message per registry event, load
 * updates batched once a second, and whatever else is broadcast (the metrics summary). Bounded: at
 * most CONSOLE_MAX_CLIENTS clients, each with a queue of CONSOLE_CLIENT_QUEUE_MAX messages; a client
 * that falls behind gets `resync` and is disconnected (it reconnects and starts from a snapshot).
 */
@Injectable()
export class ConsoleFeedService implements BeforeApplicationShutdown, OnApplicationShutdown {
  private readonly logger = new Logger('ConsoleFeed');
  private readonly clients = new Set<Client>();
  private table?: RoutingTable;
  private loaded?: Promise<void>;
  private unsubscribe: (() => void)[] = [];
  private readonly changedLoad = new Map<string, RoutedInstance>();
  private loadTimer?: NodeJS.Timeout;
  private keepaliveTimer?: NodeJS.Timeout;
  private idleTimer?: NodeJS.Timeout;
  private readonly viewers = once('console_clients', () => new Gauge({ name: 'console_clients', help: 'Console live-feed clients connected' }));
  private readonly dropped = once('console_clients_dropped_total', () =>
    new Counter({ name: 'console_clients_dropped_total', help: 'Console live-feed clients disconnected by the server, by reason (behind: queue full; busy: too many clients)', labelNames: ['reason'] }),
  );

  constructor(
    @Inject(NatsClient) private readonly nats: NatsClient,
    @Inject(SUBJECTS) private readonly subjects: SubjectSpace,
    @Inject(REGISTRY_API_CONFIG) private readonly config: RegistryApiConfig,
  ) {}

  get clientCount(): number {
    return this.clients.size;
  }

  /** The table, when a viewer made it load; undefined otherwise. */
  get routingTable(): RoutingTable | undefined {
    return this.table;
  }

  /** Refuses (503) before anything is written when the feed is full. */
  admit(): void {
    if (this.clients.size >= this.config.CONSOLE_MAX_CLIENTS) {
      this.dropped.inc({ reason: 'busy' });
      throw new RegistryException(RegistryErrorCode.ConsoleBusy, `the console feed has its maximum of ${this.config.CONSOLE_MAX_CLIENTS} clients (CONSOLE_MAX_CLIENTS); try again later`);
    }
  }

  /** Streams to `response` until the client goes away (or falls behind). */
  attach(request: IncomingMessage, response: ServerResponse): void {
    response.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      'x-accel-buffering': 'no',
      connection: 'keep-alive',
    });
    const client: Client = {
      ready: false,
      queue: new ClientQueue(response, this.config.CONSOLE_CLIENT_QUEUE_MAX, sseMessage('resync', { reason: 'client fell behind the feed; reconnect for a fresh snapshot' }), () => {
        this.dropped.inc({ reason: 'behind' });
        this.detach(client);
      }),
    };
    this.clients.add(client);
    this.viewers.set(this.clients.size);
    clearTimeout(this.idleTimer);
    // The response's 'close' is the connection's end (the request's fires once its body is read).
    response.once('close', () => this.detach(client));
    response.once('error', () => this.detach(client));
    request.socket.setNoDelay(true);
    client.queue.push(`retry: 2000\n\n`);
    this.ensureTimers();
    void this.load().then(
      () => {
        if (client.queue.isClosed || !this.table) return;
        client.queue.push(this.snapshotMessage(this.table));
        client.ready = true;
      },
      (error: Error) => this.logger.warn(`console table not loaded: ${error.message}`),
    );
  }

  /** Sends one message to every client that has its snapshot. */
  broadcast(event: string, data: unknown): void {
    if (!this.clients.size) return;
    const message = sseMessage(event, data);
    for (const client of this.clients) if (client.ready) client.queue.push(message);
  }

  /**
   * Before the HTTP server closes: it would wait for these never-ending responses until the shutdown
   * grace ran out. Ended, the pages reconnect (to another replica, or to this one once it is back).
   */
  beforeApplicationShutdown(): void {
    for (const client of [...this.clients]) {
      client.queue.end();
      this.detach(client);
    }
  }

  onApplicationShutdown(): void {
    this.beforeApplicationShutdown();
    this.stopTable();
  }

  private detach(client: Client): void {
    if (!this.clients.delete(client)) return;
    client.queue.close();
    this.viewers.set(this.clients.size);
    if (this.clients.size) return;
    clearInterval(this.loadTimer);
    clearInterval(this.keepaliveTimer);
    this.loadTimer = this.keepaliveTimer = undefined;
    this.idleTimer = setTimeout(() => this.stopTable(), IDLE_STOP_MS);
    this.idleTimer.unref();
  }

  private ensureTimers(): void {
    this.loadTimer ??= setInterval(() => this.flushLoad(), LOAD_INTERVAL_MS);
    this.keepaliveTimer ??= setInterval(() => {
      for (const client of this.clients) client.queue.push(': keepalive\n\n');
    }, KEEPALIVE_MS);
  }

  /**
   * Not awaited at boot: the table's snapshot is answered by this very process over NATS, which it
   * serves only once the app is up. Resolves when the table is usable.
   */
  private load(): Promise<void> {
    if (this.loaded) return this.loaded;
    const table = new RoutingTable({ nats: this.nats, subjects: this.subjects, keepDetails: true, logger: this.logger });
    this.table = table;
    this.unsubscribe = [table.onChange((change) => this.onChange(table, change)), table.watchHeartbeats((instance) => this.changedLoad.set(instance.serviceId, instance))];
    this.loaded = table.start();
    return this.loaded;
  }

  private stopTable(): void {
    clearTimeout(this.idleTimer);
    for (const off of this.unsubscribe) off();
    this.unsubscribe = [];
    this.table?.stop();
    this.table = undefined;
    this.loaded = undefined;
    this.changedLoad.clear();
  }

  private onChange(table: RoutingTable, change?: TableChange): void {
    if (!change) {
      // A snapshot replaced the table (first load, or a resync): everyone starts again from it.
      const message = this.snapshotMessage(table);
      for (const client of this.clients) if (client.ready) client.queue.push(message);
      return;
    }
    this.changedLoad.delete(change.serviceId);
    // Named after the registry event that was applied.
    if (change.instance) {
      this.broadcast(change.kind ?? (change.previous ? 'statusChanged' : 'registered'), { revision: table.revision, instance: toConsoleInstance(change.instance) });
    } else {
      this.broadcast('deregistered', { revision: table.revision, id: change.serviceId });
    }
  }

  private flushLoad(): void {
    if (!this.changedLoad.size) return;
    const updates = [...this.changedLoad.values()].map((instance) => ({ id: instance.serviceId, lastSeen: lastSeenOf(instance), load: consoleLoad(instance) }));
    this.changedLoad.clear();
    this.broadcast('load', { updates });
  }

  private snapshotMessage(table: RoutingTable): string {
    const instances = [];
    for (const instance of table.all()) instances.push(toConsoleInstance(instance));
    return sseMessage('snapshot', { revision: table.revision, instances });
  }
}

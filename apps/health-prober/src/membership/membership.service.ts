import { Inject, Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { isIP } from 'node:net';
import { hostname } from 'node:os';
import { register, ServiceRegistration } from '@switchboard/client';
import { SubjectSpace } from '@switchboard/contracts';
import { NatsClient } from '@switchboard/messaging';
import { RoutingTable } from '@switchboard/routing-table';
import type { HealthProberConfig } from '../config/health-prober.config';
import { HEALTH_PROBER_CONFIG } from '../health-prober.tokens';
import { ProberMetricsService } from '../observability/prober-metrics.service';

export const PROBER_SERVICE_NAME = 'health-prober';
const DEAD_AFTER_INTERVALS = 3;

/** FNV-1a: a cheap, stable 32-bit hash, enough to spread instances over replicas. */
function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

/**
 * A replica's identity: one per host and port, so a restarted prober re-registers (replaces) its
 * predecessor's registration instead of leaving one that stays healthy because the new process
 * answers its health check on the same port.
 */
export function proberId(host: string, port: number): string {
  return `${PROBER_SERVICE_NAME}-${sanitizedHost(host).slice(0, 80)}-${port}`;
}

function sanitizedHost(host: string): string {
  return host.replace(/[^A-Za-z0-9_-]/g, '-');
}

/** As registry-api builds an instance's internal URL (IPv6 in brackets). */
function internalUrlOf(host: string, port: number): string {
  return `http://${isIP(host) === 6 ? `[${host}]` : host}:${port}`;
}

/**
 * Prober replicas find each other through the registry itself: each registers as an instance of
 * `health-prober` through @switchboard/client (which heartbeats on the prober's own NATS connection,
 * over REST while NATS is down, and registers again when the registry lost it). The live members are those whose heartbeat the table saw
 * within three intervals; each instance belongs to exactly one of them by rendezvous hashing, so
 * when a replica dies its share (and only its share) moves to the others.
 */
@Injectable()
export class MembershipService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(MembershipService.name);
  readonly selfId: string;
  private heartbeat?: NodeJS.Timeout;
  private refresh?: NodeJS.Timeout;
  private current: string[];
  private registration?: ServiceRegistration;
  /** Changes whenever the member set does; cached ownership is valid for one version. */
  version = 0;

  constructor(
    private readonly table: RoutingTable,
    private readonly nats: NatsClient,
    private readonly subjects: SubjectSpace,
    private readonly metrics: ProberMetricsService,
    @Inject(HEALTH_PROBER_CONFIG) private readonly config: HealthProberConfig,
  ) {
    this.selfId = proberId(hostname(), this.config.PORT || 3014);
    this.current = [this.selfId];
  }

  async onApplicationBootstrap(): Promise<void> {
    this.refresh = setInterval(() => this.recompute(), Math.max(100, this.config.MEMBER_HEARTBEAT_INTERVAL_MS / 2));
    this.metrics.members.set(this.current.length);
    if (this.config.SELF_REGISTER) {
      try {
        // Not waited for: the prober checks instances while registry-api is still unreachable.
        this.registration = await register(this.registrationOptions());
        this.registration.ready.then(
          () => this.retirePredecessors(this.config.ADVERTISE_HOST, this.config.PORT || 3014).catch((error: Error) => this.logger.warn(`could not remove predecessors: ${error.message}`)),
          (error: Error) => this.logger.warn(`self-registration refused: ${error.message}`),
        );
        return;
      } catch (error) {
        this.logger.warn(`self-registration refused: ${(error as Error).message}`);
      }
    }
    // Not in the registry (SELF_REGISTER=false, or refused), yet a member for the replicas that share this NATS: heartbeats alone.
    const beat = () => this.nats.publish(this.subjects.heartbeat(this.config.PROBER_ENVIRONMENT, PROBER_SERVICE_NAME, this.selfId), {});
    this.heartbeat = setInterval(beat, this.config.MEMBER_HEARTBEAT_INTERVAL_MS);
    beat();
  }

  async onApplicationShutdown(): Promise<void> {
    clearInterval(this.heartbeat);
    clearInterval(this.refresh);
    // Leave at once (deregister), so the others take over our share without waiting for our silence.
    await this.registration?.close({ deregister: true });
  }

  private registrationOptions(): Parameters<typeof register>[0] {
    const host = this.config.ADVERTISE_HOST;
    return {
      serviceName: PROBER_SERVICE_NAME,
      serviceId: this.selfId,
      vmIp: host,
      internalPort: this.config.PORT || 3014,
      externalDomain: host,
      version: '0.1.0',
      deploymentId: PROBER_SERVICE_NAME,
      environment: this.config.PROBER_ENVIRONMENT,
      region: 'local',
      capabilities: ['health-prober'],
      healthCheck: { heartbeatTtlMs: Math.max(1000, DEAD_AFTER_INTERVALS * this.config.MEMBER_HEARTBEAT_INTERVAL_MS) },
      registryUrl: this.config.REGISTRY_URL,
      registryToken: this.config.REGISTRY_TOKEN,
      subjectPrefix: this.subjects.prefix,
      // Membership: a replica silent for three intervals is dead.
      heartbeatIntervalMs: this.config.MEMBER_HEARTBEAT_INTERVAL_MS,
      waitForRegistration: false,
      // The prober's own connection: its NATS identity may publish heartbeats of health-prober only.
      nats: this.nats,
      logger: this.logger,
      env: {},
    };
  }

  members(): readonly string[] {
    return this.current;
  }

  /** True when this replica is the one that checks `serviceId`. */
  owns(serviceId: string): boolean {
    if (this.current.length === 1) return true;
    let best = '';
    let bestScore = -1;
    for (const member of this.current) {
      const score = fnv1a(`${member}\u0000${serviceId}`);
      if (score > bestScore || (score === bestScore && member < best)) {
        best = member;
        bestScore = score;
      }
    }
    return best === this.selfId;
  }

  recompute(now = Date.now()): void {
    const window = DEAD_AFTER_INTERVALS * this.config.MEMBER_HEARTBEAT_INTERVAL_MS;
    const live = new Set([this.selfId]);
    // The table's (environment, service) index: the members only, not every instance.
    for (const instance of this.table.instancesOfService(this.config.PROBER_ENVIRONMENT, PROBER_SERVICE_NAME)) {
      if (instance.adminState !== 'enabled') continue;
      if (instance.lastHeartbeatAt !== undefined && now - instance.lastHeartbeatAt <= window) live.add(instance.serviceId);
    }
    const next = [...live].sort();
    if (next.join(',') !== this.current.join(',')) {
      this.logger.log(`prober members: ${next.join(', ')}`);
      this.current = next;
      this.version++;
      this.metrics.members.set(next.length);
    }
  }

  /**
   * Earlier versions gave each start a random id (`health-prober-<host>-<6 hex>`); those left behind on
   * this host and port stay healthy because this replica answers their checks. Remove them once.
   */
  private async retirePredecessors(host: string, port: number): Promise<void> {
    const legacy = new RegExp(`^${PROBER_SERVICE_NAME}-${sanitizedHost(hostname()).slice(0, 40)}-[0-9a-f]{6}$`);
    const url = internalUrlOf(host, port);
    for (const instance of this.table.all()) {
      if (instance.serviceName !== PROBER_SERVICE_NAME || !legacy.test(instance.serviceId) || instance.internalUrl !== url) continue;
      const res = await this.registry('DELETE', `/api/v2/services/registry/services/${instance.serviceId}`).catch((error: Error) => error);
      if (res instanceof Error || !res.ok) this.logger.warn(`could not remove predecessor ${instance.serviceId}: ${res instanceof Error ? res.message : `HTTP ${res.status}`}`);
      else this.logger.log(`removed predecessor registration ${instance.serviceId} (same host and port)`);
    }
  }

  private registry(method: string, path: string): Promise<Response> {
    // No content-type without a body: Fastify refuses an empty JSON body (400).
    return fetch(`${this.config.REGISTRY_URL}${path}`, { method, headers: { 'x-registry-token': this.config.REGISTRY_TOKEN }, signal: AbortSignal.timeout(5000) });
  }
}

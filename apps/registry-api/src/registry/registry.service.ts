import { Inject, Injectable } from '@nestjs/common';
import { createHash } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import {
  AdminState,
  buildRegistryEvent,
  defaultModelEndpoint,
  DEFAULT_MODEL_NAMESPACE,
  ENDPOINT_PATTERN,
  HealthStatus,
  HeartbeatDto,
  ListModelsQueryDto,
  ListServicesQueryDto,
  ModelDeploymentView,
  PreviousPlacement,
  RegisterModelDto,
  RegisterServiceDto,
  RegistryEventDataByKind,
  RegistryEventKind,
  RegistrySnapshot,
  ServiceInstanceView,
  SubjectSpace,
  UpdateStatusDto,
} from '@switchboard/contracts';
import { NatsClient } from '@switchboard/messaging';
import { ClaimedOutboxRow, RegistryRepository, RegistryTransaction, ServiceInstanceEntity } from '@switchboard/persistence';
import type { RegistryApiConfig } from '../config/registry-api.config';
import { HeartbeatBatcherService } from '../heartbeat/heartbeat-batcher.service';
import { RegistryMetricsService } from '../observability/registry-metrics.service';
import { OutboxRelayService } from '../outbox/outbox-relay.service';
import { REGISTRY_API_CONFIG, SUBJECTS } from '../registry-api.tokens';
import { ClockService } from './clock.service';
import { toInstanceView, toModelViews } from './instance-view.util';
import { RegistryErrorCode, RegistryException } from './registry.exception';

/** What a registration sets; the rest (admin state, load, timestamps, revision) the registry owns. */
type RegistrationFields = Pick<
  ServiceInstanceEntity,
  | 'serviceId' | 'serviceName' | 'environment' | 'region' | 'vmIp' | 'internalPort' | 'externalDomain' | 'version'
  | 'deploymentId' | 'namespace' | 'kind' | 'capabilities' | 'models' | 'healthCheckEndpoint' | 'healthCheck' | 'metadata'
  | 'requiredEnvironmentVars' | 'status'
>;

const REGISTRATION_KEYS: (keyof RegistrationFields)[] = [
  'serviceName', 'environment', 'region', 'vmIp', 'internalPort', 'externalDomain', 'version', 'deploymentId',
  'namespace', 'kind', 'capabilities', 'models', 'healthCheckEndpoint', 'healthCheck', 'metadata', 'requiredEnvironmentVars', 'status',
];

export interface RegistrationResult {
  instance: ServiceInstanceView;
  created: boolean;
  changed: boolean;
}

/** The registry's use cases. Every change: one transaction, the next revision, one outbox event. */
@Injectable()
export class RegistryService {
  constructor(
    private readonly repository: RegistryRepository,
    private readonly relay: OutboxRelayService,
    private readonly heartbeats: HeartbeatBatcherService,
    private readonly nats: NatsClient,
    private readonly metrics: RegistryMetricsService,
    private readonly clock: ClockService,
    @Inject(SUBJECTS) private readonly subjects: SubjectSpace,
    @Inject(REGISTRY_API_CONFIG) private readonly config: RegistryApiConfig,
  ) {}

  register(dto: RegisterServiceDto, traceparent: string): Promise<RegistrationResult> {
    return this.upsert(
      {
        serviceId: dto.serviceId,
        serviceName: dto.serviceName,
        environment: dto.environment,
        region: dto.region,
        vmIp: dto.vmIp,
        internalPort: dto.internalPort,
        externalDomain: dto.externalDomain,
        version: dto.version,
        deploymentId: dto.deploymentId,
        namespace: dto.namespace ?? null,
        kind: 'service',
        capabilities: dto.capabilities ?? [],
        models: dto.models ?? [],
        healthCheckEndpoint: dto.healthCheckEndpoint ?? '/health',
        healthCheck: plain(dto.healthCheck ?? {}),
        metadata: plain(dto.metadata ?? {}),
        requiredEnvironmentVars: plain(dto.requiredEnvironmentVars ?? []),
        status: dto.status ?? 'healthy',
      },
      traceparent,
    );
  }

  async registerModel(dto: RegisterModelDto, traceparent: string): Promise<{ dryRun: boolean; created: boolean; changed: boolean; models: ModelDeploymentView[] }> {
    const fields = this.modelFields(dto);
    if (dto.dryRun) {
      const existing = await this.repository.findById(fields.serviceId);
      const preview = this.materialise(fields, existing, this.clock.now());
      return { dryRun: true, created: !existing, changed: !existing || !sameRegistration(existing, preview), models: toModelViews(preview) };
    }
    const result = await this.upsert(fields, traceparent);
    const entity = await this.repository.findById(fields.serviceId);
    return { dryRun: false, created: result.created, changed: result.changed, models: entity ? toModelViews(entity).filter((m) => m.modelName === dto.modelName) : [] };
  }

  async updateStatus(serviceId: string, dto: UpdateStatusDto, traceparent: string): Promise<{ instance: ServiceInstanceView; changed: boolean }> {
    if (!dto.status && !dto.adminState) {
      throw RegistryException.validation([{ field: 'status', reason: 'give status and/or adminState' }]);
    }
    const now = this.clock.now();
    const events: ClaimedOutboxRow[] = [];
    const result = await this.repository.transaction(async (tx) => {
      const existing = await tx.lockInstance(serviceId);
      if (!existing) throw notFound(serviceId);
      const changed = await this.changeState(tx, events, existing, { status: dto.status, adminState: dto.adminState }, dto.reason, now, traceparent);
      return { instance: toInstanceView(existing), changed };
    });
    this.afterCommit('statusChanged', events);
    return result;
  }

  async setModelAdminState(modelName: string, environment: string, adminState: AdminState, traceparent: string): Promise<ModelDeploymentView[]> {
    const now = this.clock.now();
    const events: ClaimedOutboxRow[] = [];
    const views = await this.repository.transaction(async (tx) => {
      const matching = await tx.lockMatching({ model: modelName, environment });
      if (!matching.length) throw modelNotFound(modelName, environment);
      for (const instance of matching) {
        await this.changeState(tx, events, instance, { adminState }, `model ${modelName} ${adminState} by operator`, now, traceparent);
      }
      return matching.flatMap(toModelViews).filter((m) => m.modelName === modelName);
    });
    this.afterCommit('statusChanged', events);
    return views;
  }

  async deregister(serviceId: string, traceparent: string): Promise<{ serviceId: string; revision: number }> {
    const now = this.clock.now();
    const events: ClaimedOutboxRow[] = [];
    const revision = await this.repository.transaction(async (tx) => {
      const existing = await tx.lockInstance(serviceId);
      if (!existing) throw notFound(serviceId);
      return this.remove(tx, events, existing, now, traceparent);
    });
    this.afterCommit('deregistered', events);
    return { serviceId, revision };
  }

  async deregisterModel(modelName: string, environment: string, traceparent: string): Promise<{ serviceId: string; revision: number }[]> {
    const now = this.clock.now();
    const events: ClaimedOutboxRow[] = [];
    const removed = await this.repository.transaction(async (tx) => {
      const matching = await tx.lockMatching({ model: modelName, environment });
      if (!matching.length) throw modelNotFound(modelName, environment);
      const out: { serviceId: string; revision: number }[] = [];
      for (const instance of matching) out.push({ serviceId: instance.serviceId, revision: await this.remove(tx, events, instance, now, traceparent) });
      return out;
    });
    this.afterCommit('deregistered', events);
    return removed;
  }

  /**
   * REST heartbeat: 404 for an unknown instance; otherwise queued for the batched write and
   * published on the same NATS subject services use, for the prober and the router.
   */
  async heartbeat(serviceId: string, dto: HeartbeatDto, traceparent: string): Promise<{ serviceId: string; lastSeen: string }> {
    const existing = await this.repository.findById(serviceId);
    if (!existing) throw notFound(serviceId);
    const now = this.clock.now();
    this.metrics.heartbeatsReceived.inc({ transport: 'rest' });
    this.heartbeats.enqueue(serviceId, dto.metadata, now);
    try {
      this.nats.publish(this.subjects.heartbeat(existing.environment, existing.serviceName, serviceId), plain(dto), { traceparent });
    } catch {
      // NATS is down: the heartbeat is still persisted; listeners catch up on the next one.
    }
    return { serviceId, lastSeen: now.toISOString() };
  }

  async get(serviceId: string): Promise<ServiceInstanceView> {
    const existing = await this.repository.findById(serviceId);
    if (!existing) throw notFound(serviceId);
    return toInstanceView(existing);
  }

  async list(query: ListServicesQueryDto): Promise<ServiceInstanceView[]> {
    return (await this.repository.list(query)).map(toInstanceView);
  }

  async listModels(query: ListModelsQueryDto): Promise<ModelDeploymentView[]> {
    const instances = await this.repository.list({ environment: query.environment, model: query.model, servesModels: true });
    return instances
      .flatMap(toModelViews)
      .filter((m) => (!query.model || m.modelName === query.model) && (!query.status || m.status === query.status))
      .sort((a, b) => a.modelName.localeCompare(b.modelName) || a.environment.localeCompare(b.environment) || a.serviceId.localeCompare(b.serviceId));
  }

  async snapshot(): Promise<RegistrySnapshot> {
    const { revision, instances } = await this.repository.snapshot();
    return { revision, instances: instances.map(toInstanceView) };
  }

  highestRevision(): Promise<number> {
    return this.repository.highestRevision();
  }

  /** Asks the health-prober to run a round now; its summary is the answer. */
  async runHealthChecks(): Promise<unknown> {
    try {
      return await this.nats.request(this.subjects.proberRunChecksCommand, {}, this.config.PROBER_REQUEST_TIMEOUT_MS);
    } catch (error) {
      const reason = (error as { code?: string }).code === '503' ? 'no health-prober is running' : (error as Error).message;
      throw new RegistryException(RegistryErrorCode.ProberUnavailable, `health checks could not run: ${reason}`);
    }
  }

  // --- internals ---------------------------------------------------------------------------

  private async upsert(fields: RegistrationFields, traceparent: string): Promise<RegistrationResult> {
    const now = this.clock.now();
    const events: ClaimedOutboxRow[] = [];
    const result = await this.repository.transaction(async (tx) => {
      const existing = await tx.lockInstance(fields.serviceId);
      const next = this.materialise(fields, existing, now);
      if (existing && sameRegistration(existing, next)) return { entity: existing, created: false, changed: false };
      next.revision = await tx.nextRevision();
      await tx.saveInstance(next, !existing);
      const previous = existing && movedFrom(existing, next);
      await this.emit(tx, events, 'registered', next, { revision: next.revision, instance: toInstanceView(next), ...(previous ? { previous } : {}) }, now, traceparent);
      return { entity: next, created: !existing, changed: true };
    });
    this.afterCommit('registered', events);
    if (!result.changed) this.heartbeats.enqueue(fields.serviceId, undefined, now); // an unchanged re-registration is still a sign of life
    return { instance: toInstanceView(result.entity), created: result.created, changed: result.changed };
  }

  /**
   * A re-registration keeps what operators and the registry own: admin state (a restarting
   * service does not re-enable itself), load figures and the first registration time.
   */
  private materialise(fields: RegistrationFields, existing: ServiceInstanceEntity | null, now: Date): ServiceInstanceEntity {
    return Object.assign(new ServiceInstanceEntity(), fields, {
      adminState: existing?.adminState ?? 'enabled',
      load: existing?.load ?? {},
      lastSeen: now,
      registeredAt: existing?.registeredAt ?? now,
      updatedAt: now,
      revision: existing?.revision ?? 0,
    });
  }

  private async changeState(
    tx: RegistryTransaction,
    events: ClaimedOutboxRow[],
    instance: ServiceInstanceEntity,
    change: { status?: HealthStatus; adminState?: AdminState },
    reason: string | undefined,
    now: Date,
    traceparent: string,
  ): Promise<boolean> {
    const from = { status: instance.status, adminState: instance.adminState };
    const to = { status: change.status ?? from.status, adminState: change.adminState ?? from.adminState };
    if (from.status === to.status && from.adminState === to.adminState) return false;
    instance.status = to.status;
    instance.adminState = to.adminState;
    instance.updatedAt = now;
    instance.revision = await tx.nextRevision();
    await tx.saveState(instance);
    await this.emit(tx, events, 'statusChanged', instance, { revision: instance.revision, instance: toInstanceView(instance), from, to, reason }, now, traceparent);
    return true;
  }

  private async remove(tx: RegistryTransaction, events: ClaimedOutboxRow[], instance: ServiceInstanceEntity, now: Date, traceparent: string): Promise<number> {
    const revision = await tx.nextRevision();
    await tx.deleteInstance(instance, revision, now);
    const data = { revision, serviceId: instance.serviceId, serviceName: instance.serviceName, environment: instance.environment, models: instance.models };
    await this.emit(tx, events, 'deregistered', instance, data, now, traceparent);
    return revision;
  }

  /** Writes the event to the outbox in this transaction and remembers it for the publish after commit. */
  private async emit<K extends RegistryEventKind>(
    tx: RegistryTransaction,
    events: ClaimedOutboxRow[],
    kind: K,
    instance: ServiceInstanceEntity,
    data: RegistryEventDataByKind[K],
    now: Date,
    traceparent: string,
  ): Promise<void> {
    const record = {
      revision: data.revision,
      subject: this.subjects.registryEvent(kind, instance.environment, instance.serviceName),
      payload: buildRegistryEvent(kind, instance.serviceId, data, now),
      headers: { traceparent, 'Content-Type': 'application/cloudevents+json' },
    };
    events.push({ ...record, id: await tx.appendOutbox(record), createdAt: now });
  }

  private afterCommit(kind: RegistryEventKind, events: ClaimedOutboxRow[]): void {
    if (!events.length) return;
    this.metrics.writes.inc({ kind }, events.length);
    this.relay.publishCommitted(events);
  }

  private modelFields(dto: RegisterModelDto): RegistrationFields {
    const namespace = dto.namespace ?? DEFAULT_MODEL_NAMESPACE;
    const endpoint = dto.endpoint ?? defaultModelEndpoint(dto.modelName, dto.environment, namespace);
    const match = ENDPOINT_PATTERN.exec(endpoint);
    const port = Number(match?.[3]);
    if (!match || port < 1 || port > 65535) throw RegistryException.validation([{ field: 'endpoint', reason: 'endpoint port must be 1-65535' }]);
    const host = match[1].replace(/^\[|\]$/g, '');
    const serviceName = modelServiceName(dto.modelName);
    const hash = createHash('sha256').update(endpoint).digest('hex').slice(0, 8);
    return {
      serviceId: `${serviceName.slice(0, 100)}-${dto.environment.slice(0, 12)}-${hash}`,
      serviceName,
      environment: dto.environment,
      region: namespace,
      vmIp: host,
      internalPort: port,
      externalDomain: null,
      version: 'unversioned',
      deploymentId: 'model-registry',
      namespace,
      kind: 'model',
      capabilities: ['llm', 'openai-compatible'],
      models: [dto.modelName],
      healthCheckEndpoint: '/health',
      healthCheck: {},
      metadata: {},
      requiredEnvironmentVars: [],
      status: 'healthy',
    };
  }
}

/** A model name made subject-safe, to serve as the service name of its deployments. */
export function modelServiceName(modelName: string): string {
  return modelName.replace(/[^A-Za-z0-9_-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 128) || 'model';
}

function sameRegistration(a: ServiceInstanceEntity, b: ServiceInstanceEntity): boolean {
  return REGISTRATION_KEYS.every((k) => isDeepStrictEqual(a[k], b[k]));
}

/** Where a re-registration moved the instance from, if it changed what consumers index it by (the discovery cache's keys). */
function movedFrom(before: ServiceInstanceEntity, after: ServiceInstanceEntity): PreviousPlacement | undefined {
  const moved = before.serviceName !== after.serviceName || before.environment !== after.environment || !isDeepStrictEqual(before.models, after.models);
  return moved ? { serviceName: before.serviceName, environment: before.environment, models: before.models } : undefined;
}

/** Strips class prototypes (DTO instances) so values compare and serialise as plain JSON. */
function plain<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}

function notFound(serviceId: string): RegistryException {
  return new RegistryException(RegistryErrorCode.InstanceNotFound, `service instance not found in registry: ${serviceId}`);
}

function modelNotFound(modelName: string, environment: string): RegistryException {
  return new RegistryException(RegistryErrorCode.ModelNotFound, `model not found in registry: ${modelName} (environment: ${environment})`);
}

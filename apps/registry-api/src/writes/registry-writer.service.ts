import { Inject, Injectable } from '@nestjs/common';
import { DatabaseError } from 'pg';
import {
  AdminState,
  buildRegistryEvent,
  HealthStatus,
  RegistryEventDataByKind,
  RegistryEventKind,
  SubjectSpace,
} from '@switchboard/contracts';
import { ClaimedOutboxRow, InstanceFilter, OutboxRecord, RegistryRepository, RegistryTransaction, RegistryWrites, ServiceInstanceEntity } from '@switchboard/persistence';
import type { RegistryApiConfig } from '../config/registry-api.config';
import { isDatabaseUnavailable } from '../database/database-unavailable.util';
import { HeartbeatBatcherService } from '../heartbeat/heartbeat-batcher.service';
import { RegistryMetricsService } from '../observability/registry-metrics.service';
import { OutboxRelayService } from '../outbox/outbox-relay.service';
import { REGISTRY_API_CONFIG, SUBJECTS } from '../registry-api.tokens';
import { ClockService } from '../registry/clock.service';
import { toInstanceView } from '../registry/instance-view.util';
import { RegistryException } from '../registry/registry.exception';
import { GroupCommit, Outcome } from './group-commit.util';
import { movedFrom, RegistrationFields, sameRegistration } from './registration.util';

export interface StateChange {
  status?: HealthStatus;
  adminState?: AdminState;
}

export interface UpsertResult {
  entity: ServiceInstanceEntity;
  created: boolean;
  changed: boolean;
}

/** One change of one instance, as the group commit queues it. */
type WriteRequest =
  | { op: 'register'; serviceId: string; fields: RegistrationFields; traceparent: string }
  | { op: 'state'; serviceId: string; change: StateChange; reason: string | undefined; traceparent: string }
  | { op: 'remove'; serviceId: string; traceparent: string };

/** What a change did: the instance as stored (for a removal: as it was, with the deletion's revision). */
type ChangeResult = UpsertResult;

/** A change decided against the locked row, before it has a revision. */
interface Plan {
  outcome: Outcome<ChangeResult>;
  write?: { kind: 'save'; isNew: boolean; previous?: ReturnType<typeof movedFrom> } | { kind: 'state'; from: StateOf; to: StateOf; reason?: string } | { kind: 'delete' };
  traceparent: string;
}

type StateOf = { status: HealthStatus; adminState: AdminState };

const KIND_OF_WRITE = { save: 'registered', state: 'statusChanged', delete: 'deregistered' } as const;

/**
 * The only code that changes the registry. Changes of single instances (register, status,
 * deregister) go through a group commit: those that arrive while earlier batches are committing
 * are written together in one transaction (lock every instance in key order and read them, one
 * `nextval` per change, one statement for rows, tombstones and outbox rows), each answered with its
 * own result. A change that fails on its own (unknown instance) fails alone; if the database refuses
 * the batch, each change is retried in a transaction of its own. Bulk changes (every instance of a
 * model) are one such transaction. The events are handed to the relay right after commit. No-op
 * changes take no revision and publish nothing.
 */
@Injectable()
export class RegistryWriter {
  private readonly commits: GroupCommit<WriteRequest, ChangeResult>;

  constructor(
    private readonly repository: RegistryRepository,
    private readonly relay: OutboxRelayService,
    private readonly heartbeats: HeartbeatBatcherService,
    private readonly metrics: RegistryMetricsService,
    private readonly clock: ClockService,
    @Inject(SUBJECTS) private readonly subjects: SubjectSpace,
    @Inject(REGISTRY_API_CONFIG) config: RegistryApiConfig,
  ) {
    this.commits = new GroupCommit((r) => r.serviceId, (batch) => this.commitBatch(batch), {
      maxBatch: config.WRITE_BATCH_MAX,
      maxInFlight: config.WRITE_BATCHES_IN_FLIGHT,
    });
  }

  async upsert(fields: RegistrationFields, traceparent: string): Promise<UpsertResult> {
    const result = await this.commits.submit({ op: 'register', serviceId: fields.serviceId, fields, traceparent });
    if (!result.changed) this.heartbeats.enqueue(fields.serviceId, undefined, this.clock.now()); // an unchanged re-registration is still a sign of life
    return result;
  }

  /** What {@link upsert} would store, without writing (a dry run). */
  async preview(fields: RegistrationFields): Promise<{ created: boolean; changed: boolean; entity: ServiceInstanceEntity }> {
    const existing = await this.repository.findById(fields.serviceId);
    const entity = materialise(fields, existing, this.clock.now());
    return { created: !existing, changed: !existing || !sameRegistration(existing, entity), entity };
  }

  /** Sets health and/or admin state of one instance; 404 when it is unknown. */
  async changeState(serviceId: string, change: StateChange, reason: string | undefined, traceparent: string): Promise<{ entity: ServiceInstanceEntity; changed: boolean }> {
    return this.commits.submit({ op: 'state', serviceId, change, reason, traceparent });
  }

  /** Deregisters one instance, leaving a tombstone; 404 when it is unknown. */
  async remove(serviceId: string, traceparent: string): Promise<number> {
    return (await this.commits.submit({ op: 'remove', serviceId, traceparent })).entity.revision;
  }

  /** Applies one change to every matching instance, one event each; returns them (none: nothing happened). */
  async changeStateOfMatching(filter: InstanceFilter, change: StateChange, reason: string, traceparent: string): Promise<ServiceInstanceEntity[]> {
    const outcomes = await this.inTransaction(async (tx) => matching(await tx.lockMatching(filter), (i) => ({ op: 'state', serviceId: i.serviceId, change, reason, traceparent })));
    return outcomes.flatMap((o) => (o.ok ? [o.value.entity] : []));
  }

  /** Deregisters every matching instance (none: nothing happened). */
  async removeMatching(filter: InstanceFilter, traceparent: string): Promise<{ serviceId: string; revision: number }[]> {
    const outcomes = await this.inTransaction(async (tx) => matching(await tx.lockMatching(filter), (i) => ({ op: 'remove', serviceId: i.serviceId, traceparent })));
    return outcomes.flatMap((o) => (o.ok ? [{ serviceId: o.value.entity.serviceId, revision: o.value.entity.revision }] : []));
  }

  /**
   * One batch of the group commit. If the database refuses it (a statement error, not a lost
   * connection, whose commit may or may not have happened), each change is retried alone, so one
   * bad change cannot fail the others.
   */
  private async commitBatch(requests: WriteRequest[]): Promise<Outcome<ChangeResult>[]> {
    this.metrics.writeBatchSize.observe(requests.length);
    try {
      return await this.inTransaction(async (tx) => ({ requests, rows: await tx.lockInstances(requests.map((r) => r.serviceId)) }));
    } catch (error) {
      if (requests.length === 1 || !refusedByDatabase(error)) throw error;
      this.metrics.writeBatchFallbacks.inc();
      const outcomes: Outcome<ChangeResult>[] = [];
      for (const request of requests) {
        outcomes.push(await this.commitBatch([request]).then((o) => o[0], (e: unknown) => ({ ok: false as const, error: e })));
      }
      return outcomes;
    }
  }

  /**
   * One transaction: `lock` locks and reads the instances; each change is decided against its row,
   * every real change takes one revision (ascending in the order given), everything is written in
   * one statement; after the commit the events go to the relay.
   */
  private async inTransaction(lock: (tx: RegistryTransaction) => Promise<{ requests: WriteRequest[]; rows: Map<string, ServiceInstanceEntity> }>): Promise<Outcome<ChangeResult>[]> {
    const now = this.clock.now();
    const events: ClaimedOutboxRow[] = [];
    const kinds = new Map<RegistryEventKind, number>();
    const outcomes = await this.repository.transaction(async (tx) => {
      const { requests, rows } = await lock(tx);
      const plans = requests.map((r) => plan(r, rows.get(r.serviceId) ?? null, now));
      const writing = plans.filter((p) => p.write);
      if (!writing.length) return plans.map((p) => p.outcome);
      const revisions = await tx.takeRevisions(writing.length);
      const writes: RegistryWrites = { saves: [], states: [], deletes: [], outbox: [] };
      writing.forEach((p, k) => {
        const write = p.write as NonNullable<Plan['write']>;
        const entity = (p.outcome as { value: ChangeResult }).value.entity;
        const revision = (entity.revision = revisions[k]);
        kinds.set(KIND_OF_WRITE[write.kind], (kinds.get(KIND_OF_WRITE[write.kind]) ?? 0) + 1);
        if (write.kind === 'save') {
          writes.saves.push({ instance: entity, isNew: write.isNew });
          writes.outbox.push(this.event('registered', entity, { revision, instance: toInstanceView(entity), ...(write.previous ? { previous: write.previous } : {}) }, now, p.traceparent));
        } else if (write.kind === 'state') {
          writes.states.push(entity);
          writes.outbox.push(this.event('statusChanged', entity, { revision, instance: toInstanceView(entity), from: write.from, to: write.to, reason: write.reason }, now, p.traceparent));
        } else {
          writes.deletes.push({ instance: entity, deletedAt: now });
          const data = { revision, serviceId: entity.serviceId, serviceName: entity.serviceName, environment: entity.environment, models: entity.models };
          writes.outbox.push(this.event('deregistered', entity, data, now, p.traceparent));
        }
      });
      const ids = await tx.write(writes);
      writes.outbox.forEach((record, k) => events.push({ ...record, id: ids[k], createdAt: now }));
      return plans.map((p) => p.outcome);
    });
    if (events.length) {
      for (const [kind, n] of kinds) this.metrics.writes.inc({ kind }, n);
      this.relay.publishCommitted(events);
    }
    return outcomes;
  }

  private event<K extends RegistryEventKind>(kind: K, instance: ServiceInstanceEntity, data: RegistryEventDataByKind[K], now: Date, traceparent: string): OutboxRecord {
    return {
      revision: data.revision,
      subject: this.subjects.registryEvent(kind, instance.environment, instance.serviceName),
      payload: buildRegistryEvent(kind, instance.serviceId, data, now),
      headers: { traceparent, 'Content-Type': 'application/cloudevents+json' },
    };
  }
}

/** The locked instances of a bulk change, each with its change. */
function matching(locked: ServiceInstanceEntity[], requestOf: (instance: ServiceInstanceEntity) => WriteRequest) {
  return { requests: locked.map(requestOf), rows: new Map(locked.map((i) => [i.serviceId, i])) };
}

/** Decides one change against the instance's current row (null: unknown). Mutates nothing but new entities and the row of a state change. */
function plan(request: WriteRequest, existing: ServiceInstanceEntity | null, now: Date): Plan {
  const { traceparent } = request;
  switch (request.op) {
    case 'register': {
      const next = materialise(request.fields, existing, now);
      if (existing && sameRegistration(existing, next)) return { outcome: { ok: true, value: { entity: existing, created: false, changed: false } }, traceparent };
      const previous = existing ? movedFrom(existing, next) : undefined;
      return { outcome: { ok: true, value: { entity: next, created: !existing, changed: true } }, write: { kind: 'save', isNew: !existing, previous }, traceparent };
    }
    case 'state': {
      if (!existing) return { outcome: { ok: false, error: RegistryException.instanceNotFound(request.serviceId) }, traceparent };
      const from = { status: existing.status, adminState: existing.adminState };
      const to = { status: request.change.status ?? from.status, adminState: request.change.adminState ?? from.adminState };
      if (from.status === to.status && from.adminState === to.adminState) return { outcome: { ok: true, value: { entity: existing, created: false, changed: false } }, traceparent };
      existing.status = to.status;
      existing.adminState = to.adminState;
      existing.updatedAt = now;
      return { outcome: { ok: true, value: { entity: existing, created: false, changed: true } }, write: { kind: 'state', from, to, reason: request.reason }, traceparent };
    }
    case 'remove':
      if (!existing) return { outcome: { ok: false, error: RegistryException.instanceNotFound(request.serviceId) }, traceparent };
      return { outcome: { ok: true, value: { entity: existing, created: false, changed: true } }, write: { kind: 'delete' }, traceparent };
  }
}

/**
 * PostgreSQL refused a statement and the connection is fine: the transaction rolled back, so each
 * change may be retried alone. Not when the database is out of reach (its COMMIT may have happened,
 * and retrying each change would only fail N times), out of resources (53) or shutting down (57).
 */
function refusedByDatabase(error: unknown): boolean {
  const cause = (error as { driverError?: unknown }).driverError ?? error;
  if (!(cause instanceof DatabaseError) || !cause.code || isDatabaseUnavailable(error)) return false;
  return !/^(53|57)/.test(cause.code);
}

/**
 * A re-registration keeps what operators and the registry own: admin state (a restarting
 * service does not re-enable itself), load figures and the first registration time.
 */
function materialise(fields: RegistrationFields, existing: ServiceInstanceEntity | null, now: Date): ServiceInstanceEntity {
  return Object.assign(new ServiceInstanceEntity(), fields, {
    adminState: existing?.adminState ?? 'enabled',
    load: existing?.load ?? {},
    lastSeen: now,
    registeredAt: existing?.registeredAt ?? now,
    updatedAt: now,
    revision: existing?.revision ?? 0,
  });
}

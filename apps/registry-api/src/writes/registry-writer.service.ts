import { Inject, Injectable } from '@nestjs/common';
import {
  AdminState,
  buildRegistryEvent,
  HealthStatus,
  RegistryEventDataByKind,
  RegistryEventKind,
  SubjectSpace,
} from '@switchboard/contracts';
import { ClaimedOutboxRow, InstanceFilter, RegistryRepository, RegistryTransaction, ServiceInstanceEntity } from '@switchboard/persistence';
import { HeartbeatBatcherService } from '../heartbeat/heartbeat-batcher.service';
import { RegistryMetricsService } from '../observability/registry-metrics.service';
import { OutboxRelayService } from '../outbox/outbox-relay.service';
import { SUBJECTS } from '../registry-api.tokens';
import { ClockService } from '../registry/clock.service';
import { toInstanceView } from '../registry/instance-view.util';
import { RegistryException } from '../registry/registry.exception';
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

/**
 * The only code that changes the registry: every change is one transaction that locks the
 * instance (and reads it, one statement), takes the next revision and writes the row (one
 * statement), and appends one outbox event; the events are handed to the relay right after commit.
 * No-op changes take no revision and publish nothing.
 */
@Injectable()
export class RegistryWriter {
  constructor(
    private readonly repository: RegistryRepository,
    private readonly relay: OutboxRelayService,
    private readonly heartbeats: HeartbeatBatcherService,
    private readonly metrics: RegistryMetricsService,
    private readonly clock: ClockService,
    @Inject(SUBJECTS) private readonly subjects: SubjectSpace,
  ) {}

  async upsert(fields: RegistrationFields, traceparent: string): Promise<UpsertResult> {
    const now = this.clock.now();
    const events: ClaimedOutboxRow[] = [];
    const result = await this.repository.transaction(async (tx) => {
      const existing = await tx.lockInstance(fields.serviceId);
      const next = materialise(fields, existing, now);
      if (existing && sameRegistration(existing, next)) return { entity: existing, created: false, changed: false };
      await tx.saveInstance(next, !existing); // sets next.revision
      const previous = existing && movedFrom(existing, next);
      await this.emit(tx, events, 'registered', next, { revision: next.revision, instance: toInstanceView(next), ...(previous ? { previous } : {}) }, now, traceparent);
      return { entity: next, created: !existing, changed: true };
    });
    this.afterCommit('registered', events);
    if (!result.changed) this.heartbeats.enqueue(fields.serviceId, undefined, now); // an unchanged re-registration is still a sign of life
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
    const now = this.clock.now();
    const events: ClaimedOutboxRow[] = [];
    const result = await this.repository.transaction(async (tx) => {
      const existing = await tx.lockInstance(serviceId);
      if (!existing) throw RegistryException.instanceNotFound(serviceId);
      const changed = await this.applyState(tx, events, existing, change, reason, now, traceparent);
      return { entity: existing, changed };
    });
    this.afterCommit('statusChanged', events);
    return result;
  }

  /** Applies one change to every matching instance, one event each; returns them (none: nothing happened). */
  async changeStateOfMatching(filter: InstanceFilter, change: StateChange, reason: string, traceparent: string): Promise<ServiceInstanceEntity[]> {
    const now = this.clock.now();
    const events: ClaimedOutboxRow[] = [];
    const matching = await this.repository.transaction(async (tx) => {
      const locked = await tx.lockMatching(filter);
      for (const instance of locked) await this.applyState(tx, events, instance, change, reason, now, traceparent);
      return locked;
    });
    this.afterCommit('statusChanged', events);
    return matching;
  }

  /** Deregisters one instance, leaving a tombstone; 404 when it is unknown. */
  async remove(serviceId: string, traceparent: string): Promise<number> {
    const now = this.clock.now();
    const events: ClaimedOutboxRow[] = [];
    const revision = await this.repository.transaction(async (tx) => {
      const existing = await tx.lockInstance(serviceId);
      if (!existing) throw RegistryException.instanceNotFound(serviceId);
      return this.delete(tx, events, existing, now, traceparent);
    });
    this.afterCommit('deregistered', events);
    return revision;
  }

  /** Deregisters every matching instance (none: nothing happened). */
  async removeMatching(filter: InstanceFilter, traceparent: string): Promise<{ serviceId: string; revision: number }[]> {
    const now = this.clock.now();
    const events: ClaimedOutboxRow[] = [];
    const removed = await this.repository.transaction(async (tx) => {
      const out: { serviceId: string; revision: number }[] = [];
      for (const instance of await tx.lockMatching(filter)) out.push({ serviceId: instance.serviceId, revision: await this.delete(tx, events, instance, now, traceparent) });
      return out;
    });
    this.afterCommit('deregistered', events);
    return removed;
  }

  private async applyState(
    tx: RegistryTransaction,
    events: ClaimedOutboxRow[],
    instance: ServiceInstanceEntity,
    change: StateChange,
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
    await tx.saveState(instance); // sets instance.revision
    await this.emit(tx, events, 'statusChanged', instance, { revision: instance.revision, instance: toInstanceView(instance), from, to, reason }, now, traceparent);
    return true;
  }

  private async delete(tx: RegistryTransaction, events: ClaimedOutboxRow[], instance: ServiceInstanceEntity, now: Date, traceparent: string): Promise<number> {
    const revision = await tx.deleteInstance(instance, now);
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

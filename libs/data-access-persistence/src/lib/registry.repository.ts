import { Brackets, DataSource, EntityManager, In } from 'typeorm';
import type { AdminState, HealthStatus, LoadFigures } from '@switchboard/contracts';
import { InstanceKind, ServiceInstanceEntity } from './service-instance.entity';

export interface InstanceFilter {
  serviceName?: string;
  environment?: string;
  status?: HealthStatus;
  adminState?: AdminState;
  capability?: string;
  model?: string;
  kind?: InstanceKind;
  /** Only instances that serve at least one model. */
  servesModels?: boolean;
}

/** Where the previous page of the instance list ended (its sort key: service name, then id). */
export interface InstancePosition {
  serviceName: string;
  serviceId: string;
}

/** Where the previous page of the model list ended (its sort key: model, environment, deployment id). */
export interface ModelRowPosition {
  model: string;
  environment: string;
  serviceId: string;
}

export type ModelRowFilter = Pick<InstanceFilter, 'environment' | 'status' | 'adminState' | 'model'>;

/** One row of the model list: a deployment and one model it serves. */
export interface ModelRow {
  model: string;
  instance: ServiceInstanceEntity;
}

export interface Page<T> {
  items: T[];
  /** More rows follow the last item. */
  more: boolean;
}

export interface OutboxRecord {
  revision: number;
  subject: string;
  payload: object;
  headers: Record<string, string>;
}

export interface ClaimedOutboxRow extends OutboxRecord {
  id: number;
  createdAt: Date;
}

export interface HeartbeatWrite {
  serviceId: string;
  lastSeen: Date;
  load: LoadFigures;
}

/** A full row to insert or replace; `isNew` also clears a tombstone its serviceId may have left. */
export interface InstanceSave {
  instance: ServiceInstanceEntity;
  isNew: boolean;
}

/** A deregistration: the row goes, a tombstone with the instance's revision stays. */
export interface InstanceDelete {
  instance: ServiceInstanceEntity;
  deletedAt: Date;
}

/**
 * What one transaction writes, each instance at most once, every revision taken by
 * {@link RegistryTransaction.takeRevisions} and set on the instances already: registrations (whole
 * rows), state changes (status, admin state, updated_at, revision only, so a heartbeat's lastSeen
 * and load written meanwhile stay), deregistrations, and one outbox record per change.
 */
export interface RegistryWrites {
  saves: InstanceSave[];
  states: ServiceInstanceEntity[];
  deletes: InstanceDelete[];
  outbox: OutboxRecord[];
}

/**
 * The writes of one transaction: one registry change, a group commit of many, or a bulk change.
 * Plain SQL, a fixed number of round trips whatever the number of changes: lock + read the
 * instances, take the revisions, write rows + tombstones + outbox rows (BEGIN and COMMIT around them).
 */
export class RegistryTransaction {
  constructor(readonly manager: EntityManager) {}

  /**
   * The statement's rows, as a named prepared statement on this transaction's connection (node-postgres
   * parses and plans it once per connection; afterwards only Bind + Execute travel). Every name has
   * one fixed text, and its result columns are listed, so the statement's result type never changes.
   */
  private async rows<T>(name: string, text: string, values: unknown[]): Promise<T[]> {
    const client = (this.manager.queryRunner as { databaseConnection?: PreparingClient } | undefined)?.databaseConnection;
    if (!client) throw new Error('RegistryTransaction outside a transaction');
    return (await client.query<T>({ name, text, values })).rows;
  }

  /**
   * Serialises every writer of these serviceIds (including inserts of ids that do not exist yet)
   * until commit, then reads their current rows: both in `registry_lock_instances`, which takes the
   * locks in one global order (no deadlock between two batches) and reads after the last one is
   * granted, locking the rows in serviceId order as heartbeat flushes do (see its migrations).
   * Unknown ids are absent from the map.
   */
  async lockInstances(serviceIds: string[]): Promise<Map<string, ServiceInstanceEntity>> {
    const rows = await this.rows<InstanceRow>('registry_lock_instances', `SELECT ${INSTANCE_COLUMNS} FROM registry_lock_instances($1::text[])`, [serviceIds]);
    return new Map(rows.map((r) => [r.service_id, toInstance(r)]));
  }

  /** Locks the matching instances (see {@link lockInstances}); returns them in serviceId order. */
  async lockMatching(filter: InstanceFilter): Promise<ServiceInstanceEntity[]> {
    const ids = (await filteredQuery(this.manager, filter).select('i.serviceId', 'id').orderBy('i.serviceId').getRawMany<{ id: string }>()).map((r) => r.id);
    if (!ids.length) return [];
    const locked = await this.lockInstances(ids);
    return ids.flatMap((id) => locked.get(id) ?? []);
  }

  /**
   * `count` revisions, ascending, taken after the revision writers' shared lock (held until commit):
   * the join makes every nextval wait for the lock's row, so no revision is handed out unlocked. That
   * is what lets {@link RegistryRepository.listAsOfRevision} tell when every revision up to N has committed.
   */
  async takeRevisions(count: number): Promise<number[]> {
    if (count < 1) return [];
    const rows = await this.rows<{ revision: string }>(
      'registry_take_revisions',
      `SELECT nextval('registry_revision_seq')::text AS revision
         FROM (SELECT pg_advisory_xact_lock_shared($1::int, $2::int) OFFSET 0) AS writer, generate_series(1, $3::int)`,
      [...REVISION_WRITERS_LOCK, count],
    );
    return rows.map((r) => Number(r.revision)).sort((a, b) => a - b);
  }

  /**
   * Writes rows, tombstones and outbox rows in one statement (each part one JSON parameter, read with
   * jsonb_to_recordset). Returns the outbox rows' ids in the order of `writes.outbox`, for the relay to
   * delete after publishing them.
   */
  async write(writes: RegistryWrites): Promise<number[]> {
    const saves = writes.saves.map(({ instance: i, isNew }) => ({
      service_id: i.serviceId, service_name: i.serviceName, environment: i.environment, region: i.region, vm_ip: i.vmIp,
      internal_port: i.internalPort, external_domain: i.externalDomain, version: i.version, deployment_id: i.deploymentId,
      namespace: i.namespace, kind: i.kind, capabilities: i.capabilities, models: i.models, health_check_endpoint: i.healthCheckEndpoint,
      health_check: i.healthCheck ?? {}, metadata: i.metadata, required_environment_vars: i.requiredEnvironmentVars, status: i.status,
      admin_state: i.adminState, load: i.load, last_seen: i.lastSeen, registered_at: i.registeredAt, updated_at: i.updatedAt,
      revision: i.revision, is_new: isNew,
    }));
    const states = writes.states.map((i) => ({ service_id: i.serviceId, status: i.status, admin_state: i.adminState, updated_at: i.updatedAt, revision: i.revision }));
    const deletes = writes.deletes.map(({ instance: i, deletedAt }) => ({
      service_id: i.serviceId, service_name: i.serviceName, environment: i.environment, revision: i.revision, deleted_at: deletedAt,
    }));
    const [row] = await this.rows<{ saved: number; states: number; outbox: string[] }>(
      'registry_write',
      `WITH saves AS (
         SELECT * FROM jsonb_to_recordset($1::jsonb) AS v(service_id text, service_name text, environment text, region text, vm_ip text,
                internal_port int, external_domain text, version text, deployment_id text, namespace text, kind text, capabilities text[],
                models text[], health_check_endpoint text, health_check jsonb, metadata jsonb, required_environment_vars jsonb, status text,
                admin_state text, load jsonb, last_seen timestamptz, registered_at timestamptz, updated_at timestamptz, revision bigint, is_new boolean)),
       saved AS (
         INSERT INTO service_instances (service_id, service_name, environment, region, vm_ip, internal_port, external_domain, version,
                deployment_id, namespace, kind, capabilities, models, health_check_endpoint, health_check, metadata,
                required_environment_vars, status, admin_state, load, last_seen, registered_at, updated_at, revision)
         SELECT service_id, service_name, environment, region, vm_ip, internal_port, external_domain, version, deployment_id, namespace, kind,
                coalesce(capabilities, '{}'), coalesce(models, '{}'), health_check_endpoint, health_check, metadata, required_environment_vars, status,
                admin_state, load, last_seen, registered_at, updated_at, revision
           FROM saves
         ON CONFLICT (service_id) DO UPDATE SET
                service_name = EXCLUDED.service_name, environment = EXCLUDED.environment, region = EXCLUDED.region,
                vm_ip = EXCLUDED.vm_ip, internal_port = EXCLUDED.internal_port, external_domain = EXCLUDED.external_domain,
                version = EXCLUDED.version, deployment_id = EXCLUDED.deployment_id, namespace = EXCLUDED.namespace,
                kind = EXCLUDED.kind, capabilities = EXCLUDED.capabilities, models = EXCLUDED.models,
                health_check_endpoint = EXCLUDED.health_check_endpoint, health_check = EXCLUDED.health_check,
                metadata = EXCLUDED.metadata, required_environment_vars = EXCLUDED.required_environment_vars,
                status = EXCLUDED.status, admin_state = EXCLUDED.admin_state, load = EXCLUDED.load,
                last_seen = EXCLUDED.last_seen, registered_at = EXCLUDED.registered_at, updated_at = EXCLUDED.updated_at,
                revision = EXCLUDED.revision
         RETURNING 1),
       untombed AS (DELETE FROM service_tombstones t USING saves s WHERE s.is_new AND t.service_id = s.service_id),
       states AS (
         UPDATE service_instances AS s SET status = v.status, admin_state = v.admin_state, updated_at = v.updated_at, revision = v.revision
           FROM jsonb_to_recordset($2::jsonb) AS v(service_id text, status text, admin_state text, updated_at timestamptz, revision bigint)
          WHERE s.service_id = v.service_id
         RETURNING 1),
       deletes AS (SELECT * FROM jsonb_to_recordset($3::jsonb) AS v(service_id text, service_name text, environment text, revision bigint, deleted_at timestamptz)),
       gone AS (DELETE FROM service_instances s USING deletes d WHERE s.service_id = d.service_id),
       tombs AS (
         INSERT INTO service_tombstones (service_id, service_name, environment, revision, deleted_at)
         SELECT service_id, service_name, environment, revision, deleted_at FROM deletes
         ON CONFLICT (service_id) DO UPDATE SET service_name = EXCLUDED.service_name, environment = EXCLUDED.environment,
                revision = EXCLUDED.revision, deleted_at = EXCLUDED.deleted_at),
       -- In revision order, so the sweep (which publishes in id order) keeps it too.
       outbox AS (
         INSERT INTO registry_outbox (revision, subject, payload, headers)
         SELECT revision, subject, payload, headers
           FROM jsonb_to_recordset($4::jsonb) AS v(revision bigint, subject text, payload jsonb, headers jsonb)
          ORDER BY revision
         RETURNING id, revision)
       SELECT (SELECT count(*) FROM saved)::int AS saved, (SELECT count(*) FROM states)::int AS states,
              ARRAY(SELECT id::text FROM outbox ORDER BY revision) AS outbox`,
      [JSON.stringify(saves), JSON.stringify(states), JSON.stringify(deletes), JSON.stringify(writes.outbox)],
    );
    if (row.saved !== saves.length || row.states !== states.length || row.outbox.length !== writes.outbox.length) {
      throw new Error(`registry write: expected ${saves.length}/${states.length}/${writes.outbox.length} rows, wrote ${row.saved}/${row.states}/${row.outbox.length}`);
    }
    // The ids come back in revision order; hand them back in the caller's order.
    const byRevision = [...writes.outbox].map((r, index) => ({ revision: r.revision, index })).sort((a, b) => a.revision - b.revision);
    const ids: number[] = new Array(writes.outbox.length);
    byRevision.forEach(({ index }, k) => (ids[index] = Number(row.outbox[k])));
    return ids;
  }
}

/** What {@link RegistryTransaction.rows} needs of node-postgres' client (TypeORM's query runner holds one per transaction). */
interface PreparingClient {
  query<T>(config: { name: string; text: string; values: unknown[] }): Promise<{ rows: T[] }>;
}

const INSTANCE_COLUMNS = `service_id, service_name, environment, region, vm_ip, internal_port, external_domain, version, deployment_id,
  namespace, kind, capabilities, models, health_check_endpoint, health_check, metadata, required_environment_vars, status,
  admin_state, load, last_seen, registered_at, updated_at, revision`;

/** A service_instances row as node-postgres returns it (bigint as text; dates, arrays and jsonb parsed). */
interface InstanceRow {
  service_id: string;
  service_name: string;
  environment: string;
  region: string;
  vm_ip: string;
  internal_port: number;
  external_domain: string | null;
  version: string;
  deployment_id: string;
  namespace: string | null;
  kind: InstanceKind;
  capabilities: string[];
  models: string[];
  health_check_endpoint: string;
  health_check: ServiceInstanceEntity['healthCheck'];
  metadata: Record<string, unknown>;
  required_environment_vars: ServiceInstanceEntity['requiredEnvironmentVars'];
  status: HealthStatus;
  admin_state: AdminState;
  load: LoadFigures;
  last_seen: Date | null;
  registered_at: Date;
  updated_at: Date;
  revision: string;
}

function toInstance(r: InstanceRow): ServiceInstanceEntity {
  return Object.assign(new ServiceInstanceEntity(), {
    serviceId: r.service_id,
    serviceName: r.service_name,
    environment: r.environment,
    region: r.region,
    vmIp: r.vm_ip,
    internalPort: r.internal_port,
    externalDomain: r.external_domain,
    version: r.version,
    deploymentId: r.deployment_id,
    namespace: r.namespace,
    kind: r.kind,
    capabilities: r.capabilities,
    models: r.models,
    healthCheckEndpoint: r.health_check_endpoint,
    healthCheck: r.health_check,
    metadata: r.metadata,
    requiredEnvironmentVars: r.required_environment_vars,
    status: r.status,
    adminState: r.admin_state,
    load: r.load,
    lastSeen: r.last_seen,
    registeredAt: r.registered_at,
    updatedAt: r.updated_at,
    revision: Number(r.revision),
  });
}

function filteredQuery(manager: EntityManager, filter: InstanceFilter) {
  const q = manager.createQueryBuilder(ServiceInstanceEntity, 'i');
  if (filter.serviceName) q.andWhere('i.serviceName = :serviceName', { serviceName: filter.serviceName });
  if (filter.environment) q.andWhere('i.environment = :environment', { environment: filter.environment });
  if (filter.status) q.andWhere('i.status = :status', { status: filter.status });
  if (filter.adminState) q.andWhere('i.adminState = :adminState', { adminState: filter.adminState });
  if (filter.kind) q.andWhere('i.kind = :kind', { kind: filter.kind });
  if (filter.capability) q.andWhere('i.capabilities @> ARRAY[:capability]::text[]', { capability: filter.capability });
  if (filter.model) q.andWhere('i.models @> ARRAY[:model]::text[]', { model: filter.model });
  if (filter.servesModels) q.andWhere(new Brackets((b) => b.where('cardinality(i.models) > 0')));
  return q;
}

async function highestRevision(manager: EntityManager): Promise<number> {
  const [row] = await manager.query(
    `SELECT GREATEST(
       (SELECT COALESCE(MAX(revision), 0) FROM service_instances),
       (SELECT COALESCE(MAX(revision), 0) FROM service_tombstones)) AS revision`,
  );
  return Number(row.revision);
}

/**
 * Shared by every transaction between its `nextval` and its end; a reader that can take it
 * exclusively (for an instant) knows no revision is in flight. Two-int4 advisory keys: a space
 * apart from the single-bigint keys of the instance and migration locks.
 */
const REVISION_WRITERS_LOCK = [7_357_002, 1];

/** Every field of the instance view (`toInstanceView` in registry-api), or only those a routing table keeps. */
export type SnapshotView = 'full' | 'routing';

/** One instance of a snapshot page: its JSON text as PostgreSQL built it, and that text's size in bytes. */
export interface SnapshotRow {
  id: string;
  json: string;
  bytes: number;
}

// The instance view, field for field, as JSON built by PostgreSQL (`row_to_json` of these columns, compact):
// `toInstanceView` (registry-api) is the reference, and the snapshot spec compares the two.
// A vm_ip with ':' is IPv6 (hostnames have none).
const ISO = (column: string) => `to_char(${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;
const ROUTING_FIELDS = `service_id AS "serviceId", service_name AS "serviceName", environment, models,
  'http://' || CASE WHEN strpos(vm_ip, ':') > 0 THEN '[' || vm_ip || ']' ELSE vm_ip END || ':' || internal_port AS "internalUrl",
  health_check_endpoint AS "healthCheckEndpoint", COALESCE(health_check, '{}'::jsonb) AS "healthCheck", status, admin_state AS "adminState",
  admin_state = 'enabled' AND status IN ('healthy', 'degraded') AS routable, load, revision`;
const SNAPSHOT_FIELDS: Record<SnapshotView, string> = {
  routing: ROUTING_FIELDS,
  full: `${ROUTING_FIELDS}, region, vm_ip AS "vmIp", internal_port AS "internalPort", external_domain AS "externalDomain",
  CASE WHEN external_domain IS NULL OR external_domain = '' THEN NULL ELSE 'https://' || external_domain END AS "externalUrl",
  version, deployment_id AS "deploymentId", namespace, capabilities, metadata, required_environment_vars AS "requiredEnvironmentVars",
  ${ISO('last_seen')} AS "lastSeen", ${ISO('registered_at')} AS "registeredAt", ${ISO('updated_at')} AS "updatedAt"`,
};

/** Rows read together with a revision they are complete up to (see {@link RegistryRepository.listAsOfRevision}). */
export interface RevisionedRows {
  /** Every change with a revision ≤ this is in `instances`; null when a writer was in flight (do not cache). */
  revision: number | null;
  instances: ServiceInstanceEntity[];
}

/** The registry of record: the only code that reads or writes its tables. */
export class RegistryRepository {
  constructor(private readonly dataSource: DataSource) {}

  findById(serviceId: string): Promise<ServiceInstanceEntity | null> {
    return this.dataSource.manager.findOne(ServiceInstanceEntity, { where: { serviceId } });
  }

  list(filter: InstanceFilter = {}): Promise<ServiceInstanceEntity[]> {
    return filteredQuery(this.dataSource.manager, filter).orderBy('i.serviceName').addOrderBy('i.serviceId').getMany();
  }

  /** Up to `limit` instances after `after` in (service name, id) order: a keyset page, stable under concurrent writes. */
  async listPage(filter: InstanceFilter, after: InstancePosition | undefined, limit: number): Promise<Page<ServiceInstanceEntity>> {
    const q = filteredQuery(this.dataSource.manager, filter);
    if (after) q.andWhere('(i.serviceName, i.serviceId) > (:afterName, :afterId)', { afterName: after.serviceName, afterId: after.serviceId });
    const rows = await q.orderBy('i.serviceName').addOrderBy('i.serviceId').limit(limit + 1).getMany();
    return { items: rows.slice(0, limit), more: rows.length > limit };
  }

  /**
   * Up to `limit` (deployment, model) rows after `after` in (model, environment, id) order, for the
   * model list: one row per model an instance serves, so the page is cut in SQL, not in memory.
   */
  modelPage(filter: ModelRowFilter, after: ModelRowPosition | undefined, limit: number): Promise<Page<ModelRow>> {
    const params: unknown[] = [];
    const param = (value: unknown) => `$${params.push(value)}`;
    const where = ['cardinality(i.models) > 0'];
    if (filter.environment) where.push(`i.environment = ${param(filter.environment)}`);
    if (filter.status) where.push(`i.status = ${param(filter.status)}`);
    if (filter.adminState) where.push(`i.admin_state = ${param(filter.adminState)}`);
    if (filter.model) where.push(`m.model = ${param(filter.model)}`);
    if (after) where.push(`(m.model, i.environment, i.service_id) > (${param(after.model)}, ${param(after.environment)}, ${param(after.serviceId)})`);
    const sql = `SELECT i.service_id AS id, m.model FROM service_instances i CROSS JOIN LATERAL unnest(i.models) AS m(model)
                  WHERE ${where.join(' AND ')} ORDER BY m.model, i.environment, i.service_id LIMIT ${param(limit + 1)}`;
    // The rows and the instances they name, from one view.
    return this.dataSource.transaction('REPEATABLE READ', async (manager) => {
      const raw: { id: string; model: string }[] = await manager.query(sql, params);
      const page = raw.slice(0, limit);
      const entities = page.length ? await manager.find(ServiceInstanceEntity, { where: { serviceId: In([...new Set(page.map((r) => r.id))]) } }) : [];
      const byId = new Map(entities.map((e) => [e.serviceId, e]));
      return { items: page.map((r) => ({ model: r.model, instance: byId.get(r.id) as ServiceInstanceEntity })), more: raw.length > limit };
    });
  }

  /** PostgreSQL's default READ COMMITTED; the per-instance advisory lock does the serialising. */
  transaction<T>(work: (tx: RegistryTransaction) => Promise<T>): Promise<T> {
    return this.dataSource.transaction((manager) => work(new RegistryTransaction(manager)));
  }

  /** Every instance and tombstone plus the highest revision, read from one consistent view. */
  snapshot(): Promise<{ revision: number; instances: ServiceInstanceEntity[]; tombstones: [string, number][] }> {
    return this.dataSource.transaction('REPEATABLE READ', async (manager) => {
      const instances = await manager.find(ServiceInstanceEntity, { order: { serviceId: 'ASC' } });
      const rows: { id: string; revision: string }[] = await manager.query('SELECT service_id AS id, revision::text AS revision FROM service_tombstones');
      return { revision: await highestRevision(manager), instances, tombstones: rows.map((r) => [r.id, Number(r.revision)] as [string, number]) };
    });
  }

  /**
   * The snapshot in pages, for large registries: one REPEATABLE READ transaction (so every page and the
   * revision come from one view), the revision and tombstones first, then the instances in keyset
   * pages of `pageSize` by serviceId, each handed to `onPage` before the next is read. Each instance
   * arrives as its JSON text, built by PostgreSQL (`json_build_object`, no entity hydration, nothing
   * to stringify here), with its size in bytes; `view` chooses every field of the instance view or
   * only those a routing table keeps. The next page is queried before `onPage` runs, so PostgreSQL
   * reads it while this one is sent. Between pages the event loop is free, so a 100,000-instance
   * snapshot never blocks the process for long.
   */
  snapshotPages(
    pageSize: number,
    view: SnapshotView,
    onStart: (head: { revision: number; tombstones: [string, number][] }) => void | Promise<void>,
    onPage: (instances: SnapshotRow[]) => void | Promise<void>,
  ): Promise<void> {
    const sql = `SELECT id, j AS json, octet_length(j) AS bytes
                   FROM (SELECT v."serviceId" AS id, row_to_json(v)::text AS j
                           FROM (SELECT ${SNAPSHOT_FIELDS[view]} FROM service_instances WHERE service_id > $1 ORDER BY service_id LIMIT $2) v) page
                  ORDER BY id`;
    return this.dataSource.transaction('REPEATABLE READ', async (manager) => {
      const revision = await highestRevision(manager);
      const rows: { id: string; revision: string }[] = await manager.query('SELECT service_id AS id, revision::text AS revision FROM service_tombstones');
      await onStart({ revision, tombstones: rows.map((r) => [r.id, Number(r.revision)] as [string, number]) });
      // '' sorts before every id (ids are [A-Za-z0-9_-]{1,128}).
      let next: Promise<SnapshotRow[]> = manager.query(sql, ['', pageSize]);
      for (;;) {
        const page = await next;
        const more = page.length === pageSize;
        if (more) next = manager.query(sql, [page[page.length - 1].id, pageSize]);
        try {
          if (page.length) await onPage(page);
        } catch (error) {
          // The query already sent must settle before the transaction ends.
          if (more) await next.catch(() => undefined);
          throw error;
        }
        if (!more) return;
      }
    });
  }

  /**
   * Forgets deregistrations older than `olderThanMs`, except the newest (the highest revision stays
   * explainable). A consumer learns tombstones from snapshots, so they must outlive any event that
   * can still arrive late (the event stream's retention bounds that).
   */
  async pruneTombstones(olderThanMs: number): Promise<number> {
    const [, count] = await this.dataSource.query(
      `DELETE FROM service_tombstones
        WHERE deleted_at < now() - make_interval(secs => $1::float8 / 1000)
          AND revision < (SELECT max(revision) FROM service_tombstones)`,
      [olderThanMs],
    );
    return Number(count ?? 0);
  }

  /**
   * The matching instances and a revision R such that every change with revision ≤ R is in them,
   * for the discovery cache's compare-and-set. The highest committed revision is not such an R:
   * revisions are taken before commit, so revision 11 may be visible while 10 is still in flight.
   * Instead: read the last revision handed out (the sequence, CACHE 1, read live), then check that
   * no writer holds the revision lock (every revision up to it has committed or aborted, and a
   * commit is visible before its locks are released), then read the rows. Both checks are one
   * statement whose sub-select scan runs first, so the order is fixed. If a writer is in flight the
   * rows are still right for this answer, only not safe to cache: revision is null.
   */
  async listAsOfRevision(filter: InstanceFilter): Promise<RevisionedRows> {
    const [fence] = await this.dataSource.query(
      `SELECT s.last_value::text AS allocated, s.is_called,
              CASE WHEN pg_try_advisory_lock($1::int, $2::int) THEN pg_advisory_unlock($1::int, $2::int) ELSE false END AS quiet
         FROM (SELECT last_value, is_called FROM registry_revision_seq OFFSET 0) AS s`,
      REVISION_WRITERS_LOCK,
    );
    const instances = await this.list(filter);
    return { revision: fence.quiet ? (fence.is_called ? Number(fence.allocated) : 0) : null, instances };
  }

  /** The highest committed revision, tombstones counted (not the sequence, which runs ahead of commits). */
  highestRevision(): Promise<number> {
    return highestRevision(this.dataSource.manager);
  }

  /**
   * One statement for a whole batch of heartbeats. Returns the ids that exist; the caller
   * counts the rest as unknown instances.
   */
  async applyHeartbeats(batch: HeartbeatWrite[]): Promise<Set<string>> {
    if (!batch.length) return new Set();
    // Structured result: for UPDATE … RETURNING, TypeORM's plain form is [rows, count].
    const runner = this.dataSource.createQueryRunner();
    // The rows are locked first, in serviceId order, as registry writes lock theirs (registry_lock_instances):
    // an UPDATE alone would lock them in its plan's order, and two writers of several rows in different
    // orders can deadlock. The CTE runs before the UPDATE because the UPDATE reads it.
    const result = await runner.query(
      `WITH locked AS MATERIALIZED (
         SELECT service_id FROM service_instances WHERE service_id = ANY ($1::text[]) ORDER BY service_id FOR UPDATE)
       UPDATE service_instances AS s
          SET last_seen = GREATEST(s.last_seen, v.last_seen),
              load = s.load || v.load
         FROM unnest($1::text[], $2::timestamptz[], $3::jsonb[]) AS v(service_id, last_seen, load), locked AS l
        WHERE s.service_id = v.service_id AND l.service_id = v.service_id
      RETURNING s.service_id`,
      [batch.map((b) => b.serviceId), batch.map((b) => b.lastSeen.toISOString()), batch.map((b) => JSON.stringify(b.load))],
      true,
    ).finally(() => runner.release());
    return new Set((result.records as { service_id: string }[]).map((r) => r.service_id));
  }

  /**
   * Claims up to `limit` outbox rows at least `minAgeMs` old (other relays skip them), hands them
   * to `publish`, and deletes them only if it resolves. A failure leaves them for the next attempt.
   */
  claimOutbox(limit: number, minAgeMs: number, publish: (rows: ClaimedOutboxRow[]) => Promise<void>): Promise<number> {
    return this.dataSource.transaction(async (manager) => {
      const rows: { id: string; revision: string; subject: string; payload: object; headers: Record<string, string>; created_at: Date }[] =
        await manager.query(
          `SELECT id, revision, subject, payload, headers, created_at FROM registry_outbox
            WHERE created_at <= now() - make_interval(secs => $2::float8 / 1000)
            ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED`,
          [limit, minAgeMs],
        );
      if (!rows.length) return 0;
      await publish(
        rows.map((r) => ({ id: Number(r.id), revision: Number(r.revision), subject: r.subject, payload: r.payload, headers: r.headers, createdAt: r.created_at })),
      );
      await manager.query('DELETE FROM registry_outbox WHERE id = ANY($1::bigint[])', [rows.map((r) => r.id)]);
      return rows.length;
    });
  }

  /** Removes rows already published by their writer. */
  async deleteOutbox(ids: number[]): Promise<void> {
    if (ids.length) await this.dataSource.query('DELETE FROM registry_outbox WHERE id = ANY($1::bigint[])', [ids]);
  }

  async outboxDepth(): Promise<number> {
    const [row] = await this.dataSource.query('SELECT count(*)::int AS n FROM registry_outbox');
    return row.n;
  }

  async ping(): Promise<void> {
    await this.dataSource.query('SELECT 1');
  }
}

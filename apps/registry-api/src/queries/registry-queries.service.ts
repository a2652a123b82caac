import { Inject, Injectable } from '@nestjs/common';
import {
  LIST_DEFAULT_LIMIT,
  ListModelsQueryDto,
  ListServicesQueryDto,
  ModelDeploymentView,
  ModelStatus,
  RegistrySnapshot,
  ServiceInstanceView,
} from '@switchboard/contracts';
import { ModelRowFilter, RegistryRepository, SnapshotRow, SnapshotView } from '@switchboard/persistence';
import type { RegistryApiConfig } from '../config/registry-api.config';
import { REGISTRY_API_CONFIG } from '../registry-api.tokens';
import { toInstanceView, toModelViews } from '../registry/instance-view.util';
import { RegistryException } from '../registry/registry.exception';
import { ListCursorCodec } from './list-cursor.util';

/** One page of a list; `nextCursor` is null on the last page. */
export interface ListPage<T> {
  items: T[];
  nextCursor: string | null;
}

/** The registry's plain reads (PostgreSQL, no cache): one instance, the lists (in pages), the snapshot, the revision. */
@Injectable()
export class RegistryQueries {
  private readonly cursors: ListCursorCodec;

  constructor(
    private readonly repository: RegistryRepository,
    @Inject(REGISTRY_API_CONFIG) config: RegistryApiConfig,
  ) {
    this.cursors = new ListCursorCodec(config.ADMIN_TOKEN);
  }

  async get(serviceId: string): Promise<ServiceInstanceView> {
    const existing = await this.repository.findById(serviceId);
    if (!existing) throw RegistryException.instanceNotFound(serviceId);
    return toInstanceView(existing);
  }

  /** Instances in (service name, id) order. */
  async list(query: ListServicesQueryDto): Promise<ListPage<ServiceInstanceView>> {
    const after = query.cursor ? this.position('services', query.cursor, 2) : undefined;
    const filter = { serviceName: query.serviceName, environment: query.environment, status: query.status, capability: query.capability };
    const page = await this.repository.listPage(filter, after && { serviceName: after[0], serviceId: after[1] }, query.limit ?? LIST_DEFAULT_LIMIT);
    const last = page.items[page.items.length - 1];
    return {
      items: page.items.map(toInstanceView),
      nextCursor: page.more && last ? this.cursors.encode('services', [last.serviceName, last.serviceId]) : null,
    };
  }

  /** One row per (deployment, model), in (model, environment, id) order. */
  async listModels(query: ListModelsQueryDto): Promise<ListPage<ModelDeploymentView>> {
    const after = query.cursor ? this.position('models', query.cursor, 3) : undefined;
    const filter: ModelRowFilter = { environment: query.environment, model: query.model, ...(query.status ? stateOf(query.status) : {}) };
    const page = await this.repository.modelPage(filter, after && { model: after[0], environment: after[1], serviceId: after[2] }, query.limit ?? LIST_DEFAULT_LIMIT);
    const items = page.items.map((row) => toModelViews(row.instance).find((view) => view.modelName === row.model) as ModelDeploymentView);
    const last = items[items.length - 1];
    return {
      items,
      nextCursor: page.more && last ? this.cursors.encode('models', [last.modelName, last.environment, last.serviceId]) : null,
    };
  }

  async snapshot(): Promise<RegistrySnapshot> {
    const { revision, instances, tombstones } = await this.repository.snapshot();
    return { revision, instances: instances.map(toInstanceView), tombstones };
  }

  /** {@link RegistryRepository.snapshotPages}: each instance view as JSON text, built by PostgreSQL. */
  snapshotPages(
    pageSize: number,
    view: SnapshotView,
    onStart: (head: { revision: number; tombstones: [string, number][] }) => void | Promise<void>,
    onPage: (instances: SnapshotRow[]) => void | Promise<void>,
  ): Promise<void> {
    return this.repository.snapshotPages(pageSize, view, onStart, onPage);
  }

  highestRevision(): Promise<number> {
    return this.repository.highestRevision();
  }

  private position(list: string, cursor: string, arity: number): string[] {
    const position = this.cursors.decode(list, cursor, arity);
    if (!position) throw RegistryException.validation([{ field: 'cursor', reason: `cursor must be a nextCursor this API returned for ${list}` }]);
    return position;
  }
}

/** The model view's status word as the health and admin state it stands for. */
function stateOf(status: ModelStatus): Pick<ModelRowFilter, 'status' | 'adminState'> {
  if (status === 'disabled' || status === 'draining') return { adminState: status };
  return { adminState: 'enabled', status: status === 'ready' ? 'healthy' : status };
}

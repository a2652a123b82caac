import { Injectable } from '@nestjs/common';
import { ListModelsQueryDto, ListServicesQueryDto, ModelDeploymentView, RegistrySnapshot, ServiceInstanceView } from '@switchboard/contracts';
import { RegistryRepository } from '@switchboard/persistence';
import { toInstanceView, toModelViews } from '../registry/instance-view.util';
import { RegistryException } from '../registry/registry.exception';

/** The registry's plain reads (PostgreSQL, no cache): one instance, the lists, the snapshot, the revision. */
@Injectable()
export class RegistryQueries {
  constructor(private readonly repository: RegistryRepository) {}

  async get(serviceId: string): Promise<ServiceInstanceView> {
    const existing = await this.repository.findById(serviceId);
    if (!existing) throw RegistryException.instanceNotFound(serviceId);
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
}

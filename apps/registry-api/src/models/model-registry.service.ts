import { Injectable } from '@nestjs/common';
import { AdminState, ModelDeploymentView, RegisterModelDto } from '@switchboard/contracts';
import { RegistryRepository } from '@switchboard/persistence';
import { EndpointPolicy } from '../registry/endpoint-policy.service';
import { toModelViews } from '../registry/instance-view.util';
import { RegistryException } from '../registry/registry.exception';
import { RegistryWriter } from '../writes/registry-writer.service';
import { modelRegistrationFields } from './model-fields.util';

export interface ModelRegistrationResult {
  dryRun: boolean;
  created: boolean;
  changed: boolean;
  models: ModelDeploymentView[];
}

/** The model workflow's writes: register a deployment (or preview it), enable/disable/deregister a model in an environment. */
@Injectable()
export class ModelRegistryService {
  constructor(
    private readonly writer: RegistryWriter,
    private readonly repository: RegistryRepository,
    private readonly policy: EndpointPolicy,
  ) {}

  async register(dto: RegisterModelDto, traceparent: string): Promise<ModelRegistrationResult> {
    const fields = modelRegistrationFields(dto);
    this.policy.checkModel(fields.vmIp, fields.internalPort);
    if (dto.dryRun) {
      const preview = await this.writer.preview(fields);
      return { dryRun: true, created: preview.created, changed: preview.changed, models: toModelViews(preview.entity) };
    }
    const result = await this.writer.upsert(fields, traceparent);
    const entity = await this.repository.findById(fields.serviceId);
    return { dryRun: false, created: result.created, changed: result.changed, models: entity ? toModelViews(entity).filter((m) => m.modelName === dto.modelName) : [] };
  }

  async setAdminState(modelName: string, environment: string, adminState: AdminState, traceparent: string): Promise<ModelDeploymentView[]> {
    const matching = await this.writer.changeStateOfMatching({ model: modelName, environment }, { adminState }, `model ${modelName} ${adminState} by operator`, traceparent);
    if (!matching.length) throw RegistryException.modelNotFound(modelName, environment);
    return matching.flatMap(toModelViews).filter((m) => m.modelName === modelName);
  }

  async deregister(modelName: string, environment: string, traceparent: string): Promise<{ serviceId: string; revision: number }[]> {
    const removed = await this.writer.removeMatching({ model: modelName, environment }, traceparent);
    if (!removed.length) throw RegistryException.modelNotFound(modelName, environment);
    return removed;
  }
}

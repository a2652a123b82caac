import { Injectable } from '@nestjs/common';
import { RegisterServiceDto, ServiceInstanceView, UpdateStatusDto } from '@switchboard/contracts';
import { plain } from '../writes/registration.util';
import { RegistryWriter } from '../writes/registry-writer.service';
import { EndpointPolicy } from './endpoint-policy.service';
import { toInstanceView } from './instance-view.util';
import { RegistryException } from './registry.exception';

export interface RegistrationResult {
  instance: ServiceInstanceView;
  created: boolean;
  changed: boolean;
}

/** The write use cases of one instance: register, change status, deregister (REST and NATS commands alike). */
@Injectable()
export class InstanceRegistryService {
  constructor(
    private readonly writer: RegistryWriter,
    private readonly policy: EndpointPolicy,
  ) {}

  async register(dto: RegisterServiceDto, traceparent: string): Promise<RegistrationResult> {
    this.policy.checkService(dto.vmIp, dto.internalPort, dto.healthCheck);
    const result = await this.writer.upsert(
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
    return { instance: toInstanceView(result.entity), created: result.created, changed: result.changed };
  }

  async updateStatus(serviceId: string, dto: UpdateStatusDto, traceparent: string): Promise<{ instance: ServiceInstanceView; changed: boolean }> {
    if (!dto.status && !dto.adminState) {
      throw RegistryException.validation([{ field: 'status', reason: 'give status and/or adminState' }]);
    }
    const result = await this.writer.changeState(serviceId, { status: dto.status, adminState: dto.adminState }, dto.reason, traceparent);
    return { instance: toInstanceView(result.entity), changed: result.changed };
  }

  async deregister(serviceId: string, traceparent: string): Promise<{ serviceId: string; revision: number }> {
    return { serviceId, revision: await this.writer.remove(serviceId, traceparent) };
  }
}

import { isIP } from 'node:net';
import { isRoutable, ModelDeploymentView, modelStatusOf, ServiceInstanceView } from '@switchboard/contracts';
import type { ServiceInstanceEntity } from '@switchboard/persistence';

/** `http://{vmIp}:{internalPort}` as the guide generates it (IPv6 in brackets). */
export function internalUrlOf(host: string, port: number): string {
  return `http://${isIP(host) === 6 ? `[${host}]` : host}:${port}`;
}

export function toInstanceView(e: ServiceInstanceEntity): ServiceInstanceView {
  return {
    serviceId: e.serviceId,
    serviceName: e.serviceName,
    environment: e.environment,
    region: e.region,
    vmIp: e.vmIp,
    internalPort: e.internalPort,
    externalDomain: e.externalDomain,
    internalUrl: internalUrlOf(e.vmIp, e.internalPort),
    externalUrl: e.externalDomain ? `https://${e.externalDomain}` : null,
    version: e.version,
    deploymentId: e.deploymentId,
    namespace: e.namespace,
    capabilities: e.capabilities,
    models: e.models,
    healthCheckEndpoint: e.healthCheckEndpoint,
    healthCheck: e.healthCheck ?? {},
    metadata: e.metadata,
    requiredEnvironmentVars: e.requiredEnvironmentVars,
    status: e.status,
    adminState: e.adminState,
    routable: isRoutable(e),
    load: e.load,
    lastSeen: e.lastSeen ? e.lastSeen.toISOString() : null,
    registeredAt: e.registeredAt.toISOString(),
    updatedAt: e.updatedAt.toISOString(),
    revision: e.revision,
  };
}

/** One row per (deployment, model) it serves. */
export function toModelViews(e: ServiceInstanceEntity): ModelDeploymentView[] {
  const host = isIP(e.vmIp) === 6 ? `[${e.vmIp}]` : e.vmIp;
  return e.models.map((modelName) => ({
    serviceId: e.serviceId,
    modelName,
    endpoint: `${host}:${e.internalPort}`,
    environment: e.environment,
    namespace: e.namespace,
    status: modelStatusOf(e),
    health: e.status,
    adminState: e.adminState,
    lastSeen: e.lastSeen ? e.lastSeen.toISOString() : null,
    registeredAt: e.registeredAt.toISOString(),
    updatedAt: e.updatedAt.toISOString(),
    revision: e.revision,
  }));
}

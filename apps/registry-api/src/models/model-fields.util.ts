import { createHash } from 'node:crypto';
import { defaultModelEndpoint, DEFAULT_MODEL_NAMESPACE, ENDPOINT_PATTERN, RegisterModelDto } from '@switchboard/contracts';
import { RegistryException } from '../registry/registry.exception';
import type { RegistrationFields } from '../writes/registration.util';

/** A model name made subject-safe, to serve as the service name of its deployments. */
export function modelServiceName(modelName: string): string {
  return modelName.replace(/[^A-Za-z0-9_-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 128) || 'model';
}

/**
 * The instance a model registration stands for. Its serviceId is `<model>-<env>-<sha256(endpoint)[:8]>`:
 * the same endpoint re-registered is the same deployment, two endpoints are two.
 */
export function modelRegistrationFields(dto: RegisterModelDto): RegistrationFields {
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

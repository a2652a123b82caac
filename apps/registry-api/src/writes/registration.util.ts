import { isDeepStrictEqual } from 'node:util';
import type { PreviousPlacement } from '@switchboard/contracts';
import type { ServiceInstanceEntity } from '@switchboard/persistence';

/** What a registration sets; the rest (admin state, load, timestamps, revision) the registry owns. */
export type RegistrationFields = Pick<
  ServiceInstanceEntity,
  | 'serviceId' | 'serviceName' | 'environment' | 'region' | 'vmIp' | 'internalPort' | 'externalDomain' | 'version'
  | 'deploymentId' | 'namespace' | 'kind' | 'capabilities' | 'models' | 'healthCheckEndpoint' | 'healthCheck' | 'metadata'
  | 'requiredEnvironmentVars' | 'status'
>;

const REGISTRATION_KEYS: (keyof RegistrationFields)[] = [
  'serviceName', 'environment', 'region', 'vmIp', 'internalPort', 'externalDomain', 'version', 'deploymentId',
  'namespace', 'kind', 'capabilities', 'models', 'healthCheckEndpoint', 'healthCheck', 'metadata', 'requiredEnvironmentVars', 'status',
];

/** True when a re-registration would change nothing a registrant sets (a no-op: no revision, no event). */
export function sameRegistration(a: ServiceInstanceEntity, b: ServiceInstanceEntity): boolean {
  return REGISTRATION_KEYS.every((k) => isDeepStrictEqual(a[k], b[k]));
}

/** Where a re-registration moved the instance from, if it changed what consumers index it by (the discovery cache's keys). */
export function movedFrom(before: ServiceInstanceEntity, after: ServiceInstanceEntity): PreviousPlacement | undefined {
  const moved = before.serviceName !== after.serviceName || before.environment !== after.environment || !isDeepStrictEqual(before.models, after.models);
  return moved ? { serviceName: before.serviceName, environment: before.environment, models: before.models } : undefined;
}

/** Strips class prototypes (DTO instances) so values compare and serialise as plain JSON. */
export function plain<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}

import type { ModelDeploymentView, ServiceInstanceView } from '@switchboard/contracts';
import { Column, shortDate } from './format.util';

const iso = (value: string | null) => value ?? '';

/**
 * The workflow's columns. ID is the deployment's serviceId (what `services get` takes); Last Health is
 * when the registry last heard from it (heartbeat or health check), blank if never; Updated is the
 * last change to the registration or its status.
 */
export const MODEL_COLUMNS: readonly Column<ModelDeploymentView>[] = [
  { title: 'ID', table: (m) => m.serviceId },
  { title: 'Model Name', table: (m) => m.modelName },
  { title: 'Endpoint', table: (m) => m.endpoint },
  { title: 'Status', table: (m) => m.status },
  { title: 'Environment', table: (m) => m.environment },
  { title: 'Namespace', table: (m) => m.namespace ?? '' },
  { title: 'Last Health', table: (m) => shortDate(m.lastSeen), csv: (m) => iso(m.lastSeen) },
  { title: 'Updated', table: (m) => shortDate(m.updatedAt), csv: (m) => m.updatedAt },
];

export const SERVICE_COLUMNS: readonly Column<ServiceInstanceView>[] = [
  { title: 'Service ID', table: (s) => s.serviceId },
  { title: 'Service Name', table: (s) => s.serviceName },
  { title: 'Environment', table: (s) => s.environment },
  { title: 'Region', table: (s) => s.region },
  { title: 'Internal URL', table: (s) => s.internalUrl },
  { title: 'External URL', table: (s) => s.externalUrl ?? '' },
  { title: 'Version', table: (s) => s.version },
  { title: 'Status', table: (s) => s.status },
  { title: 'Admin State', table: (s) => s.adminState },
  { title: 'Last Seen', table: (s) => shortDate(s.lastSeen), csv: (s) => iso(s.lastSeen) },
  { title: 'Updated', table: (s) => shortDate(s.updatedAt), csv: (s) => s.updatedAt },
];

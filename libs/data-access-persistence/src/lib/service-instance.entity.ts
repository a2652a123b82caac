import { Column, Entity, Index, PrimaryColumn } from 'typeorm';
import type { AdminState, HealthCheckSettings, HealthStatus, LoadFigures } from '@switchboard/contracts';
import { bigintToNumber } from './transformers.util';

export type InstanceKind = 'service' | 'model';

@Entity({ name: 'service_instances' })
@Index('service_instances_env_name_idx', ['environment', 'serviceName'])
export class ServiceInstanceEntity {
  @PrimaryColumn({ name: 'service_id', type: 'text' })
  serviceId!: string;

  @Column({ name: 'service_name', type: 'text' })
  serviceName!: string;

  @Column({ type: 'text' })
  environment!: string;

  @Column({ type: 'text' })
  region!: string;

  @Column({ name: 'vm_ip', type: 'text' })
  vmIp!: string;

  @Column({ name: 'internal_port', type: 'integer' })
  internalPort!: number;

  @Column({ name: 'external_domain', type: 'text', nullable: true })
  externalDomain!: string | null;

  @Column({ type: 'text' })
  version!: string;

  @Column({ name: 'deployment_id', type: 'text' })
  deploymentId!: string;

  @Column({ type: 'text', nullable: true })
  namespace!: string | null;

  @Column({ type: 'text', default: 'service' })
  kind!: InstanceKind;

  @Column({ type: 'text', array: true, default: () => "'{}'" })
  capabilities!: string[];

  @Column({ type: 'text', array: true, default: () => "'{}'" })
  models!: string[];

  @Column({ name: 'health_check_endpoint', type: 'text', default: '/health' })
  healthCheckEndpoint!: string;

  @Column({ name: 'health_check', type: 'jsonb', default: () => "'{}'" })
  healthCheck!: HealthCheckSettings;

  @Column({ type: 'jsonb', default: () => "'{}'" })
  metadata!: Record<string, unknown>;

  @Column({ name: 'required_environment_vars', type: 'jsonb', default: () => "'[]'" })
  requiredEnvironmentVars!: { name: string; type: string; required: boolean }[];

  @Column({ type: 'text' })
  status!: HealthStatus;

  @Column({ name: 'admin_state', type: 'text', default: 'enabled' })
  adminState!: AdminState;

  @Column({ type: 'jsonb', default: () => "'{}'" })
  load!: LoadFigures;

  @Column({ name: 'last_seen', type: 'timestamptz', nullable: true })
  lastSeen!: Date | null;

  @Column({ name: 'registered_at', type: 'timestamptz' })
  registeredAt!: Date;

  @Column({ name: 'updated_at', type: 'timestamptz' })
  updatedAt!: Date;

  @Column({ type: 'bigint', transformer: bigintToNumber })
  revision!: number;
}

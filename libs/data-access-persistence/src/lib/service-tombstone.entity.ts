import { Column, Entity, PrimaryColumn } from 'typeorm';
import { bigintToNumber } from './transformers.util';

/** What a deregistration leaves behind, so the highest revision and late events stay explainable. */
@Entity({ name: 'service_tombstones' })
export class ServiceTombstoneEntity {
  @PrimaryColumn({ name: 'service_id', type: 'text' })
  serviceId!: string;

  @Column({ name: 'service_name', type: 'text' })
  serviceName!: string;

  @Column({ type: 'text' })
  environment!: string;

  @Column({ type: 'bigint', transformer: bigintToNumber })
  revision!: number;

  @Column({ name: 'deleted_at', type: 'timestamptz' })
  deletedAt!: Date;
}

import { Column, Entity, PrimaryGeneratedColumn } from 'typeorm';
import { bigintToNumber } from './transformers.util';

/** Events written in the same transaction as the change; the relay publishes and deletes them. */
@Entity({ name: 'registry_outbox' })
export class OutboxEntity {
  /** bigint, read back as a string by the relay's raw query. */
  @PrimaryGeneratedColumn('increment', { type: 'bigint' })
  id!: string;

  @Column({ type: 'bigint', transformer: bigintToNumber })
  revision!: number;

  @Column({ type: 'text' })
  subject!: string;

  @Column({ type: 'jsonb' })
  payload!: object;

  @Column({ type: 'jsonb', default: () => "'{}'" })
  headers!: Record<string, string>;

  @Column({ name: 'created_at', type: 'timestamptz', default: () => 'now()' })
  createdAt!: Date;
}

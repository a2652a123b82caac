import { MigrationInterface, QueryRunner } from 'typeorm';

/** Per-instance overrides of the prober's check settings. */
export class HealthCheckSettings1732400000000 implements MigrationInterface {
  name = 'HealthCheckSettings1732400000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE service_instances ADD COLUMN health_check jsonb NOT NULL DEFAULT '{}'`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE service_instances DROP COLUMN health_check`);
  }
}

import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * `registry_lock_instance(id)`: takes the instance's advisory lock, then reads its row, in one round
 * trip. It has to be a VOLATILE function: a plain statement reads from the snapshot it took when it
 * started, before it waited for the lock, so it would miss the row the previous holder just committed;
 * each statement inside a VOLATILE function takes a fresh snapshot (READ COMMITTED), so the SELECT
 * sees every commit made before the lock was granted.
 */
export class LockInstanceFunction1732500000000 implements MigrationInterface {
  name = 'LockInstanceFunction1732500000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE FUNCTION registry_lock_instance(p_service_id text) RETURNS SETOF service_instances
        LANGUAGE plpgsql VOLATILE AS $$
      BEGIN
        PERFORM pg_advisory_xact_lock(hashtextextended(p_service_id, 0));
        RETURN QUERY SELECT * FROM service_instances WHERE service_id = p_service_id;
      END
      $$`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP FUNCTION registry_lock_instance(text)`);
  }
}

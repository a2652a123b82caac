import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * `registry_lock_instances(ids)`: the batch form of `registry_lock_instance` (a group commit, or a bulk
 * change of every matching instance). It takes every instance's advisory lock in the order of the lock
 * key, so two transactions that lock overlapping sets cannot deadlock (ordering by key, not by id,
 * stays deadlock-free even when two ids share a key), then reads their rows. VOLATILE for the same
 * reason as the single form: the SELECT takes its snapshot after the last lock is granted.
 */
export class LockInstancesFunction1732600000000 implements MigrationInterface {
  name = 'LockInstancesFunction1732600000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE FUNCTION registry_lock_instances(p_service_ids text[]) RETURNS SETOF service_instances
        LANGUAGE plpgsql VOLATILE AS $$
      DECLARE
        k bigint;
      BEGIN
        FOR k IN SELECT DISTINCT hashtextextended(id, 0) FROM unnest(p_service_ids) AS id ORDER BY 1 LOOP
          PERFORM pg_advisory_xact_lock(k);
        END LOOP;
        RETURN QUERY SELECT * FROM service_instances WHERE service_id = ANY (p_service_ids);
      END
      $$`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP FUNCTION registry_lock_instances(text[])`);
  }
}

import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * `registry_lock_instances(ids)` also locks the rows it reads (FOR UPDATE, in serviceId order). A
 * batch writes several rows and a heartbeat flush updates many: each locking them in its own order
 * (the statement's plan) could deadlock, PostgreSQL aborting one after deadlock_timeout. Both now take
 * their row locks in serviceId order up front. It also keeps a heartbeat's lastSeen and load from being
 * overwritten by a re-registration that read the row before the heartbeat committed.
 */
export class LockInstancesRows1732700000000 implements MigrationInterface {
  name = 'LockInstancesRows1732700000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(functionText('ORDER BY service_id FOR UPDATE'));
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(functionText(''));
  }
}

function functionText(rowLocks: string): string {
  return `
    CREATE OR REPLACE FUNCTION registry_lock_instances(p_service_ids text[]) RETURNS SETOF service_instances
      LANGUAGE plpgsql VOLATILE AS $$
    DECLARE
      k bigint;
    BEGIN
      FOR k IN SELECT DISTINCT hashtextextended(id, 0) FROM unnest(p_service_ids) AS id ORDER BY 1 LOOP
        PERFORM pg_advisory_xact_lock(k);
      END LOOP;
      RETURN QUERY SELECT * FROM service_instances WHERE service_id = ANY (p_service_ids) ${rowLocks};
    END
    $$`;
}

import { MigrationInterface, QueryRunner } from 'typeorm';

export class InitialSchema1732320000000 implements MigrationInterface {
  name = 'InitialSchema1732320000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`CREATE SEQUENCE registry_revision_seq AS bigint START 1`);
    await q.query(`
      CREATE TABLE service_instances (
        service_id text PRIMARY KEY,
        service_name text NOT NULL,
        environment text NOT NULL,
        region text NOT NULL,
        vm_ip text NOT NULL,
        internal_port integer NOT NULL CHECK (internal_port BETWEEN 1 AND 65535),
        external_domain text,
        version text NOT NULL,
        deployment_id text NOT NULL,
        namespace text,
        kind text NOT NULL DEFAULT 'service' CHECK (kind IN ('service', 'model')),
        capabilities text[] NOT NULL DEFAULT '{}',
        models text[] NOT NULL DEFAULT '{}',
        health_check_endpoint text NOT NULL DEFAULT '/health',
        metadata jsonb NOT NULL DEFAULT '{}',
        required_environment_vars jsonb NOT NULL DEFAULT '[]',
        status text NOT NULL CHECK (status IN ('healthy', 'degraded', 'unhealthy', 'offline')),
        admin_state text NOT NULL DEFAULT 'enabled' CHECK (admin_state IN ('enabled', 'disabled', 'draining')),
        load jsonb NOT NULL DEFAULT '{}',
        last_seen timestamptz,
        registered_at timestamptz NOT NULL,
        updated_at timestamptz NOT NULL,
        revision bigint NOT NULL
      )`);
    await q.query(`CREATE INDEX service_instances_env_name_idx ON service_instances (environment, service_name)`);
    await q.query(`CREATE INDEX service_instances_models_idx ON service_instances USING gin (models)`);
    await q.query(`CREATE INDEX service_instances_capabilities_idx ON service_instances USING gin (capabilities)`);
    await q.query(`
      CREATE TABLE service_tombstones (
        service_id text PRIMARY KEY,
        service_name text NOT NULL,
        environment text NOT NULL,
        revision bigint NOT NULL,
        deleted_at timestamptz NOT NULL
      )`);
    await q.query(`
      CREATE TABLE registry_outbox (
        id bigserial PRIMARY KEY,
        revision bigint NOT NULL,
        subject text NOT NULL,
        payload jsonb NOT NULL,
        headers jsonb NOT NULL DEFAULT '{}',
        created_at timestamptz NOT NULL DEFAULT now()
      )`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE registry_outbox`);
    await q.query(`DROP TABLE service_tombstones`);
    await q.query(`DROP TABLE service_instances`);
    await q.query(`DROP SEQUENCE registry_revision_seq`);
  }
}

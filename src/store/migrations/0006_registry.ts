import { type Kysely, sql } from 'kysely';
import { type Dialect, idColumnType } from '../dialect.js';

/**
 * Registry governance (src/registry/, src/auth/audit.ts). 0001 created MLflow's five registry
 * tables; this adds what MLflow's schema lacks:
 *
 * - `registered_models.last_version`: the version counter. A new version takes
 *   `last_version + 1` in an UPDATE … RETURNING, so two registrations at once serialise on
 *   the model's row (Postgres row lock, SQLite's write lock) and get 1 and 2, and a purged
 *   version's number is never handed out again.
 * - `deleted_time` on models and versions: soft delete (hidden from the MLflow API, restorable,
 *   the name stays taken until `kiln gc` purges it, as MLflow does for experiments).
 * - alias history, alias protection, model cards, promotion policies, promotion decisions,
 *   approvals and role grants.
 * - `audit_log` + `audit_head`: the hash chain. `audit_head` is one row; every append updates
 *   it in the transaction of the change it records, so appends are serialised and the chain
 *   never forks.
 */
export function up(dialect: Dialect) {
  return async (db: Kysely<unknown>): Promise<void> => {
    const withSerialKey = (table: string, key: string) =>
      db.schema
        .createTable(table)
        .addColumn(key, idColumnType(dialect), (c) =>
          dialect === 'sqlite' ? c.primaryKey().autoIncrement() : c.primaryKey(),
        );

    await db.schema
      .alterTable('registered_models')
      .addColumn('last_version', 'integer', (c) => c.notNull().defaultTo(0))
      .execute();
    await db.schema.alterTable('registered_models').addColumn('deleted_time', 'bigint').execute();
    await db.schema.alterTable('registered_models').addColumn('user_id', 'varchar(256)').execute();
    await db.schema.alterTable('model_versions').addColumn('deleted_time', 'bigint').execute();
    await sql`update registered_models set last_version = coalesce((select max(mv.version) from model_versions mv where mv.name = registered_models.name), 0)`.execute(
      db,
    );
    // search-model-versions filters by run_id (lineage: which versions came from this run).
    await db.schema.createIndex('model_versions_run_id').on('model_versions').column('run_id').execute();

    // Every alias move: set, moved, deleted (with the version it left). Never updated or deleted
    // except by a rename (the model's name follows) or `kiln gc` purging the whole model.
    await withSerialKey('registry_alias_history', 'event_id')
      .addColumn('name', 'varchar(256)', (c) => c.notNull())
      .addColumn('alias', 'varchar(256)', (c) => c.notNull())
      .addColumn('from_version', 'integer')
      .addColumn('to_version', 'integer')
      .addColumn('actor', 'varchar(256)', (c) => c.notNull())
      .addColumn('time', 'bigint', (c) => c.notNull())
      .addColumn('reason', 'text')
      .addColumn('promotion_id', 'integer')
      .execute();
    await db.schema
      .createIndex('registry_alias_history_lookup')
      .on('registry_alias_history')
      .columns(['name', 'alias', 'time'])
      .execute();

    await db.schema
      .createTable('registry_protected_aliases')
      .addColumn('name', 'varchar(256)', (c) => c.notNull())
      .addColumn('alias', 'varchar(256)', (c) => c.notNull())
      .addColumn('actor', 'varchar(256)', (c) => c.notNull())
      .addColumn('time', 'bigint', (c) => c.notNull())
      .addPrimaryKeyConstraint('registry_protected_aliases_pk', ['name', 'alias'])
      .execute();

    // The editable half of a model card; the generated half is computed from the run on read.
    await db.schema
      .createTable('registry_model_cards')
      .addColumn('name', 'varchar(256)', (c) => c.notNull())
      .addColumn('version', 'integer', (c) => c.notNull())
      .addColumn('fields_json', 'text', (c) => c.notNull())
      .addColumn('updated_by', 'varchar(256)', (c) => c.notNull())
      .addColumn('updated_time', 'bigint', (c) => c.notNull())
      .addPrimaryKeyConstraint('registry_model_cards_pk', ['name', 'version'])
      .execute();

    await db.schema
      .createTable('registry_policies')
      .addColumn('name', 'varchar(256)', (c) => c.primaryKey())
      .addColumn('policy_yaml', 'text', (c) => c.notNull())
      .addColumn('policy_json', 'text', (c) => c.notNull())
      .addColumn('updated_by', 'varchar(256)', (c) => c.notNull())
      .addColumn('updated_time', 'bigint', (c) => c.notNull())
      .execute();

    // Every gate evaluation, accepted, refused or forced, with each rule's numbers.
    await withSerialKey('registry_promotions', 'promotion_id')
      .addColumn('name', 'varchar(256)', (c) => c.notNull())
      .addColumn('version', 'integer', (c) => c.notNull())
      .addColumn('alias', 'varchar(256)', (c) => c.notNull())
      .addColumn('actor', 'varchar(256)', (c) => c.notNull())
      .addColumn('time', 'bigint', (c) => c.notNull())
      .addColumn('decision', 'varchar(16)', (c) => c.notNull())
      .addColumn('incumbent_version', 'integer')
      .addColumn('rules_json', 'text', (c) => c.notNull())
      .addColumn('reason', 'text')
      .execute();
    await db.schema
      .createIndex('registry_promotions_lookup')
      .on('registry_promotions')
      .columns(['name', 'version', 'alias'])
      .execute();

    await withSerialKey('registry_approvals', 'approval_id')
      .addColumn('name', 'varchar(256)', (c) => c.notNull())
      .addColumn('version', 'integer', (c) => c.notNull())
      .addColumn('alias', 'varchar(256)', (c) => c.notNull())
      .addColumn('approver', 'varchar(256)', (c) => c.notNull())
      .addColumn('comment', 'text')
      .addColumn('time', 'bigint', (c) => c.notNull())
      .execute();
    await db.schema
      .createIndex('registry_approvals_lookup')
      .on('registry_approvals')
      .columns(['name', 'version', 'alias'])
      .execute();

    // Who holds which role where: scope '*' (everything) or a registered model name pattern.
    await db.schema
      .createTable('auth_role_grants')
      .addColumn('user_id', 'varchar(256)', (c) => c.notNull())
      .addColumn('role', 'varchar(16)', (c) => c.notNull())
      .addColumn('scope', 'varchar(256)', (c) => c.notNull())
      .addColumn('granted_by', 'varchar(256)', (c) => c.notNull())
      .addColumn('time', 'bigint', (c) => c.notNull())
      .addPrimaryKeyConstraint('auth_role_grants_pk', ['user_id', 'role', 'scope'])
      .execute();

    await db.schema
      .createTable('audit_log')
      .addColumn('seq', 'bigint', (c) => c.primaryKey())
      .addColumn('time', 'bigint', (c) => c.notNull())
      .addColumn('actor', 'varchar(256)', (c) => c.notNull())
      .addColumn('action', 'varchar(64)', (c) => c.notNull())
      .addColumn('target', 'text', (c) => c.notNull())
      .addColumn('detail_json', 'text', (c) => c.notNull())
      .addColumn('prev_hash', 'varchar(64)', (c) => c.notNull())
      .addColumn('hash', 'varchar(64)', (c) => c.notNull())
      .execute();
    await db.schema
      .createTable('audit_head')
      .addColumn('id', 'integer', (c) => c.primaryKey())
      .addColumn('seq', 'bigint', (c) => c.notNull())
      .addColumn('hash', 'varchar(64)', (c) => c.notNull())
      .execute();
    await sql`insert into audit_head (id, seq, hash) values (1, 0, ${'0'.repeat(64)})`.execute(db);
  };
}

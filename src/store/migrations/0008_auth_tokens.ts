import type { Kysely } from 'kysely';
import type { Dialect } from '../dialect.js';

/**
 * API tokens (src/auth/tokens.ts). A token is `kiln_<token_id>_<secret>`: `token_id` is the
 * primary key, so verifying a presented token is one lookup and one scrypt call; only the
 * scrypt hash of the secret (with its own salt and parameters, in `secret_hash`) is stored.
 * Revocation stamps `revoked_time`; rows are never deleted, so `kiln auth token ls` and the
 * audit log keep naming every token ever issued.
 */
export function up(_dialect: Dialect) {
  return async (db: Kysely<unknown>): Promise<void> => {
    await db.schema
      .createTable('auth_tokens')
      .addColumn('token_id', 'varchar(32)', (c) => c.primaryKey())
      .addColumn('user_id', 'varchar(256)', (c) => c.notNull())
      .addColumn('role', 'varchar(16)', (c) => c.notNull())
      .addColumn('scope', 'varchar(300)', (c) => c.notNull())
      .addColumn('secret_hash', 'varchar(256)', (c) => c.notNull())
      .addColumn('description', 'text')
      .addColumn('created_by', 'varchar(256)', (c) => c.notNull())
      .addColumn('created_time', 'bigint', (c) => c.notNull())
      .addColumn('expires_time', 'bigint')
      .addColumn('revoked_time', 'bigint')
      .addColumn('revoked_by', 'varchar(256)')
      .execute();
    await db.schema.createIndex('auth_tokens_user').on('auth_tokens').column('user_id').execute();
  };
}

import pg from 'pg';

/**
 * Test support: (re)creates an empty database `name` on the Postgres server `adminUrl` names
 * and returns the URI of that database. Each store under test gets its own database rather
 * than a schema, because kysely's migrator finds another schema's lock table.
 */
export async function freshPostgresDatabase(adminUrl: string, name: string): Promise<string> {
  await dropPostgresDatabase(adminUrl, name);
  await withAdmin(adminUrl, (admin) => admin.query(`create database ${name}`));
  const target = new URL(adminUrl);
  target.pathname = `/${name}`;
  return target.toString();
}

export async function dropPostgresDatabase(adminUrl: string, name: string): Promise<void> {
  await withAdmin(adminUrl, (admin) => admin.query(`drop database if exists ${name} with (force)`));
}

async function withAdmin(adminUrl: string, fn: (admin: pg.Client) => Promise<unknown>): Promise<void> {
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    await fn(admin);
  } finally {
    await admin.end();
  }
}

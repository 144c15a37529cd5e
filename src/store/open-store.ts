import fs from 'node:fs';
import path from 'node:path';
import SQLite from 'better-sqlite3';
import {
  CompiledQuery,
  type DatabaseConnection,
  type Driver,
  Kysely,
  type Migration,
  type MigrationProvider,
  Migrator,
  PostgresDialect,
  SqliteDialect,
  type SqliteDriver,
  sql,
} from 'kysely';
import pg from 'pg';
import { KilnError } from '../errors.js';
import { describeLocation, parseLocation } from '../location.js';
import type { Dialect } from './dialect.js';
import { MIGRATIONS } from './migrations/index.js';
import type { Database } from './schema.js';

export interface Store {
  db: Kysely<Database>;
  dialect: Dialect;
  /** Where the data lives: the SQLite file path or the Postgres URI (password elided). */
  location: string;
  /**
   * The URI this store was opened with, password included, for opening a second connection
   * to the same database (a tuning worker's heartbeat thread). Never print or log it; it is a
   * non-enumerable property, so JSON.stringify and util.inspect leave it out.
   */
  readonly connectionUri?: string;
  /** The raw better-sqlite3 handle, for the few hot paths that need prepared statements. */
  sqlite?: SQLite.Database;
  close(): Promise<void>;
}

export interface OpenStoreOptions {
  /** SQLite file path (created with its folder), sqlite://…, ':memory:', or a postgres:// URI. */
  db: string;
  /** Apply pending migrations (default true). */
  migrate?: boolean;
}

/**
 * Opens the metadata store named by `db` and brings its schema up to date.
 * SQLite runs in WAL mode with synchronous=NORMAL: a committed transaction survives a
 * process crash (kill -9), which is the failure the tracking server must survive; a busy
 * timeout lets several processes (tuning workers) share one file.
 */
export async function openStore(options: OpenStoreOptions): Promise<Store> {
  const { migrate = true } = options;
  const parsed = parseLocation(options.db, 'metadata');
  let store: Store;
  let connectionUri: string;
  if (parsed.kind === 'postgres') {
    connectionUri = parsed.uri;
    // int8 (bigint) columns hold ms timestamps and steps: parse them to numbers, not strings.
    const types = {
      getTypeParser: (oid: number, format?: 'text' | 'binary') =>
        oid === 20 ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format as 'text'),
    };
    const pool = new pg.Pool({ connectionString: parsed.uri, max: 10, types });
    // An idle pooled connection that the server ends (a restart, a failover, an admin's
    // pg_terminate_backend, a dropped database) makes the pool emit 'error'; unheard, that event
    // crashes the process. The pool has already discarded the client, and the next query opens
    // a new connection or fails with its own error, so there is nothing more to do here.
    pool.on('error', () => {});
    const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
    store = { db, dialect: 'postgres', location: describeLocation(parsed), close: () => db.destroy() };
  } else {
    const location = parsed.path;
    connectionUri = location;
    if (location !== ':memory:') fs.mkdirSync(path.dirname(location), { recursive: true });
    let sqlite: SQLite.Database;
    try {
      sqlite = new SQLite(location);
    } catch (e) {
      throw new KilnError(
        'INVALID_PARAMETER_VALUE',
        `cannot open SQLite store at ${location}: ${(e as Error).message}`,
      );
    }
    // The busy timeout first: switching a new file to WAL takes a lock that another process
    // opening the same file at the same moment may hold.
    sqlite.pragma('busy_timeout = 10000');
    sqlite.pragma('journal_mode = WAL');
    sqlite.pragma('synchronous = NORMAL');
    sqlite.pragma('foreign_keys = ON');
    const db = new Kysely<Database>({ dialect: new ImmediateSqliteDialect({ database: sqlite }) });
    store = { db, dialect: 'sqlite', location, sqlite, close: () => db.destroy() };
  }
  Object.defineProperty(store, 'connectionUri', { value: connectionUri, enumerable: false });
  if (migrate) await migrateStore(store);
  return store;
}

/**
 * Brings the schema up to date, safely when several processes open the same new store at once
 * (a server and its workers started together). On Postgres kysely's migrator holds an advisory
 * lock and reads the applied migrations after taking it. On SQLite it takes no lock at all (it
 * assumes one connection), so two processes both saw no migrations and both created the tables
 * ("table experiments already exists"): here the whole migration runs in one BEGIN IMMEDIATE
 * transaction, which waits (busy timeout) for another process's migration to commit, and the
 * migrator reads the applied migrations inside it. SQLite's DDL is transactional, so a failed
 * migration also leaves the file as it was.
 */
export async function migrateStore(store: Store): Promise<void> {
  if (!store.sqlite) return runMigrator(store);
  const { sqlite } = store;
  // Already up to date (every open after the first): no write lock, which a busy writer holds.
  if (appliedSqliteMigrations(sqlite) === MIGRATIONS.length) return;
  sqlite.exec('begin immediate');
  try {
    await runMigrator(store);
    sqlite.exec('commit');
  } catch (e) {
    if (sqlite.inTransaction) sqlite.exec('rollback');
    throw e;
  }
}

function appliedSqliteMigrations(sqlite: SQLite.Database): number {
  const table = sqlite
    .prepare("select 1 from sqlite_master where type = 'table' and name = 'kiln_migrations'")
    .get();
  if (!table) return 0;
  const names = new Set(MIGRATIONS.map((m) => m.name));
  const applied = sqlite.prepare('select name from kiln_migrations').pluck().all() as string[];
  return applied.filter((n) => names.has(n)).length;
}

async function runMigrator(store: Store): Promise<void> {
  const provider: MigrationProvider = {
    async getMigrations() {
      const out: Record<string, Migration> = {};
      for (const m of MIGRATIONS) out[m.name] = { up: m.up(store.dialect) };
      return out;
    },
  };
  const migrator = new Migrator({
    db: store.db,
    provider,
    migrationTableName: 'kiln_migrations',
    migrationLockTableName: 'kiln_migrations_lock',
  });
  const { error, results } = await migrator.migrateToLatest();
  if (error) {
    const failed = results?.find((r) => r.status === 'Error');
    throw new KilnError(
      'INTERNAL_ERROR',
      `store migration ${failed?.migrationName ?? ''} failed on ${store.location}: ${(error as Error).message}`,
      { cause: error },
    );
  }
}

/** SQLite's own consistency check ('ok' when sound); Postgres has no equivalent and returns 'ok'. */
export async function checkStoreIntegrity(store: Store): Promise<string> {
  if (store.dialect !== 'sqlite') return 'ok';
  const result = await sql<{ integrity_check: string }>`PRAGMA integrity_check`.execute(store.db);
  return result.rows.map((r) => r.integrity_check).join('; ');
}

/**
 * SQLite transactions that take the write lock when they begin. A plain (deferred) BEGIN
 * that reads and then writes fails at once with SQLITE_BUSY_SNAPSHOT when another process
 * (a second tuning worker, the server) wrote in between, and the busy timeout cannot help;
 * BEGIN IMMEDIATE waits for the lock instead, so several processes can share one file.
 */
class ImmediateSqliteDialect extends SqliteDialect {
  override createDriver(): Driver {
    const driver = super.createDriver() as SqliteDriver;
    driver.beginTransaction = async (connection: DatabaseConnection) => {
      await connection.executeQuery(CompiledQuery.raw('begin immediate'));
    };
    return driver;
  }
}

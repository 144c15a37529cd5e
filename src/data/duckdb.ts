import type { DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import { KilnError } from '../errors.js';

/**
 * One in-process DuckDB instance per process, shared by every data operation. DuckDB parallelises
 * a single query across its own threads, so more instances would only fight over the two cores.
 */
let sharedInstance: Promise<DuckDBInstance> | undefined;

export async function duckInstance(): Promise<DuckDBInstance> {
  // Loaded on first use: the native module costs ~1 s to load, which every other `kiln`
  // command (they all share one program) would otherwise pay.
  sharedInstance ??= import('@duckdb/node-api').then(({ DuckDBInstance }) =>
    DuckDBInstance.create(':memory:', { preserve_insertion_order: 'true' }),
  );
  return sharedInstance;
}

/** A fresh connection on the shared instance; each call site owns and closes its own. */
export async function openDuckConnection(): Promise<DuckDBConnection> {
  const instance = await duckInstance();
  return instance.connect();
}

/** Runs `body` with a connection that is closed afterwards, whatever happens. */
export async function withDuck<T>(body: (conn: DuckDBConnection) => Promise<T>): Promise<T> {
  const conn = await openDuckConnection();
  try {
    return await body(conn);
  } finally {
    conn.closeSync();
  }
}

/** SQL string literal: DuckDB doubles single quotes; nothing else needs escaping. */
export function sqlString(value: string): string {
  return `'${value.replaceAll("'", "''")}'`;
}

/** SQL identifier, always quoted so column names with spaces or keywords work. */
export function sqlIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** Runs a statement, turning DuckDB's error into a KilnError that says where (`place`). */
export async function runSql(conn: DuckDBConnection, sql: string, place: string) {
  try {
    return await conn.run(sql);
  } catch (e) {
    throw duckError(e, place);
  }
}

export async function readRows(
  conn: DuckDBConnection,
  sql: string,
  place: string,
): Promise<Record<string, unknown>[]> {
  try {
    const reader = await conn.runAndReadAll(sql);
    return reader.getRowObjectsJS() as Record<string, unknown>[];
  } catch (e) {
    throw duckError(e, place);
  }
}

export function duckError(e: unknown, place: string): KilnError {
  if (e instanceof KilnError) return e;
  const message = e instanceof Error ? e.message : String(e);
  return new KilnError('INVALID_PARAMETER_VALUE', `${place}: ${firstLines(message)}`, { cause: e });
}

function firstLines(message: string): string {
  return message.split('\n').slice(0, 6).join(' ').replace(/\s+/g, ' ').trim();
}

/** A DuckDB row made JSON-ready: big integers as numbers, timestamps as ISO strings. */
export function toJsonRow(row: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(row)) {
    out[k] = typeof v === 'bigint' ? Number(v) : v instanceof Date ? v.toISOString() : v;
  }
  return out;
}

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

/**
 * A string as SQL, for any value data can hold. DuckDB doubles single quotes; a NUL cannot sit
 * inside a literal (the statement text ends there), so a value holding one becomes the
 * concatenation `('a' || chr(0) || 'b')`, which is an expression: fine wherever a value goes.
 * Type definitions take literals only, so ENUMs go through `levelCodeSql`.
 */
export function sqlString(value: string): string {
  if (!value.includes('\0')) return quoteLiteral(value);
  return `(${value.split('\0').map(quoteLiteral).join(' || chr(0) || ')})`;
}

function quoteLiteral(value: string): string {
  return `'${value.replaceAll("'", "''")}'`;
}

/**
 * SQL giving a value's 0-based code in a level table (-1 for a value outside it or NULL), via
 * DuckDB's ENUM: TRY_CAST maps values outside the table to NULL. ENUM members must be literals,
 * so when a level holds a NUL both sides are rewritten with an injective escape ('\\' → '\\\\',
 * NUL → '\\0') that leaves no NUL; otherwise the value is cast as it is.
 */
export function levelCodeSql(valueSql: string, levels: readonly string[]): string {
  if (levels.length === 0) return '-1::INTEGER';
  const value = `CAST(${valueSql} AS VARCHAR)`;
  if (!levels.some((l) => l.includes('\0'))) {
    const enumType = `ENUM(${levels.map(quoteLiteral).join(', ')})`;
    return `COALESCE(CAST(enum_code(TRY_CAST(${value} AS ${enumType})) AS INTEGER), -1)`;
  }
  const escapeNul = (l: string) => l.replaceAll('\\', '\\\\').replaceAll('\0', '\\0');
  const enumType = `ENUM(${levels.map((l) => quoteLiteral(escapeNul(l))).join(', ')})`;
  const escaped = `replace(replace(${value}, '\\', '\\\\'), chr(0), '\\0')`;
  return `COALESCE(CAST(enum_code(TRY_CAST(${escaped} AS ${enumType})) AS INTEGER), -1)`;
}

/** SQL identifier, always quoted so column names with spaces or keywords work. */
export function sqlIdent(name: string): string {
  // An identifier cannot be an expression, so a NUL (a CSV header can hold one) is refused by name.
  if (name.includes('\0')) {
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      `column name '${name.replaceAll('\0', '\\0')}' contains a NUL byte; rename the column`,
    );
  }
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

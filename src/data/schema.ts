import type { DuckDBConnection } from '@duckdb/node-api';
import { KilnError } from '../errors.js';
import { readRows, sqlIdent } from './duckdb.js';
import type { LogicalType } from './spec.js';

/** One column of a dataset version as stored (normalised Parquet). */
export interface ColumnSchema {
  name: string;
  type: LogicalType;
  /** DuckDB type of the stored column (see STORAGE_TYPES). */
  storage: string;
  /** Sorted distinct values of a categorical column (the level table). */
  levels?: string[];
  /** Row-level expression this column was derived from, if it is a derived feature. */
  expr?: string;
  /** DuckDB type the expression evaluates to before storage (how serving formats levels). */
  exprType?: string;
}

export interface DatasetSchema {
  columns: ColumnSchema[];
}

/** How each logical type is stored in a version's Parquet file. */
export const STORAGE_TYPES: Record<LogicalType, string> = {
  numeric: 'DOUBLE',
  integer: 'BIGINT',
  boolean: 'BOOLEAN',
  categorical: 'VARCHAR',
  datetime: 'TIMESTAMP',
  text: 'VARCHAR',
};

/** Default: a string column with at most this many distinct values is categorical, else text. */
export const DEFAULT_MAX_LEVELS = 1000;

const INTEGER_TYPES = new Set([
  'TINYINT',
  'SMALLINT',
  'INTEGER',
  'BIGINT',
  'HUGEINT',
  'UTINYINT',
  'USMALLINT',
  'UINTEGER',
  'UBIGINT',
  'UHUGEINT',
]);

/**
 * The logical type DuckDB's physical type suggests; `undefined` for strings, which need a
 * distinct count to choose between categorical and text.
 */
export function logicalTypeOfDuckType(duckType: string): LogicalType | undefined | null {
  const t = duckType.toUpperCase();
  if (INTEGER_TYPES.has(t)) return 'integer';
  if (t === 'DOUBLE' || t === 'FLOAT' || t === 'REAL' || t.startsWith('DECIMAL')) return 'numeric';
  if (t === 'BOOLEAN') return 'boolean';
  if (t === 'DATE' || t.startsWith('TIMESTAMP')) return 'datetime';
  if (t === 'VARCHAR') return undefined;
  if (t.startsWith('ENUM')) return 'categorical';
  // Lists, structs, blobs and the like have no logical type here.
  return null;
}

export async function describeRelation(
  conn: DuckDBConnection,
  relationSql: string,
  place: string,
): Promise<{ name: string; type: string }[]> {
  const rows = await readRows(conn, `DESCRIBE ${relationSql}`, place);
  return rows.map((r) => ({ name: String(r.column_name), type: String(r.column_type) }));
}

/** Sorted, non-null distinct values of a column, as strings: a categorical level table. */
export async function readLevels(conn: DuckDBConnection, table: string, column: string): Promise<string[]> {
  const rows = await readRows(
    conn,
    `SELECT DISTINCT CAST(${sqlIdent(column)} AS VARCHAR) AS v FROM ${table} WHERE ${sqlIdent(column)} IS NOT NULL ORDER BY v`,
    column,
  );
  return rows.map((r) => String(r.v));
}

/** The canonical JSON used in content hashes: fixed key order, no whitespace. */
export function canonicalSchemaJson(schema: DatasetSchema): string {
  return JSON.stringify(
    schema.columns.map((c) => [c.name, c.type, c.storage, c.levels ?? null, c.expr ?? null]),
  );
}

export function findColumn(schema: DatasetSchema, name: string, place: string): ColumnSchema {
  const col =
    schema.columns.find((c) => c.name === name) ??
    schema.columns.find((c) => c.name.toLowerCase() === name.toLowerCase());
  if (!col) {
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      `${place}: column '${name}' does not exist (columns: ${schema.columns.map((c) => c.name).join(', ')})`,
    );
  }
  return col;
}

import type { DuckDBConnection } from '@duckdb/node-api';
import { KilnError } from '../errors.js';
import { levelCodeSql, readRows, sqlIdent, sqlString, withDuck } from './duckdb.js';
import { expressionToSql, validateRowExpression } from './expression.js';
import { type DatasetSchema, describeRelation, logicalTypeOfDuckType } from './schema.js';
import type { FeatureColumn, FeatureMatrix, LabelledMatrix } from './types.js';

/** A feature to materialise: a stored column, or a row-level expression over stored columns. */
export interface MatrixFeature {
  name: string;
  /** Row-level expression (see docs/data.md); default: the column called `name`. */
  expr?: string;
  /** Default: categorical for categorical/text/boolean-less strings, numeric otherwise. */
  kind?: 'numeric' | 'categorical';
}

export interface MatrixRequest {
  features: (string | MatrixFeature)[];
  /** Label column or expression; booleans become 0/1 with classes ['false', 'true']. */
  target?: string | MatrixFeature;
  /**
   * Fixed level tables by feature name, e.g. the training levels at scoring time: a value not
   * in the table gets code -1 (treated as missing by learners).
   */
  levels?: Record<string, string[]>;
  /** Class table for a categorical target (training classes at evaluation time). */
  classes?: string[];
  /** Store numeric features as Float32Array instead of Float64Array. */
  float32?: boolean;
  /** Row filter, a row-level boolean expression. */
  where?: string;
}

/**
 * Materialises features into typed arrays straight from DuckDB's result vectors: DuckDB does
 * the casting, null handling and categorical encoding (to ENUM codes), and each result chunk is
 * copied into the output arrays with one `TypedArray.set` per column. No JS value is created
 * per row, which is what makes this the fast path between data and training.
 *
 * `files` are Parquet (or any DuckDB-readable) paths; `schema` (when known) supplies recorded
 * level tables and types.
 */
export async function materializeMatrix(
  files: string | string[],
  request: MatrixRequest,
  schema?: DatasetSchema,
): Promise<LabelledMatrix> {
  const list = Array.isArray(files) ? files : [files];
  const relation = `read_parquet([${list.map(sqlString).join(', ')}])`;
  return withDuck(async (conn) =>
    materializeFromRelation(conn, relation, request, schema, await parquetRowPosition(conn, list)),
  );
}

/** Each source row's place among all source rows: `sql` gives 0 … total - 1, as INTEGER. */
export interface RowPosition {
  sql: string;
  total: number;
}

/**
 * Row positions of a `read_parquet` over `files`, in list order then file order, from DuckDB's
 * virtual columns (not part of `*`): file_index and file_row_number, offset by the row counts
 * of the files before (read from the Parquet footers).
 */
export async function parquetRowPosition(conn: DuckDBConnection, files: string[]): Promise<RowPosition> {
  const offsets: number[] = [];
  let total = 0;
  for (const file of files) {
    offsets.push(total);
    const [{ n }] = await readRows(
      conn,
      `SELECT count(*)::BIGINT AS n FROM read_parquet(${sqlString(file)})`,
      `matrix: ${file}`,
    );
    total += Number(n);
  }
  if (total > MAX_ROWS)
    throw new KilnError('INVALID_PARAMETER_VALUE', `matrix: ${total} rows is more than ${MAX_ROWS}`);
  const sql =
    files.length === 1
      ? 'CAST(file_row_number AS INTEGER)'
      : `CAST(file_row_number + [${offsets.join(', ')}][CAST(file_index AS BIGINT) + 1] AS INTEGER)`;
  return { sql, total };
}

/** Row positions are Int32 (and typed arrays of more rows would not fit in memory anyway). */
const MAX_ROWS = 2 ** 31 - 1;

interface PlannedColumn {
  name: string;
  kind: 'numeric' | 'categorical';
  sql: string;
  levels?: string[];
}

/**
 * As `materializeMatrix` over any DuckDB table expression. Output rows are in the order of
 * `position` (each source row's place, evaluated before the filter; see `parquetRowPosition`).
 *
 * The order is explicit because DuckDB's does not hold on its own: with more than one thread, a
 * filtered scan returned rows in an order that changed from one read (and process) to the next,
 * preserve_insertion_order notwithstanding, and seeded splits hash row positions. Each row's
 * position comes along as one more column. A filtered read is ORDER BY it; an unfiltered one is
 * not (sorting all 3M flights rows in DuckDB cost +50% CPU), and its rows are put in place
 * afterwards only if they did not arrive in order.
 */
export async function materializeFromRelation(
  conn: DuckDBConnection,
  relation: string,
  request: MatrixRequest,
  schema: DatasetSchema | undefined,
  position: RowPosition,
): Promise<LabelledMatrix> {
  const described = await describeRelation(conn, `(SELECT * FROM ${relation} LIMIT 0)`, relation);
  const available = described.map((c) => c.name);
  const duckTypeOf = new Map(described.map((c) => [c.name.toLowerCase(), c.type]));

  const features = request.features.map((f) => (typeof f === 'string' ? { name: f } : f));
  if (features.length === 0) throw new KilnError('INVALID_PARAMETER_VALUE', 'matrix: no features requested');
  const seen = new Set<string>();
  for (const f of features) {
    if (seen.has(f.name))
      throw new KilnError('INVALID_PARAMETER_VALUE', `matrix: feature '${f.name}' is listed twice`);
    seen.add(f.name);
  }
  const where = request.where
    ? expressionToSql(validateRowExpression(request.where, available, 'matrix: where'))
    : undefined;
  const from = `(SELECT *, ${position.sql} AS __kiln_position FROM ${relation}${where ? ` WHERE ${where}` : ''})`;

  const planned: PlannedColumn[] = [];
  for (const f of features) {
    const valueSql = featureSql(f, available, `matrix: feature '${f.name}'`);
    const duckType = await valueType(conn, from, f, valueSql, duckTypeOf);
    const recorded = schema?.columns.find((c) => c.name === f.name && !f.expr);
    const kind = f.kind ?? defaultKind(duckType, recorded?.type);
    if (kind === 'numeric') {
      if (logicalTypeOfDuckType(duckType) === undefined) {
        throw new KilnError(
          'INVALID_PARAMETER_VALUE',
          `matrix: feature '${f.name}' is a string column; use kind: categorical`,
        );
      }
      const cast = `CAST(${valueSql} AS ${request.float32 ? 'FLOAT' : 'DOUBLE'})`;
      planned.push({
        name: f.name,
        kind,
        sql: `COALESCE(${cast}, 'NaN'::${request.float32 ? 'FLOAT' : 'DOUBLE'})`,
      });
    } else {
      const levels =
        request.levels?.[f.name] ?? recorded?.levels ?? (await distinctLevels(conn, from, valueSql, f.name));
      planned.push({ name: f.name, kind, sql: enumCodeSql(valueSql, levels), levels });
    }
  }

  let targetPlan: { name: string; sql: string; classes?: string[] } | undefined;
  if (request.target) {
    const t = typeof request.target === 'string' ? { name: request.target } : request.target;
    const valueSql = featureSql(t, available, `matrix: target '${t.name}'`);
    const duckType = await valueType(conn, from, t, valueSql, duckTypeOf);
    const logical = logicalTypeOfDuckType(duckType);
    if (logical === 'boolean') {
      targetPlan = {
        name: t.name,
        sql: `COALESCE(CAST(${valueSql} AS DOUBLE), 'NaN'::DOUBLE)`,
        classes: ['false', 'true'],
      };
    } else if (logical === undefined || logical === 'categorical' || t.kind === 'categorical') {
      const recorded = schema?.columns.find((c) => c.name === t.name && !t.expr);
      const classes =
        request.classes ?? recorded?.levels ?? (await distinctLevels(conn, from, valueSql, t.name));
      const code = enumCodeSql(valueSql, classes);
      targetPlan = {
        name: t.name,
        sql: `CASE WHEN ${code} < 0 THEN 'NaN'::DOUBLE ELSE CAST(${code} AS DOUBLE) END`,
        classes,
      };
    } else {
      targetPlan = { name: t.name, sql: `COALESCE(CAST(${valueSql} AS DOUBLE), 'NaN'::DOUBLE)` };
    }
  }

  const [{ n }] = await readRows(conn, `SELECT count(*)::BIGINT AS n FROM ${from}`, 'matrix');
  const nRows = Number(n);
  const selects = [...planned.map((p) => p.sql), ...(targetPlan ? [targetPlan.sql] : [])];
  const outputs: (Float64Array | Float32Array | Int32Array)[] = planned.map((p) =>
    p.kind === 'categorical'
      ? new Int32Array(nRows)
      : request.float32
        ? new Float32Array(nRows)
        : new Float64Array(nRows),
  );
  if (targetPlan) outputs.push(new Float64Array(nRows));

  const positions = new Int32Array(nRows);
  selects.push('__kiln_position');
  // A filtered read is sorted by DuckDB (in parallel; its filtered scans were the ones seen out
  // of order); an unfiltered one arrives in order in practice and skips a sort of every row.
  const sql = `SELECT ${selects.map((s, i) => `${s} AS c${i}`).join(', ')} FROM ${from}${where ? ` ORDER BY c${selects.length - 1}` : ''}`;
  let filled: number;
  try {
    filled = await copyColumnsInto(conn, sql, [...outputs, positions]);
  } catch (e) {
    if (e instanceof KilnError) throw e;
    throw new KilnError('INVALID_PARAMETER_VALUE', `matrix: ${(e as Error).message.split('\n')[0]}`, {
      cause: e,
    });
  }
  if (filled !== nRows) {
    throw new KilnError(
      'INTERNAL_ERROR',
      `matrix: expected ${nRows} rows, read ${filled} (data changed while reading?)`,
    );
  }

  putInSourceOrder(outputs, positions, position.total);

  const columns: FeatureColumn[] = planned.map((p, i) =>
    p.kind === 'categorical'
      ? { kind: 'categorical', name: p.name, codes: outputs[i] as Int32Array, levels: p.levels! }
      : { kind: 'numeric', name: p.name, values: outputs[i] as Float64Array | Float32Array },
  );
  const result: LabelledMatrix = { x: { nRows, columns } };
  if (targetPlan) {
    result.y = outputs[planned.length] as Float64Array;
    result.targetName = targetPlan.name;
    if (targetPlan.classes) result.classes = targetPlan.classes;
  }
  return result;
}

/**
 * Moves rows into ascending order of `positions` (distinct values in [0, total)): a no-op when
 * they already are, else each row goes to its position's rank among the rows read, one scatter
 * per column through a scratch array (no sort: ranks come from a prefix count over `total`).
 */
export function putInSourceOrder(
  outputs: (Float64Array | Float32Array | Int32Array)[],
  positions: Int32Array,
  total: number,
): void {
  const n = positions.length;
  let ordered = true;
  for (let i = 1; i < n; i++) {
    if (positions[i] <= positions[i - 1]) {
      ordered = false;
      break;
    }
  }
  if (ordered) return;
  const rankOf = new Int32Array(total).fill(-1);
  for (let i = 0; i < n; i++) {
    const p = positions[i];
    if (p < 0 || p >= total || rankOf[p] !== -1)
      throw new KilnError('INTERNAL_ERROR', `matrix: row position ${p} is out of range or read twice`);
    rankOf[p] = 0;
  }
  for (let p = 0, r = 0; p < total; p++) if (rankOf[p] === 0) rankOf[p] = r++;
  const destination = new Int32Array(n);
  for (let i = 0; i < n; i++) destination[i] = rankOf[positions[i]];
  // One scratch array per element type, reused across the columns of that type.
  let f64: Float64Array | undefined;
  let f32: Float32Array | undefined;
  let i32: Int32Array | undefined;
  for (const column of outputs) {
    const buffer =
      column instanceof Float64Array
        ? (f64 ??= new Float64Array(n))
        : column instanceof Float32Array
          ? (f32 ??= new Float32Array(n))
          : (i32 ??= new Int32Array(n));
    for (let i = 0; i < n; i++) buffer[destination[i]] = column[i];
    column.set(buffer);
  }
}

function featureSql(f: MatrixFeature, available: string[], place: string): string {
  if (f.expr) return `(${expressionToSql(validateRowExpression(f.expr, available, place))})`;
  const match =
    available.find((c) => c === f.name) ?? available.find((c) => c.toLowerCase() === f.name.toLowerCase());
  if (!match) {
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      `${place}: column '${f.name}' does not exist (columns: ${available.join(', ')})`,
    );
  }
  return sqlIdent(match);
}

async function valueType(
  conn: DuckDBConnection,
  from: string,
  f: MatrixFeature,
  valueSql: string,
  duckTypeOf: Map<string, string>,
): Promise<string> {
  if (!f.expr) return duckTypeOf.get(f.name.toLowerCase()) ?? 'VARCHAR';
  const [col] = await describeRelation(conn, `(SELECT ${valueSql} AS v FROM ${from} LIMIT 0)`, f.name);
  return col.type;
}

function defaultKind(duckType: string, recorded: string | undefined): 'numeric' | 'categorical' {
  if (recorded === 'categorical' || recorded === 'text') return 'categorical';
  if (recorded) return 'numeric';
  const logical = logicalTypeOfDuckType(duckType);
  return logical === undefined || logical === 'categorical' ? 'categorical' : 'numeric';
}

async function distinctLevels(
  conn: DuckDBConnection,
  from: string,
  valueSql: string,
  name: string,
): Promise<string[]> {
  const rows = await readRows(
    conn,
    `SELECT DISTINCT CAST(${valueSql} AS VARCHAR) AS v FROM ${from} WHERE v IS NOT NULL ORDER BY v`,
    `matrix: feature '${name}'`,
  );
  return rows.map((r) => String(r.v));
}

/**
 * Code of a value in a level table via DuckDB's ENUM: TRY_CAST maps values outside the table to
 * NULL, which becomes -1 (unseen / missing).
 */
function enumCodeSql(valueSql: string, levels: string[]): string {
  const unique = [...new Set(levels)];
  if (unique.length !== levels.length)
    throw new KilnError('INVALID_PARAMETER_VALUE', 'matrix: a level table has duplicates');
  return levelCodeSql(valueSql, levels);
}

export type ColumnElement = 'f64' | 'f32' | 'i32';
type ChunkView = Float64Array | Float32Array | Int32Array;

/**
 * Streams `sql` and calls `onChunk` with each chunk's columns as typed-array views straight over
 * DuckDB's vectors (valid only during the call). Column j must have the DuckDB type matching
 * `elements[j]` (DOUBLE, FLOAT, INTEGER) and no NULLs (callers COALESCE): validity masks are not
 * read.
 */
export async function forEachChunk(
  conn: DuckDBConnection,
  sql: string,
  elements: ColumnElement[],
  onChunk: (columns: ChunkView[], size: number, offset: number) => void,
): Promise<number> {
  const { default: bindings } = await import('@duckdb/node-bindings');
  const result = await conn.stream(sql);
  let offset = 0;
  const views: ChunkView[] = new Array(elements.length);
  for (;;) {
    const chunk = await result.fetchChunk();
    if (!chunk) break;
    const size = chunk.rowCount;
    if (size === 0) break;
    for (let j = 0; j < elements.length; j++) {
      const vector = bindings.data_chunk_get_vector(chunk.chunk, j);
      const width = elements[j] === 'f64' ? 8 : 4;
      views[j] = viewAs(elements[j], bindings.vector_get_data(vector, size * width), size);
    }
    onChunk(views, size, offset);
    offset += size;
  }
  return offset;
}

/** Streams `sql` into preallocated `outputs`, one per result column, one `set` per chunk. */
export async function copyColumnsInto(
  conn: DuckDBConnection,
  sql: string,
  outputs: ChunkView[],
): Promise<number> {
  const elements = outputs.map(elementOf);
  return forEachChunk(conn, sql, elements, (views, size, offset) => {
    for (let j = 0; j < outputs.length; j++) {
      if (offset + size > outputs[j].length)
        throw new KilnError('INTERNAL_ERROR', 'matrix: more rows than counted');
      outputs[j].set(views[j], offset);
    }
  });
}

function elementOf(a: ChunkView): ColumnElement {
  return a instanceof Float64Array ? 'f64' : a instanceof Float32Array ? 'f32' : 'i32';
}

function viewAs(element: ColumnElement, bytes: Uint8Array, size: number): ChunkView {
  const width = element === 'f64' ? 8 : 4;
  const source = bytes.byteOffset % width === 0 ? bytes : bytes.slice();
  if (element === 'f64') return new Float64Array(source.buffer, source.byteOffset, size);
  if (element === 'f32') return new Float32Array(source.buffer, source.byteOffset, size);
  return new Int32Array(source.buffer, source.byteOffset, size);
}

/**
 * The level tables of a matrix's categorical columns, to materialise scoring data with the
 * training levels: `materializeMatrix(files, { ...request, levels: levelTables(train.x) })`.
 */
export function levelTables(matrix: FeatureMatrix): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const c of matrix.columns) if (c.kind === 'categorical') out[c.name] = [...c.levels];
  return out;
}

import { createHash } from 'node:crypto';
import { createReadStream, mkdtempSync, rmSync } from 'node:fs';
import path from 'node:path';
import type { DuckDBConnection } from '@duckdb/node-api';
import { KilnError } from '../errors.js';
import { stageInsideDataRoots, withServerPathsHidden } from './data-roots.js';
import { readRows, runSql, sqlIdent, sqlString, withDuck } from './duckdb.js';
import { expressionToSql, validateRowExpression } from './expression.js';
import { type LoadedSource, loadSource, type ResolvedSource, ROW_COLUMN, resolveSource } from './read.js';
import {
  type ColumnSchema,
  canonicalSchemaJson,
  type DatasetSchema,
  DEFAULT_MAX_LEVELS,
  describeRelation,
  logicalTypeOfDuckType,
  readLevels,
  STORAGE_TYPES,
} from './schema.js';
import { type DataSpec, featureExpression, type LogicalType } from './spec.js';

/** Column the reader adds so errors can name the file a bad row came from. */
const FILE_COLUMN = '__kiln_file';

export interface PreparedDataset {
  /** The normalised Parquet file (caller owns it and deletes it). */
  parquetPath: string;
  rows: number;
  schema: DatasetSchema;
  /** sha256 of canonical schema JSON + Parquet bytes: the content address. */
  hash: string;
  source: { pattern: string; files: string[]; format: string };
}

export interface PrepareOptions {
  spec?: DataSpec;
  /** Where the normalised Parquet file is written. */
  outPath: string;
  /** Names the spec in error messages. */
  specPlace?: string;
  /**
   * When set, every file read must be inside one of these folders (see data-roots.ts); the
   * files are then copied into `outPath`'s folder through the descriptor that was checked, so
   * a symlink swapped after the check cannot redirect the read.
   */
  confineTo?: string[];
}

/**
 * Reads a source file (or glob), applies the spec (type overrides, fixed levels, derived
 * features, select/drop), infers the schema and writes normalised Parquet to `outPath`.
 * Every error names the file, row and column concerned; nothing is written on error.
 */
export async function prepareDataset(pattern: string, options: PrepareOptions): Promise<PreparedDataset> {
  const spec = options.spec ?? {};
  const specPlace = options.specPlace ?? 'data spec';
  return withDuck(async (conn) => {
    const checked = await resolveSource(conn, pattern, spec.source, options.confineTo);
    if (!options.confineTo) return prepareResolved(conn, checked, checked, spec, specPlace, options);
    const stageDir = mkdtempSync(path.join(path.dirname(options.outPath), 'source-'));
    try {
      const staged = await stageInsideDataRoots(checked.files, checked.pattern, options.confineTo, stageDir);
      // Errors name the client's files, never the staged copies.
      const names = staged.map((copy, i) => [copy, checked.files[i] as string] as [string, string]);
      return await withServerPathsHidden(names, () =>
        prepareResolved(conn, { ...checked, files: staged }, checked, spec, specPlace, options),
      );
    } finally {
      rmSync(stageDir, { recursive: true, force: true });
    }
  });
}

/** `source` is what is read; `recorded` the files the version's provenance names. */
async function prepareResolved(
  conn: DuckDBConnection,
  source: ResolvedSource,
  recorded: ResolvedSource,
  spec: DataSpec,
  specPlace: string,
  options: PrepareOptions,
): Promise<PreparedDataset> {
  const pattern = recorded.pattern;
  const loaded = await loadSource(conn, withFileColumn(source), 'kiln_src');
  const rows = loaded.rows;
  const srcColumns = (await describeRelation(conn, 'kiln_src', pattern)).filter(
    (c) => c.name !== FILE_COLUMN && c.name !== ROW_COLUMN,
  );
  const srcNames = srcColumns.map((c) => c.name);

  for (const name of Object.keys(spec.columns ?? {}))
    requireColumn(srcNames, name, `${specPlace}: columns.${name}`);

  // Normalise source columns to their logical type's storage type.
  const maxLevels = spec.maxLevels ?? DEFAULT_MAX_LEVELS;
  const normalised: { name: string; type: LogicalType; sql: string }[] = [];
  for (const col of srcColumns) {
    const override = spec.columns?.[col.name]?.type;
    let type = override ?? logicalTypeOfDuckType(col.type);
    if (type === null) {
      throw new KilnError(
        'INVALID_PARAMETER_VALUE',
        `${pattern}: column '${col.name}' has type ${col.type}, which kiln cannot store; drop it or cast it in a feature`,
      );
    }
    if (type === undefined) type = await stringColumnType(conn, col.name, maxLevels);
    if (override) await checkCast(conn, source, loaded, col.name, col.type, type);
    normalised.push({ name: col.name, type, sql: castSql(sqlIdent(col.name), col.type, type) });
  }

  // Derived features are row-level expressions over the normalised source columns.
  const features: { name: string; expr: string; sql: string; type: LogicalType | undefined }[] = [];
  for (const [name, feature] of Object.entries(spec.features ?? {})) {
    const { expr, type } = featureExpression(feature);
    if (srcNames.some((n) => n.toLowerCase() === name.toLowerCase())) {
      throw new KilnError(
        'INVALID_PARAMETER_VALUE',
        `${specPlace}: features.${name}: a source column already has this name`,
      );
    }
    const parsed = validateRowExpression(expr, srcNames, `${specPlace}: features.${name}`);
    features.push({ name, expr, sql: expressionToSql(parsed), type });
  }

  const inner = `SELECT ${normalised.map((c) => `${c.sql} AS ${sqlIdent(c.name)}`).join(', ')} FROM kiln_src`;
  const allNames = [...normalised.map((c) => c.name), ...features.map((f) => f.name)];
  for (const name of [...(spec.select ?? []), ...(spec.drop ?? [])])
    requireColumn(allNames, name, `${specPlace}: select/drop`);
  if (spec.target) requireColumn(allNames, spec.target, `${specPlace}: target`);
  const keep = (spec.select ?? allNames).filter((n) => !(spec.drop ?? []).includes(n));
  if (keep.length === 0) {
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      `${specPlace}: ${spec.select ? 'select/drop' : 'drop'}: no column is left (${allNames.length} column(s), all dropped); a dataset needs at least one`,
    );
  }

  // Types of derived features come from DuckDB unless the spec declares them.
  const withFeatures = `SELECT *${features.map((f) => `, ${f.sql} AS ${sqlIdent(f.name)}`).join('')} FROM (${inner})`;
  const described = new Map(
    (await describeRelation(conn, `(${withFeatures} LIMIT 0)`, specPlace)).map((c) => [c.name, c.type]),
  );
  const columns: ColumnSchema[] = [];
  const outer: string[] = [];
  for (const name of keep) {
    const src = normalised.find((c) => c.name === name);
    const feature = features.find((f) => f.name === name);
    const duckType = described.get(name) ?? 'VARCHAR';
    let type: LogicalType;
    if (src) type = src.type;
    else {
      const inferred = feature?.type ?? logicalTypeOfDuckType(duckType);
      if (inferred === null) {
        throw new KilnError(
          'INVALID_PARAMETER_VALUE',
          `${specPlace}: features.${name}: result type ${duckType} cannot be stored`,
        );
      }
      type = inferred ?? 'categorical';
    }
    columns.push({
      name,
      type,
      storage: STORAGE_TYPES[type],
      ...(feature ? { expr: feature.expr, exprType: duckType } : {}),
    });
    outer.push(`${src ? sqlIdent(name) : castSql(sqlIdent(name), duckType, type)} AS ${sqlIdent(name)}`);
  }
  await runSql(
    conn,
    `CREATE OR REPLACE TEMP VIEW kiln_norm AS SELECT ${outer.join(', ')} FROM (${withFeatures})`,
    `${specPlace}: features`,
  );

  for (const col of columns) {
    if (col.type !== 'categorical') continue;
    const fixed = spec.columns?.[col.name]?.levels;
    const levels = await readLevels(conn, 'kiln_norm', col.name);
    if (fixed) {
      const allowed = new Set(fixed);
      const outside = levels.find((l) => !allowed.has(l));
      if (outside !== undefined) await throwValueOutsideLevels(conn, source, loaded, col.name, outside);
      col.levels = [...fixed];
    } else col.levels = levels;
  }

  await runSql(
    conn,
    `COPY kiln_norm TO ${sqlString(options.outPath)} (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 122880)`,
    options.outPath,
  );
  const schema: DatasetSchema = { columns };
  const hash = await contentHash(schema, options.outPath);
  return {
    parquetPath: options.outPath,
    rows,
    schema,
    hash,
    source: {
      pattern: recorded.pattern,
      files: recorded.files.map((f) => path.resolve(f)),
      format: source.format,
    },
  };
}

function withFileColumn(source: ResolvedSource): ResolvedSource {
  return { ...source, addFileColumn: FILE_COLUMN };
}

function requireColumn(names: string[], name: string, place: string): void {
  if (!names.includes(name)) {
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      `${place}: column '${name}' does not exist (columns: ${names.join(', ')})`,
    );
  }
}

async function stringColumnType(
  conn: DuckDBConnection,
  column: string,
  maxLevels: number,
): Promise<LogicalType> {
  const [{ n }] = await readRows(
    conn,
    `SELECT count(DISTINCT ${sqlIdent(column)})::BIGINT AS n FROM kiln_src`,
    column,
  );
  return Number(n) <= maxLevels ? 'categorical' : 'text';
}

function castSql(column: string, fromDuck: string, to: LogicalType): string {
  const storage = STORAGE_TYPES[to];
  if (fromDuck.toUpperCase() === storage) return column;
  if (to === 'datetime' && fromDuck.toUpperCase().startsWith('TIMESTAMP WITH')) {
    return `CAST(timezone('UTC', ${column}) AS TIMESTAMP)`;
  }
  // A double read as an integer must be a whole number; TRY_CAST + the check below refuse 2.5.
  return `TRY_CAST(${column} AS ${storage})`;
}

/** Finds the first value of `column` that does not parse as `to` and names its file, row and column. */
async function checkCast(
  conn: DuckDBConnection,
  source: ResolvedSource,
  loaded: LoadedSource,
  column: string,
  fromDuck: string,
  to: LogicalType,
): Promise<void> {
  const storage = STORAGE_TYPES[to];
  if (fromDuck.toUpperCase() === storage) return;
  const c = sqlIdent(column);
  const lossy =
    to === 'integer' && logicalTypeOfDuckType(fromDuck) === 'numeric'
      ? ` OR TRY_CAST(${c} AS DOUBLE) <> floor(TRY_CAST(${c} AS DOUBLE))`
      : '';
  const bad = await readRows(
    conn,
    `SELECT ${sqlIdent(FILE_COLUMN)} AS file, rid, CAST(${c} AS VARCHAR) AS v FROM
       (SELECT *, ${loaded.rowNumberSql} AS rid, ${loaded.orderSql} AS __kiln_order FROM kiln_src)
     WHERE ${c} IS NOT NULL AND (TRY_CAST(${c} AS ${storage}) IS NULL${lossy}) ORDER BY file, __kiln_order LIMIT 1`,
    column,
  );
  if (bad.length === 0) return;
  const { file, rid, v } = bad[0];
  throw new KilnError(
    'INVALID_PARAMETER_VALUE',
    `${file}: ${rowPlace(source, Number(rid))}, column '${column}': value '${v}' does not parse as ${to}`,
  );
}

async function throwValueOutsideLevels(
  conn: DuckDBConnection,
  source: ResolvedSource,
  loaded: LoadedSource,
  column: string,
  value: string,
): Promise<never> {
  const rows = await readRows(
    conn,
    `SELECT ${sqlIdent(FILE_COLUMN)} AS file, rid FROM
       (SELECT *, ${loaded.rowNumberSql} AS rid, ${loaded.orderSql} AS __kiln_order FROM kiln_src)
     WHERE CAST(${sqlIdent(column)} AS VARCHAR) = ${sqlString(value)} ORDER BY file, __kiln_order LIMIT 1`,
    column,
  );
  const where = rows.length > 0 ? `${rows[0].file}: ${rowPlace(source, Number(rows[0].rid))}, ` : '';
  throw new KilnError(
    'INVALID_PARAMETER_VALUE',
    `${where}column '${column}': value '${value}' is not one of the declared levels`,
  );
}

/** "row N" (1-based data row), plus the line number for a CSV with a header. */
function rowPlace(source: ResolvedSource, row: number): string {
  if (source.format === 'csv') return `row ${row} (line ${row + (source.csv?.header === false ? 0 : 1)})`;
  return `row ${row}`;
}

export async function contentHash(schema: DatasetSchema, parquetPath: string): Promise<string> {
  const hash = createHash('sha256');
  hash.update(canonicalSchemaJson(schema));
  hash.update('\n');
  for await (const chunk of createReadStream(parquetPath)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

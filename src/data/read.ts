import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { DuckDBConnection } from '@duckdb/node-api';
import { KilnError } from '../errors.js';
import { duckTypeOfArrow, jsonLiteral, readArrowIpc } from './arrow-ipc.js';
import { assertFilesInsideDataRoots, isGlobPattern } from './data-roots.js';
import { readRows, runSql, sqlIdent, sqlString } from './duckdb.js';
import type { CsvOptions, FileFormat, SourceSpec } from './spec.js';

export interface ResolvedSource {
  /** What the user named: a path or a glob. */
  pattern: string;
  files: string[];
  format: FileFormat;
  csv: CsvOptions | undefined;
  /** When set, the reader adds a column of this name holding each row's file path. */
  addFileColumn?: string;
}

const EXTENSION_FORMATS: Record<string, FileFormat> = {
  '.csv': 'csv',
  '.tsv': 'csv',
  '.txt': 'csv',
  '.parquet': 'parquet',
  '.pq': 'parquet',
  '.json': 'json',
  '.ndjson': 'ndjson',
  '.jsonl': 'ndjson',
  '.arrow': 'arrow',
  '.feather': 'arrow',
  '.ipc': 'arrow',
};

export function formatOfPath(file: string): FileFormat | undefined {
  const lower = file.toLowerCase().replace(/\.(gz|zst)$/, '');
  return EXTENSION_FORMATS[path.extname(lower)];
}

/**
 * Expands a path or glob to files, checking each exists and is non-empty, and settles the
 * format (declared, or from the extension). Errors name the path.
 */
export async function resolveSource(
  conn: DuckDBConnection,
  pattern: string,
  spec: SourceSpec = {},
  confineTo?: string[],
): Promise<ResolvedSource> {
  let files: string[];
  if (isGlobPattern(pattern)) {
    const rows = await readRows(conn, `SELECT file FROM glob(${sqlString(pattern)}) ORDER BY file`, pattern);
    files = rows.map((r) => String(r.file));
    if (files.length === 0)
      throw new KilnError('RESOURCE_DOES_NOT_EXIST', `${pattern}: no file matches this pattern`);
  } else {
    files = [pattern];
  }
  if (confineTo) assertFilesInsideDataRoots(files, pattern, confineTo);
  for (const file of files) {
    let size: number;
    try {
      const stat = statSync(file);
      if (stat.isDirectory())
        throw new KilnError('INVALID_PARAMETER_VALUE', `${file}: is a directory, not a file`);
      size = stat.size;
    } catch (e) {
      if (e instanceof KilnError) throw e;
      throw new KilnError('RESOURCE_DOES_NOT_EXIST', `${file}: file does not exist`);
    }
    if (size === 0) throw new KilnError('INVALID_PARAMETER_VALUE', `${file}: file is empty`);
  }
  const format = spec.format ?? formatOfPath(files[0]);
  if (!format) {
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      `${files[0]}: cannot tell the format from the extension; set source.format to one of csv, parquet, json, ndjson, arrow`,
    );
  }
  return { pattern, files, format, csv: spec.csv };
}

function fileColumnOption(source: ResolvedSource): string {
  return source.addFileColumn ? `, filename = ${sqlString(source.addFileColumn)}` : '';
}

function fileListSql(files: string[]): string {
  return `[${files.map(sqlString).join(', ')}]`;
}

function csvReaderSql(source: ResolvedSource, rejects: boolean): string {
  const csv = source.csv ?? { header: true };
  const tsv = source.files[0].toLowerCase().includes('.tsv');
  const options = [
    `header = ${csv.header === false ? 'false' : 'true'}`,
    `delim = ${sqlString(csv.delimiter ?? (tsv ? '\t' : ','))}`,
    `quote = ${sqlString(csv.quote ?? '"')}`,
    `escape = ${sqlString(csv.escape ?? csv.quote ?? '"')}`,
    'strict_mode = true',
    'null_padding = false',
    // Every file is read against the same column list; a file that disagrees is an error.
    'union_by_name = false',
  ];
  if (csv.nulls) options.push(`nullstr = [${csv.nulls.map(sqlString).join(', ')}]`);
  if (csv.dateformat) options.push(`dateformat = ${sqlString(csv.dateformat)}`);
  if (csv.timestampformat) options.push(`timestampformat = ${sqlString(csv.timestampformat)}`);
  if (rejects) options.push('store_rejects = true');
  return `read_csv(${fileListSql(source.files)}, ${options.join(', ')}${fileColumnOption(source)})`;
}

/** The DuckDB table expression that reads the source. */
export function sourceRelationSql(source: ResolvedSource, opts: { rejects?: boolean } = {}): string {
  switch (source.format) {
    case 'csv':
      return csvReaderSql(source, opts.rejects ?? false);
    case 'parquet':
      return `read_parquet(${fileListSql(source.files)}${fileColumnOption(source)})`;
    case 'json':
      return `read_json(${fileListSql(source.files)}, format = 'auto'${fileColumnOption(source)})`;
    case 'ndjson':
      return `read_json(${fileListSql(source.files)}, format = 'newline_delimited'${fileColumnOption(source)})`;
    case 'arrow':
      // Arrow goes through loadSource (kiln's own IPC reader), not a DuckDB table function.
      throw new KilnError('INTERNAL_ERROR', `${source.files[0]}: Arrow files are read by loadSource`);
  }
}

/** Column holding each row's 0-based position in its file, when the reader can give it. */
export const ROW_COLUMN = '__kiln_row';

export interface LoadedSource {
  rows: number;
  /** SQL over the loaded relation giving each row's 1-based number within its file. */
  rowNumberSql: string;
  /** SQL giving the order of rows within a file. */
  orderSql: string;
}

/**
 * Makes the source readable as `name` on `conn`, in file order. Parquet stays a view over the
 * files (DuckDB reads it again cheaply and knows each row's position); CSV and JSON are read once
 * into a temporary table. A CSV row with the wrong number of fields or a value that does not
 * parse stops the read with an error naming file, line and column; so does a source with no rows.
 */
export async function loadSource(
  conn: DuckDBConnection,
  source: ResolvedSource,
  name: string,
): Promise<LoadedSource> {
  const place = source.files.length === 1 ? source.files[0] : source.pattern;
  let loaded: Omit<LoadedSource, 'rows'>;
  if (source.format === 'arrow') {
    await loadArrowTable(conn, source, name);
    const partition = source.addFileColumn ? `PARTITION BY ${sqlIdent(source.addFileColumn)}` : '';
    loaded = { rowNumberSql: `rowid - min(rowid) OVER (${partition}) + 1`, orderSql: 'rowid' };
  } else if (source.format === 'parquet') {
    await runSql(
      conn,
      `CREATE OR REPLACE TEMP VIEW ${sqlIdent(name)} AS
         SELECT * EXCLUDE (file_row_number), file_row_number AS ${ROW_COLUMN}
           FROM read_parquet(${fileListSql(source.files)}, file_row_number = true${fileColumnOption(source)})`,
      place,
    );
    loaded = { rowNumberSql: `${ROW_COLUMN} + 1`, orderSql: ROW_COLUMN };
  } else {
    await runSql(
      conn,
      `CREATE OR REPLACE TEMP TABLE ${sqlIdent(name)} AS SELECT * FROM ${sourceRelationSql(source, { rejects: true })}`,
      place,
    );
    if (source.format === 'csv') await throwOnCsvRejects(conn, source);
    const partition = source.addFileColumn ? `PARTITION BY ${sqlIdent(source.addFileColumn)}` : '';
    loaded = { rowNumberSql: `rowid - min(rowid) OVER (${partition}) + 1`, orderSql: 'rowid' };
  }
  const [{ n }] = await readRows(conn, `SELECT count(*)::BIGINT AS n FROM ${sqlIdent(name)}`, place);
  if (Number(n) === 0) throw new KilnError('INVALID_PARAMETER_VALUE', `${place}: file has no data rows`);
  return { rows: Number(n), ...loaded };
}

async function throwOnCsvRejects(conn: DuckDBConnection, source: ResolvedSource): Promise<void> {
  const rows = await readRows(
    conn,
    `SELECT s.file_path, e.line, e.column_idx, e.column_name, e.error_type, e.csv_line, e.error_message
       FROM reject_errors e JOIN reject_scans s USING (scan_id, file_id)
      ORDER BY s.file_path, e.line LIMIT 5`,
    source.pattern,
  );
  if (rows.length === 0) return;
  const first = rows[0];
  const [{ n }] = await readRows(conn, 'SELECT count(*)::INTEGER AS n FROM reject_errors', source.pattern);
  const where = `${first.file_path}: line ${first.line}${first.column_name ? `, column '${first.column_name}'` : ''}`;
  const what =
    first.error_type === 'CAST'
      ? String(first.error_message)
      : `wrong number of fields (${String(first.error_message).replace('Expected Number of Columns', 'expected')})`;
  throw new KilnError(
    'INVALID_PARAMETER_VALUE',
    `${where}: ${what}; row was: ${String(first.csv_line).slice(0, 200)}${Number(n) > 1 ? ` (${n} bad rows in all)` : ''}`,
  );
}

/**
 * Arrow IPC through kiln's reader (DuckDB's arrow extension is not available): each file is
 * decoded and written as NDJSON with every column's type declared, then read into `name`.
 */
async function loadArrowTable(conn: DuckDBConnection, source: ResolvedSource, name: string): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kiln-arrow-'));
  try {
    let columns: { name: string; duck: string }[] | undefined;
    const outputs: string[] = [];
    source.files.forEach((file, index) => {
      const table = readArrowIpc(readFileSync(file), file);
      const these = table.fields.map((f) => ({ name: f.name, duck: duckTypeOfArrow(f.type) }));
      if (columns && JSON.stringify(columns) !== JSON.stringify(these)) {
        throw new KilnError(
          'INVALID_PARAMETER_VALUE',
          `${file}: its columns differ from ${source.files[0]}'s`,
        );
      }
      columns = these;
      const out = path.join(dir, `${index}.ndjson`);
      const fd = openSync(out, 'w');
      try {
        const keys = table.fields.map((f) => `${JSON.stringify(f.name)}:`);
        const fileEntry = source.addFileColumn
          ? `,${JSON.stringify(source.addFileColumn)}:${JSON.stringify(file)}`
          : '';
        for (const batch of table.batches) {
          const lines: string[] = [];
          for (let i = 0; i < batch.length; i++) {
            let line = '{';
            for (let j = 0; j < batch.columns.length; j++) {
              const col = batch.columns[j];
              const v = col.valid(i) ? jsonLiteral(table.fields[j].type, col.value(i)) : 'null';
              line += `${j > 0 ? ',' : ''}${keys[j]}${v}`;
            }
            lines.push(`${line}${fileEntry}}`);
          }
          if (lines.length > 0) writeSync(fd, `${lines.join('\n')}\n`);
        }
      } finally {
        closeSync(fd);
      }
      outputs.push(out);
    });
    const declared = [
      ...(columns ?? []),
      ...(source.addFileColumn ? [{ name: source.addFileColumn, duck: 'VARCHAR' }] : []),
    ];
    const columnsSql = `{${declared.map((c) => `${sqlString(c.name)}: ${sqlString(c.duck)}`).join(', ')}}`;
    await runSql(
      conn,
      `CREATE OR REPLACE TEMP TABLE ${sqlIdent(name)} AS
         SELECT * FROM read_json(${fileListSql(outputs)}, format = 'newline_delimited', columns = ${columnsSql})`,
      source.files.length === 1 ? source.files[0] : source.pattern,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

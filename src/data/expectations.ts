import type { DuckDBConnection } from '@duckdb/node-api';
import { z } from 'zod';
import { KilnError } from '../errors.js';
import { readRows, sqlIdent, sqlString, toJsonRow, withDuck } from './duckdb.js';
import { expressionToSql, validateRowExpression } from './expression.js';
import { type DatasetSchema, findColumn } from './schema.js';
import { LOGICAL_TYPES, readYamlFile } from './spec.js';

/**
 * Expectations: declarative checks on a dataset, written in YAML as a list under
 * `expectations:`. Each item names one check (and a column where the check is per column);
 * see docs/data.md for the full table.
 */
const scalar = z.union([z.string(), z.number(), z.boolean()]);
const range = z
  .object({ min: z.number().optional(), max: z.number().optional() })
  .strict()
  .refine((r) => r.min !== undefined || r.max !== undefined, 'give min, max or both');

export const expectationSchema = z
  .object({
    name: z.string().optional(),
    column: z.string().optional(),
    not_null: z.literal(true).optional(),
    between: range.optional(),
    in_set: z.array(scalar).min(1).optional(),
    unique: z.literal(true).optional(),
    regex: z.string().optional(),
    max_missing_share: z.number().min(0).max(1).optional(),
    row_count: range.optional(),
    exists: z.literal(true).optional(),
    type: z.enum(LOGICAL_TYPES).optional(),
    /** A row-level boolean expression every row must satisfy (the feature-expression subset). */
    sql: z.string().optional(),
  })
  .strict();
export type Expectation = z.infer<typeof expectationSchema>;

export const CHECKS = [
  'not_null',
  'between',
  'in_set',
  'unique',
  'regex',
  'max_missing_share',
  'row_count',
  'exists',
  'type',
  'sql',
] as const;
export type CheckName = (typeof CHECKS)[number];
const COLUMN_CHECKS = new Set<CheckName>([
  'not_null',
  'between',
  'in_set',
  'unique',
  'regex',
  'max_missing_share',
  'exists',
  'type',
]);

export const expectationSuiteSchema = z.object({ expectations: z.array(expectationSchema) }).strict();
export type ExpectationSuite = z.infer<typeof expectationSuiteSchema>;

export function parseExpectations(value: unknown, place = 'expectations'): Expectation[] {
  const parsed = expectationSuiteSchema.safeParse(value);
  if (!parsed.success) throw KilnError.fromZod(place, parsed.error, value);
  parsed.data.expectations.forEach((e, i) => {
    const checks = checksOf(e);
    const where = `${place}: expectations[${i}]`;
    if (checks.length !== 1) {
      throw new KilnError(
        'INVALID_PARAMETER_VALUE',
        `${where}: give exactly one check (one of ${CHECKS.join(', ')}), found ${checks.length === 0 ? 'none' : checks.join(', ')}`,
      );
    }
    if (COLUMN_CHECKS.has(checks[0]) && !e.column)
      throw new KilnError('INVALID_PARAMETER_VALUE', `${where}: ${checks[0]} needs a column`);
    if (e.regex !== undefined) {
      try {
        new RegExp(e.regex);
      } catch (err) {
        throw new KilnError(
          'INVALID_PARAMETER_VALUE',
          `${where}: regex is not valid: ${(err as Error).message}`,
        );
      }
    }
  });
  return parsed.data.expectations;
}

export function loadExpectations(file: string): Expectation[] {
  return parseExpectations(readYamlFile(file), file);
}

function checksOf(e: Expectation): CheckName[] {
  return CHECKS.filter((c) => e[c] !== undefined);
}

export interface ExpectationResult {
  name: string;
  check: CheckName;
  column?: string;
  passed: boolean;
  /** Rows that fail a row-level check; for aggregate checks, the rows that make it fail. */
  failingCount: number;
  failingShare: number;
  /** Up to 5 failing rows, each with its 0-based `__row` position. */
  sampleRows: Record<string, unknown>[];
  /** What was observed, for aggregate checks (row count, missing share, actual type). */
  observed?: unknown;
  message: string;
}

export interface ValidationReport {
  passed: boolean;
  rows: number;
  results: ExpectationResult[];
  checkedAt: string;
}

const SAMPLE_ROWS = 5;

/** Runs expectations against stored Parquet (a dataset version) with its schema. */
export async function validateParquet(
  files: string | string[],
  schema: DatasetSchema,
  expectations: Expectation[],
): Promise<ValidationReport> {
  const list = Array.isArray(files) ? files : [files];
  const relation = `(SELECT file_row_number AS __row, * EXCLUDE (file_row_number) FROM read_parquet([${list.map(sqlString).join(', ')}], file_row_number = true))`;
  return withDuck((conn) => validateRelation(conn, relation, schema, expectations));
}

export async function validateRelation(
  conn: DuckDBConnection,
  relation: string,
  schema: DatasetSchema,
  expectations: Expectation[],
): Promise<ValidationReport> {
  const [{ n }] = await readRows(conn, `SELECT count(*)::BIGINT AS n FROM ${relation}`, 'validate');
  const rows = Number(n);
  const results: ExpectationResult[] = [];
  for (const e of expectations) results.push(await runExpectation(conn, relation, schema, rows, e));
  return { passed: results.every((r) => r.passed), rows, results, checkedAt: new Date().toISOString() };
}

async function runExpectation(
  conn: DuckDBConnection,
  relation: string,
  schema: DatasetSchema,
  rows: number,
  e: Expectation,
): Promise<ExpectationResult> {
  const check = checksOf(e)[0];
  const name = e.name ?? `${check}${e.column ? `(${e.column})` : ''}`;
  const base = { name, check, ...(e.column ? { column: e.column } : {}) };
  const place = `expectation '${name}'`;

  if (check === 'row_count') {
    const r = e.row_count!;
    const passed = (r.min === undefined || rows >= r.min) && (r.max === undefined || rows <= r.max);
    return {
      ...base,
      passed,
      failingCount: 0,
      failingShare: 0,
      sampleRows: [],
      observed: rows,
      message: passed
        ? `row count ${rows} is within range`
        : `row count ${rows} is outside [${r.min ?? '-∞'}, ${r.max ?? '∞'}]`,
    };
  }
  const exists = schema.columns.find((c) => c.name === e.column);
  if (check === 'exists') {
    return {
      ...base,
      passed: exists !== undefined,
      failingCount: 0,
      failingShare: 0,
      sampleRows: [],
      message: exists ? `column '${e.column}' exists` : `column '${e.column}' does not exist`,
    };
  }
  if (check === 'type') {
    const passed = exists?.type === e.type;
    return {
      ...base,
      passed,
      failingCount: 0,
      failingShare: 0,
      sampleRows: [],
      observed: exists?.type ?? null,
      message: exists
        ? `column '${e.column}' is ${exists.type}${passed ? '' : `, expected ${e.type}`}`
        : `column '${e.column}' does not exist`,
    };
  }
  // The remaining checks read the column; a missing column is a failed check, not a crash.
  if (e.column && !exists) {
    return {
      ...base,
      passed: false,
      failingCount: rows,
      failingShare: rows > 0 ? 1 : 0,
      sampleRows: [],
      message: `column '${e.column}' does not exist`,
    };
  }
  const col = e.column ? findColumn(schema, e.column, place) : undefined;
  const c = col ? sqlIdent(col.name) : '';
  const numeric = col !== undefined && col.type !== 'categorical' && col.type !== 'text';
  let failing: string;
  let describe: (count: number) => string;
  switch (check) {
    case 'not_null':
      failing = `${c} IS NULL`;
      describe = (k) => `${k} null values`;
      break;
    case 'between': {
      const r = e.between!;
      if (!numeric)
        throw new KilnError(
          'INVALID_PARAMETER_VALUE',
          `${place}: between needs a numeric column, '${col!.name}' is ${col!.type}`,
        );
      const v = col!.type === 'datetime' ? `epoch_ms(${c})` : c;
      const parts = [];
      if (r.min !== undefined) parts.push(`${v} < ${r.min}`);
      if (r.max !== undefined) parts.push(`${v} > ${r.max}`);
      failing = `(${parts.join(' OR ')})`;
      describe = (k) => `${k} values outside [${r.min ?? '-∞'}, ${r.max ?? '∞'}]`;
      break;
    }
    case 'in_set': {
      const values = e.in_set!;
      const list = numeric
        ? values.map((v) =>
            typeof v === 'number' ? String(v) : typeof v === 'boolean' ? String(v) : sqlString(v),
          )
        : values.map((v) => sqlString(String(v)));
      failing = `${c} IS NOT NULL AND ${numeric ? c : `CAST(${c} AS VARCHAR)`} NOT IN (${list.join(', ')})`;
      describe = (k) => `${k} values not in the set`;
      break;
    }
    case 'unique':
      failing = `${c} IS NOT NULL AND ${c} IN (SELECT ${c} FROM ${relation} GROUP BY ${c} HAVING count(*) > 1)`;
      describe = (k) => `${k} rows share their value with another row`;
      break;
    case 'regex':
      failing = `${c} IS NOT NULL AND NOT regexp_full_match(CAST(${c} AS VARCHAR), ${sqlString(e.regex!)})`;
      describe = (k) => `${k} values do not match /${e.regex}/`;
      break;
    case 'max_missing_share': {
      failing = `${c} IS NULL`;
      const [{ k }] = await readRows(
        conn,
        `SELECT count(*)::BIGINT AS k FROM ${relation} WHERE ${failing}`,
        place,
      );
      const missing = Number(k);
      const share = rows > 0 ? missing / rows : 0;
      const passed = share <= e.max_missing_share!;
      return {
        ...base,
        passed,
        failingCount: passed ? 0 : missing,
        failingShare: passed ? 0 : share,
        sampleRows: passed ? [] : await sample(conn, relation, failing, place),
        observed: share,
        message: `missing share ${share.toFixed(6)} ${passed ? '≤' : '>'} ${e.max_missing_share}`,
      };
    }
    case 'sql': {
      const available = schema.columns.map((x) => x.name);
      const expr = expressionToSql(validateRowExpression(e.sql!, available, place));
      failing = `NOT COALESCE(${expr}, FALSE)`;
      describe = (k) => `${k} rows do not satisfy ${e.sql}`;
      break;
    }
    default:
      throw new KilnError('INTERNAL_ERROR', `${place}: unknown check ${check}`);
  }
  const [{ k }] = await readRows(
    conn,
    `SELECT count(*)::BIGINT AS k FROM ${relation} WHERE ${failing}`,
    place,
  );
  const failingCount = Number(k);
  return {
    ...base,
    passed: failingCount === 0,
    failingCount,
    failingShare: rows > 0 ? failingCount / rows : 0,
    sampleRows: failingCount > 0 ? await sample(conn, relation, failing, place) : [],
    message: failingCount === 0 ? 'passed' : describe(failingCount),
  };
}

async function sample(conn: DuckDBConnection, relation: string, failing: string, place: string) {
  const reader = await conn
    .runAndReadAll(`SELECT * FROM ${relation} WHERE ${failing} ORDER BY __row LIMIT ${SAMPLE_ROWS}`)
    .catch((err) => {
      throw new KilnError('INVALID_PARAMETER_VALUE', `${place}: ${(err as Error).message.split('\n')[0]}`);
    });
  return (reader.getRowObjectsJS() as Record<string, unknown>[]).map(toJsonRow);
}

/** A plain-text rendering of a report for the CLI. */
export function formatReport(report: ValidationReport): string {
  const lines = [
    `${report.passed ? 'PASSED' : 'FAILED'}: ${report.results.filter((r) => r.passed).length}/${report.results.length} expectations on ${report.rows} rows`,
  ];
  for (const r of report.results) {
    lines.push(
      `  ${r.passed ? 'pass' : 'FAIL'}  ${r.name}: ${r.message}${r.passed || r.failingCount === 0 ? '' : ` (${r.failingCount} rows, ${(r.failingShare * 100).toFixed(3)}%)`}`,
    );
    for (const row of r.sampleRows) lines.push(`          ${JSON.stringify(row)}`);
  }
  return lines.join('\n');
}

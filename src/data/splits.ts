import { z } from 'zod';
import { KilnError } from '../errors.js';
import { readRows, runSql, sqlIdent, sqlString, withDuck } from './duckdb.js';
import { materializeMatrix, parquetRowPosition } from './matrix.js';
import { type DatasetSchema, findColumn } from './schema.js';
import type { CategoricalColumn } from './types.js';

/**
 * The one split definition of kiln. `kiln data split` (splitParquet, over a stored dataset
 * version) and a training spec's `split` (pipeline/train/load-data.ts, over the matrix it
 * holds) both assign rows with the functions below, so the same seed over the same rows picks
 * the same rows in each part whichever path runs it (test/split-paths.test.ts). All are
 * deterministic for a given seed, on every platform:
 * - random: rows ordered by a seeded hash of their position, cut at the fractions (exact sizes);
 * - stratified: the same within each stratum (a value of `column`, or a training run's label),
 *   so every part keeps the class shares;
 * - time: rows with `column` < `cutoff` first, the rest second (or cut at time quantiles when
 *   `fractions` is given instead of a cutoff); no seed;
 * - group: whole groups (all rows with one value of `column`) go to one part, groups ordered by a
 *   seeded hash of the group's value and cut where the cumulative row share crosses the fractions.
 *
 * A row's position is its place among the rows being split, in source order (list order, then
 * file order): the data layer keeps that order for every read (src/data/matrix.ts;
 * test/data-row-order.test.ts). A training spec's `data.where` filters before splitting, so
 * positions there count the rows kept.
 */
const fractions = z.record(z.string().regex(/^[A-Za-z0-9_.-]+$/), z.number().positive());

export const splitSpecSchema = z.discriminatedUnion('method', [
  z.object({ method: z.literal('random'), fractions, seed: z.number().int().default(0) }).strict(),
  z
    .object({
      method: z.literal('stratified'),
      column: z.string(),
      fractions,
      seed: z.number().int().default(0),
    })
    .strict(),
  z
    .object({
      method: z.literal('time'),
      column: z.string(),
      cutoff: z.union([z.string(), z.number()]).optional(),
      fractions: fractions.optional(),
      names: z.tuple([z.string(), z.string()]).optional(),
    })
    .strict(),
  z
    .object({ method: z.literal('group'), column: z.string(), fractions, seed: z.number().int().default(0) })
    .strict(),
]);
export type SplitSpec = z.input<typeof splitSpecSchema>;
type ParsedSplit = z.output<typeof splitSpecSchema>;

export function parseSplitSpec(value: unknown, place = 'split'): ParsedSplit {
  const parsed = splitSpecSchema.safeParse(value);
  if (!parsed.success) throw KilnError.fromZod(place, parsed.error, value);
  const spec = parsed.data;
  if (spec.method === 'time' && (spec.cutoff === undefined) === (spec.fractions === undefined)) {
    throw new KilnError('INVALID_PARAMETER_VALUE', `${place}: a time split takes either cutoff or fractions`);
  }
  const f = 'fractions' in spec ? spec.fractions : undefined;
  if (f) {
    const names = Object.keys(f);
    if (names.length < 2) throw new KilnError('INVALID_PARAMETER_VALUE', `${place}: give at least two parts`);
    const total = Object.values(f).reduce((s, x) => s + x, 0);
    if (Math.abs(total - 1) > 1e-9)
      throw new KilnError('INVALID_PARAMETER_VALUE', `${place}: fractions sum to ${total}, not 1`);
  }
  return spec;
}

/** Deterministic uniform [0, 1) from (seed, key): splitmix-style integer hash. */
function unitHash(seed: number, key: number): number {
  let h = (Math.imul(key ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(seed + 0x632be5ab, 0xc2b2ae35)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d) >>> 0;
  h = Math.imul(h ^ (h >>> 15), 0x846ca68b) >>> 0;
  h = (h ^ (h >>> 16)) >>> 0;
  return h / 4294967296;
}

/**
 * Exact-size parts: rows ordered by a seeded hash of their index and cut at the cumulative
 * shares, so the same seed gives the same rows in each part.
 */
export function randomAssignment(n: number, shares: number[], seed: number): Uint8Array {
  const order = new Int32Array(n);
  const keys = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    order[i] = i;
    keys[i] = unitHash(seed, i);
  }
  order.sort((a, b) => keys[a]! - keys[b]! || a - b);
  return cutByShares(order, n, shares);
}

function cutByShares(order: Int32Array, n: number, shares: number[]): Uint8Array {
  const out = new Uint8Array(n);
  const total = shares.reduce((s, x) => s + x, 0);
  let start = 0;
  let cum = 0;
  for (let p = 0; p < shares.length; p++) {
    cum += shares[p]!;
    const end = p === shares.length - 1 ? n : Math.round((cum / total) * n);
    for (let k = start; k < end; k++) out[order[k]!] = p;
    start = end;
  }
  return out;
}

/**
 * As randomAssignment, within each stratum (rows with equal `strata` values: label values, or a
 * column's category codes), so every part keeps the class shares. Only which rows share a
 * stratum matters, not the values, so codes and labels of the same column split alike.
 */
export function stratifiedAssignment(strata: ArrayLike<number>, shares: number[], seed: number): Uint8Array {
  const n = strata.length;
  const byClass = new Map<number, number[]>();
  for (let i = 0; i < n; i++) {
    // NaN (a missing label) is a stratum of its own.
    const key = Number.isNaN(strata[i]!) ? Number.NEGATIVE_INFINITY : strata[i]!;
    let list = byClass.get(key);
    if (!list) byClass.set(key, (list = []));
    list.push(i);
  }
  const out = new Uint8Array(n);
  for (const rows of byClass.values()) {
    const order = Int32Array.from(rows);
    order.sort((a, b) => unitHash(seed, a) - unitHash(seed, b) || a - b);
    const local = cutByShares(Int32Array.from(order.keys()), order.length, shares);
    for (let k = 0; k < order.length; k++) out[order[k]!] = local[k]!;
  }
  return out;
}

/**
 * Whole groups go to one part: groups in seeded-hash order, cut where the row share crosses.
 * `codes` index `levels` (-1: missing, a group of its own); a group is hashed by its level
 * string, so the parts do not depend on how a reader happened to number the levels.
 */
export function groupAssignment(
  codes: Int32Array,
  levels: readonly string[],
  shares: number[],
  seed: number,
): Uint8Array {
  const nGroups = levels.length;
  const counts = new Float64Array(nGroups + 1);
  for (let i = 0; i < codes.length; i++) counts[codes[i]! + 1]! += 1;
  // Slot 0 is the missing group; slot g + 1 is levels[g].
  const key = Float64Array.from({ length: nGroups + 1 }, (_, g) =>
    unitHash(seed, g === 0 ? 0x7fffffff : stringHash(levels[g - 1]!)),
  );
  const name = (g: number) => (g === 0 ? '' : levels[g - 1]!);
  const groups = Int32Array.from({ length: nGroups + 1 }, (_, g) => g);
  groups.sort((a, b) => key[a]! - key[b]! || (name(a) < name(b) ? -1 : name(a) > name(b) ? 1 : a - b));
  const partOfGroup = new Uint8Array(nGroups + 1);
  const total = shares.reduce((s, x) => s + x, 0);
  let cum = 0;
  for (const g of groups) {
    const share = cum / codes.length;
    let p = 0;
    let edge = 0;
    for (; p < shares.length - 1; p++) {
      edge += shares[p]! / total;
      if (share < edge) break;
    }
    partOfGroup[g] = p;
    cum += counts[g]!;
  }
  const out = new Uint8Array(codes.length);
  for (let i = 0; i < codes.length; i++) out[i] = partOfGroup[codes[i]! + 1]!;
  return out;
}

/** FNV-1a over the UTF-16 code units: a group's key, independent of its level code. */
function stringHash(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  return h | 0;
}

/** Part names in order. */
export function splitPartNames(spec: ParsedSplit): string[] {
  if (spec.method === 'time' && spec.cutoff !== undefined) return spec.names ?? ['train', 'test'];
  return Object.keys((spec as { fractions: Record<string, number> }).fractions);
}

export interface SplitPart {
  name: string;
  rows: number;
  path: string;
}

/** SQL CASE that maps a share in [0, 1) to a part index by cumulative fractions. */
function partCase(share: string, fractionList: number[]): string {
  let cum = 0;
  const whens = fractionList.slice(0, -1).map((f, i) => {
    cum += f;
    return `WHEN ${share} < ${cum} THEN ${i}`;
  });
  return `CASE ${whens.join(' ')} ELSE ${fractionList.length - 1} END`;
}

/** Column of a split's source holding each row's position (see parquetRowPosition). */
const ROW = '__kiln_split_row';

/** A column reference in the row-expression language (double quotes when not a plain name). */
function quoteColumn(name: string): string {
  return /^[A-Za-z_][A-Za-z0-9_]*$/.test(name) ? name : `"${name.replace(/"/g, '""')}"`;
}

/**
 * Writes each part of `files` (a version's Parquet) to `outDir/<part>.parquet`, rows in their
 * original order. Returns the parts with their row counts.
 */
export async function splitParquet(
  files: string | string[],
  schema: DatasetSchema,
  specInput: SplitSpec,
  outPathOf: (part: string) => string,
): Promise<SplitPart[]> {
  const spec = parseSplitSpec(specInput);
  const list = Array.isArray(files) ? files : [files];
  const names = splitPartNames(spec);
  // Seeded methods assign rows in memory with the functions above (the same ones a training
  // run uses); only the column they need is read, as typed arrays.
  let assign: Uint8Array | undefined;
  if (spec.method !== 'time') {
    const shares = names.map((n) => spec.fractions[n]!);
    if (spec.method === 'random') {
      const n = await withDuck(async (conn) => (await parquetRowPosition(conn, list)).total);
      assign = randomAssignment(n, shares, spec.seed);
    } else {
      const column = findColumn(schema, spec.column, 'split');
      const key = await materializeMatrix(
        list,
        { features: [{ name: '__kiln_split_key', expr: quoteColumn(column.name), kind: 'categorical' }] },
        schema,
      );
      const col = key.x.columns[0] as CategoricalColumn;
      assign =
        spec.method === 'stratified'
          ? stratifiedAssignment(col.codes, shares, spec.seed)
          : groupAssignment(col.codes, col.levels, shares, spec.seed);
    }
  }
  return withDuck(async (conn) => {
    const position = await parquetRowPosition(conn, list);
    const source = `(SELECT *, ${position.sql} AS ${ROW} FROM read_parquet([${list.map(sqlString).join(', ')}]))`;
    if (assign) {
      await runSql(conn, 'CREATE OR REPLACE TEMP TABLE kiln_split (__row INTEGER, __part UTINYINT)', 'split');
      const appender = await conn.createAppender('kiln_split');
      for (let r = 0; r < assign.length; r++) {
        appender.appendInteger(r);
        appender.appendUTinyInt(assign[r]!);
        appender.endRow();
      }
      appender.closeSync();
    } else if (spec.method === 'time') {
      const column = findColumn(schema, spec.column, 'split');
      const col = sqlIdent(column.name);
      let partSql: string;
      if (spec.cutoff !== undefined) {
        if (typeof spec.cutoff === 'string' && column.type === 'datetime') {
          const [{ bad }] = await readRows(
            conn,
            `SELECT TRY_CAST(${sqlString(spec.cutoff)} AS TIMESTAMP) IS NULL AS bad`,
            'split: cutoff',
          );
          if (bad) {
            throw new KilnError(
              'INVALID_PARAMETER_VALUE',
              `split: cutoff '${spec.cutoff.slice(0, 60)}' is not a date or timestamp (column '${column.name}' holds datetimes; e.g. 2001-04-01)`,
            );
          }
        }
        const cutoff =
          typeof spec.cutoff === 'number'
            ? String(spec.cutoff)
            : column.type === 'datetime'
              ? `CAST(${sqlString(spec.cutoff)} AS TIMESTAMP)`
              : sqlString(spec.cutoff);
        partSql = `SELECT ${ROW} AS __row, CASE WHEN ${col} < ${cutoff} THEN 0 ELSE 1 END AS __part FROM ${source}`;
      } else {
        const f = names.map((n) => spec.fractions![n]);
        // Ties in time stay together: rank by time, share = rows strictly earlier / all rows.
        partSql = `SELECT ${ROW} AS __row, ${partCase(`(rank() OVER (ORDER BY ${col}) - 1) / count(*) OVER ()`, f)} AS __part FROM ${source}`;
      }
      await runSql(conn, `CREATE OR REPLACE TEMP TABLE kiln_split AS ${partSql}`, 'split');
    }
    const parts: SplitPart[] = [];
    for (let i = 0; i < names.length; i++) {
      const out = outPathOf(names[i]);
      await runSql(
        conn,
        `COPY (SELECT s.* EXCLUDE (${ROW}) FROM ${source} s JOIN kiln_split p ON p.__row = s.${ROW}
               WHERE p.__part = ${i} ORDER BY s.${ROW})
         TO ${sqlString(out)} (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 122880)`,
        `split part '${names[i]}'`,
      );
      const [{ n }] = await readRows(
        conn,
        `SELECT count(*)::BIGINT AS n FROM kiln_split WHERE __part = ${i}`,
        'split',
      );
      parts.push({ name: names[i], rows: Number(n), path: out });
    }
    return parts;
  });
}

import { z } from 'zod';
import { KilnError } from '../errors.js';
import { readRows, runSql, sqlIdent, sqlString, withDuck } from './duckdb.js';
import { type DatasetSchema, findColumn } from './schema.js';

/**
 * Splits, all deterministic for a given seed (same seed + same data → same rows in each part):
 * - random: rows ordered by a seeded hash of their position, cut at the fractions (exact sizes);
 * - stratified: the same within each value of `column`, so every part keeps the class shares;
 * - time: rows with `column` < `cutoff` first, the rest second (or cut at time quantiles when
 *   `fractions` is given instead of a cutoff);
 * - group: whole groups (all rows with one value of `column`) go to one part, groups ordered by a
 *   seeded hash and cut where the cumulative row share crosses the fractions.
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
  if (!parsed.success) throw KilnError.fromZod(place, parsed.error);
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

/** Column of a split's source holding each row's place in the source files. */
const ROW = '__kiln_split_row';

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
  // Each row's place in the source, unique across files: file_index in the high bits, so with
  // one file it is file_row_number itself (and the seeded hashes are unchanged). file_row_number
  // alone restarts at 0 in each file, which made rows of different files collide.
  const source = `(SELECT *, (CAST(file_index AS BIGINT) << 40) + file_row_number AS ${ROW}
                     FROM read_parquet([${list.map(sqlString).join(', ')}]))`;
  const names = splitPartNames(spec);
  return withDuck(async (conn) => {
    let partSql: string;
    const seedOf = (s: { seed: number }) => String(s.seed);
    switch (spec.method) {
      case 'random': {
        const f = names.map((n) => spec.fractions[n]);
        partSql = `SELECT ${ROW} AS __row, ${partCase('(row_number() OVER (ORDER BY hash(' + ROW + ', ' + seedOf(spec) + '), ' + ROW + ') - 1) / count(*) OVER ()', f)} AS __part FROM ${source}`;
        break;
      }
      case 'stratified': {
        const col = sqlIdent(findColumn(schema, spec.column, 'split').name);
        const f = names.map((n) => spec.fractions[n]);
        // Within each stratum rows are shuffled by the seeded hash and cut at the fractions.
        partSql = `SELECT ${ROW} AS __row, ${partCase(`(row_number() OVER (PARTITION BY ${col} ORDER BY hash(${ROW}, ${seedOf(spec)}), ${ROW}) - 1) / count(*) OVER (PARTITION BY ${col})`, f)} AS __part FROM ${source}`;
        break;
      }
      case 'group': {
        const col = sqlIdent(findColumn(schema, spec.column, 'split').name);
        const f = names.map((n) => spec.fractions[n]);
        const groups = `SELECT g, (sum(n) OVER (ORDER BY hash(g, ${seedOf(spec)}), g ROWS UNBOUNDED PRECEDING) - n) / sum(n) OVER () AS share
                          FROM (SELECT ${col} AS g, count(*) AS n FROM ${source} GROUP BY ALL)`;
        partSql = `SELECT s.${ROW} AS __row, ${partCase('gr.share', f)} AS __part
                     FROM ${source} s JOIN (${groups}) gr ON s.${col} IS NOT DISTINCT FROM gr.g`;
        break;
      }
      case 'time': {
        const column = findColumn(schema, spec.column, 'split');
        const col = sqlIdent(column.name);
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
        break;
      }
    }
    await runSql(conn, `CREATE OR REPLACE TEMP TABLE kiln_split AS ${partSql}`, 'split');
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

import type { DuckDBConnection } from '@duckdb/node-api';
import { levelCodeSql, readRows, sqlIdent, sqlString, withDuck } from './duckdb.js';
import { DistinctCounter } from './hyperloglog.js';
import { type ColumnElement, forEachChunk } from './matrix.js';
import {
  type CategoricalProfile,
  CodeAccumulator,
  type ColumnProfile,
  type DatasetProfile,
  edgesFor,
  fineGridFor,
  NumericAccumulator,
  type ProfileOptions,
  resolveProfileOptions,
} from './profile.js';
import type { DatasetSchema } from './schema.js';

/**
 * Profiles a stored version in one streaming pass over its Parquet file: numeric, integer,
 * boolean and datetime (epoch milliseconds) columns as doubles, categorical columns as codes
 * into the recorded level table, text columns as 31-bit DuckDB hashes for the distinct sketch
 * (plus one GROUP BY for their top values). Histogram edges come from min/max, which DuckDB reads
 * from Parquet statistics, so they are fixed before the pass.
 */
export async function profileParquet(
  files: string | string[],
  schema: DatasetSchema,
  options: ProfileOptions = {},
): Promise<DatasetProfile> {
  const list = Array.isArray(files) ? files : [files];
  const relation = `read_parquet([${list.map(sqlString).join(', ')}])`;
  return withDuck((conn) => profileRelation(conn, relation, schema, options));
}

function numericSql(column: string, type: string): string {
  const c = sqlIdent(column);
  if (type === 'datetime') return `COALESCE(CAST(epoch_ms(${c}) AS DOUBLE), 'NaN'::DOUBLE)`;
  return `COALESCE(CAST(${c} AS DOUBLE), 'NaN'::DOUBLE)`;
}

export async function profileRelation(
  conn: DuckDBConnection,
  relation: string,
  schema: DatasetSchema,
  options: ProfileOptions = {},
): Promise<DatasetProfile> {
  const opts = resolveProfileOptions(options);
  const numericCols = schema.columns.filter((c) => c.type !== 'categorical' && c.type !== 'text');
  const ranges = new Map<string, { min: number; max: number }>();
  if (numericCols.length > 0) {
    const [row] = await readRows(
      conn,
      `SELECT ${numericCols
        .map((c, i) => {
          const v = numericSql(c.name, c.type).replace(/^COALESCE\((.*), 'NaN'::DOUBLE\)$/, '$1');
          return `min(${v}) AS lo${i}, max(${v}) AS hi${i}`;
        })
        .join(', ')} FROM ${relation}`,
      'profile',
    );
    numericCols.forEach((c, i) => {
      ranges.set(c.name, {
        min: Number(row[`lo${i}`] ?? Number.NaN),
        max: Number(row[`hi${i}`] ?? Number.NaN),
      });
    });
  }

  const selects: string[] = [];
  const elements: ColumnElement[] = [];
  const sinks: ((view: Float64Array | Float32Array | Int32Array) => void)[] = [];
  const finishers: (() => ColumnProfile)[] = [];
  for (const col of schema.columns) {
    if (col.type === 'categorical') {
      const levels = col.levels ?? [];
      const acc = new CodeAccumulator(col.name, levels, { ...opts, types: { [col.name]: col.type } });
      selects.push(levelCodeSql(sqlIdent(col.name), levels));
      elements.push('i32');
      sinks.push((v) => acc.add(v as Int32Array));
      finishers.push(() => acc.toProfile());
    } else if (col.type === 'text') {
      const distinct = new DistinctCounter(opts.exactDistinctLimit);
      let count = 0;
      let missing = 0;
      selects.push(`COALESCE(CAST(hash(${sqlIdent(col.name)}) >> 33 AS INTEGER), -1)`);
      elements.push('i32');
      sinks.push((v) => {
        count += v.length;
        for (let i = 0; i < v.length; i++) {
          const h = v[i];
          if (h < 0) missing++;
          else distinct.addHash(h << 1);
        }
      });
      finishers.push(() => textProfile(col.name, count, missing, distinct));
    } else {
      const range = ranges.get(col.name)!;
      const fine = fineGridFor(col.name, range.min, range.max, opts);
      const acc = new NumericAccumulator(
        col.name,
        edgesFor(col.name, range.min, range.max, opts, col.type === 'integer' || col.type === 'boolean'),
        {
          exactDistinctLimit: opts.exactDistinctLimit,
          kllK: opts.kllK,
          type: col.type,
          ...(fine ? { fine } : {}),
        },
      );
      selects.push(numericSql(col.name, col.type));
      elements.push('f64');
      sinks.push((v) => acc.add(v));
      finishers.push(() => acc.toProfile());
    }
  }
  const rows = await forEachChunk(
    conn,
    `SELECT ${selects.map((s, i) => `${s} AS c${i}`).join(', ')} FROM ${relation}`,
    elements,
    (views) => {
      for (let j = 0; j < views.length; j++) sinks[j](views[j]);
    },
  );
  const columns = finishers.map((f) => f());
  for (const p of columns) {
    const col = schema.columns.find((c) => c.name === p.name)!;
    if (col.type === 'text' && p.kind === 'categorical')
      await fillTextTopValues(conn, relation, p, opts.maxTrackedValues, opts.topK);
  }
  return { rows, columns };
}

function textProfile(
  name: string,
  count: number,
  missing: number,
  distinct: DistinctCounter,
): CategoricalProfile {
  return {
    kind: 'categorical',
    name,
    type: 'text',
    count,
    missing,
    distinct: distinct.estimate(),
    distinctExact: distinct.exact,
    topK: [],
    counts: {},
    otherCount: 0,
    sketch: { distinct: distinct.state() },
  };
}

async function fillTextTopValues(
  conn: DuckDBConnection,
  relation: string,
  p: CategoricalProfile,
  maxTracked: number,
  topK: number,
): Promise<void> {
  const c = sqlIdent(p.name);
  const rows = await readRows(
    conn,
    `SELECT ${c} AS v, count(*)::BIGINT AS n FROM ${relation} WHERE ${c} IS NOT NULL GROUP BY ALL ORDER BY n DESC, v LIMIT ${maxTracked}`,
    `profile: column '${p.name}'`,
  );
  let tracked = 0;
  for (const r of rows) {
    p.counts[String(r.v)] = Number(r.n);
    tracked += Number(r.n);
  }
  const present = p.count - p.missing;
  p.otherCount = present - tracked;
  p.topK = rows
    .slice(0, topK)
    .map((r) => ({ value: String(r.v), count: Number(r.n), share: Number(r.n) / present }));
}

import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readRows, runSql, sqlString, withDuck } from './duckdb.js';
import { DistinctCounter } from './hyperloglog.js';
import { createKll, kllMerge, kllQuantiles, kllUpdate } from './kll.js';
import { materializeMatrix } from './matrix.js';
import { prepareDataset } from './prepare.js';
import { type CategoricalProfile, mergeProfiles, type NumericProfile, profileBatch } from './profile.js';
import { profileParquet } from './profile-dataset.js';
import type { DatasetSchema } from './schema.js';

const FLIGHTS = path.resolve('node_modules/vega-datasets/data/flights-3m.parquet');
let dir: string;
let file: string;
let schema: DatasetSchema;

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'kiln-profile-'));
  const src = path.join(dir, 'src.parquet');
  // 200k rows with some missing delays (every 13th row) so missing counts are exercised.
  await withDuck((conn) =>
    runSql(
      conn,
      `COPY (SELECT date, CASE WHEN row_number() OVER () % 13 = 0 THEN NULL ELSE delay END AS delay, distance, origin
               FROM (SELECT * FROM read_parquet(${sqlString(FLIGHTS)}) LIMIT 200000))
         TO ${sqlString(src)} (FORMAT parquet)`,
      'fixture',
    ),
  );
  const prepared = await prepareDataset(src, { outPath: path.join(dir, 'data.parquet') });
  file = prepared.parquetPath;
  schema = prepared.schema;
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Share of `values` ≤ x: quantile estimates are checked by rank, as sketch guarantees are stated. */
function rankOf(sorted: Float64Array, x: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (sorted[mid] <= x) lo = mid + 1;
    else hi = mid;
  }
  return lo / sorted.length;
}

describe('profileParquet against exact DuckDB computations', () => {
  it('count, missing, min, max, mean, std, distinct, quantiles, histogram and top-k', async () => {
    const profile = await profileParquet(file, schema);
    expect(profile.rows).toBe(200_000);
    const [exact] = await withDuck((conn) =>
      readRows(
        conn,
        `SELECT count(*) AS n, count(*) - count(delay) AS missing, min(delay) AS lo, max(delay) AS hi,
                avg(delay) AS mean, stddev_pop(delay) AS std, count(DISTINCT delay) AS nd,
                avg(distance) AS dmean, stddev_pop(distance) AS dstd, count(DISTINCT distance) AS ndist,
                count(DISTINCT date) AS ndate, count(DISTINCT origin) AS norigin
           FROM read_parquet(${sqlString(file)})`,
        'exact',
      ),
    );
    const delay = profile.columns.find((c) => c.name === 'delay') as NumericProfile;
    expect(delay.count).toBe(200_000);
    expect(delay.missing).toBe(Number(exact.missing));
    expect(delay.missing).toBeGreaterThan(15_000);
    expect(delay.min).toBe(Number(exact.lo));
    expect(delay.max).toBe(Number(exact.hi));
    expect(delay.mean!).toBeCloseTo(Number(exact.mean), 9);
    expect(delay.std!).toBeCloseTo(Number(exact.std), 9);
    expect(delay.distinct).toBe(Number(exact.nd));
    expect(delay.distinctExact).toBe(true);
    const distance = profile.columns.find((c) => c.name === 'distance') as NumericProfile;
    expect(distance.mean!).toBeCloseTo(Number(exact.dmean), 9);
    expect(distance.std!).toBeCloseTo(Number(exact.dstd), 9);
    expect(distance.distinct).toBe(Number(exact.ndist));
    // More distinct timestamps than the exact limit: HyperLogLog, ~1.6% standard error.
    const date = profile.columns.find((c) => c.name === 'date') as NumericProfile;
    expect(Number(exact.ndate)).toBeGreaterThan(10_000);
    expect(date.distinctExact).toBe(false);
    expect(Math.abs(date.distinct / Number(exact.ndate) - 1)).toBeLessThan(0.05);

    // Quantiles: within 1.5% rank of the asked probability.
    const m = await materializeMatrix(file, { features: ['delay'] });
    const values = (m.x.columns[0] as { values: Float64Array }).values.filter((v) => !Number.isNaN(v)).sort();
    for (const [key, q] of Object.entries(delay.quantiles)) {
      const p = Number(key.slice(1)) / 100;
      const r = rankOf(values, q!);
      const below = rankOf(values, q! - 1e-9);
      expect(p, key).toBeGreaterThanOrEqual(below - 0.015);
      expect(p, key).toBeLessThanOrEqual(r + 0.015);
    }

    // Histogram: same edges binned exactly by DuckDB.
    const { edges, counts } = distance.histogram;
    expect(edges).toHaveLength(21);
    expect(edges[0]).toBe(distance.min);
    expect(edges[20]).toBe(distance.max);
    const exactCounts = await withDuck(async (conn) => {
      const out: number[] = [];
      for (let i = 0; i < 20; i++) {
        const upper = i === 19 ? `distance <= ${edges[i + 1]}` : `distance < ${edges[i + 1]}`;
        const [r] = await readRows(
          conn,
          `SELECT count(*) AS k FROM read_parquet(${sqlString(file)}) WHERE distance >= ${edges[i]} AND ${upper}`,
          'bin',
        );
        out.push(Number(r.k));
      }
      return out;
    });
    expect(counts).toEqual(exactCounts);

    const origin = profile.columns.find((c) => c.name === 'origin') as CategoricalProfile;
    expect(origin.distinct).toBe(Number(exact.norigin));
    const top = await withDuck((conn) =>
      readRows(
        conn,
        `SELECT origin AS v, count(*) AS k FROM read_parquet(${sqlString(file)}) GROUP BY origin ORDER BY k DESC, v LIMIT 10`,
        'top',
      ),
    );
    expect(origin.topK.map((t) => [t.value, t.count])).toEqual(top.map((r) => [r.v, Number(r.k)]));
    expect(origin.topK[0].share).toBeCloseTo(Number(top[0].k) / 200_000, 12);
  });
});

describe('mergeProfiles', () => {
  it('merging the profiles of two parts equals the profile of the whole (within sketch error)', async () => {
    const m = await materializeMatrix(file, {
      features: ['delay', 'distance', 'origin', { name: 'ts', expr: 'epoch(date)' }],
    });
    const n = m.x.nRows;
    const cut = 73_111;
    const part = (lo: number, hi: number) => ({
      nRows: hi - lo,
      columns: m.x.columns.map((c) =>
        c.kind === 'numeric'
          ? { ...c, values: c.values.subarray(lo, hi) }
          : { ...c, codes: c.codes.subarray(lo, hi) },
      ),
    });
    const whole = profileBatch(m.x, { exactDistinctLimit: 5_000 });
    const edges = Object.fromEntries(
      whole.columns
        .filter((c) => c.kind === 'numeric')
        .map((c) => [c.name, (c as NumericProfile).histogram.edges]),
    );
    const opts = { edges, exactDistinctLimit: 5_000 };
    const merged = mergeProfiles(profileBatch(part(0, cut), opts), profileBatch(part(cut, n), opts), opts);
    expect(merged.rows).toBe(whole.rows);
    for (const w of whole.columns) {
      const g = merged.columns.find((c) => c.name === w.name)!;
      expect(g.count, w.name).toBe(w.count);
      expect(g.missing, w.name).toBe(w.missing);
      if (w.kind === 'numeric' && g.kind === 'numeric') {
        expect(g.min).toBe(w.min);
        expect(g.max).toBe(w.max);
        expect(g.mean!).toBeCloseTo(w.mean!, 6);
        expect(Math.abs(g.std! / w.std! - 1)).toBeLessThan(1e-9);
        expect(g.histogram).toEqual(w.histogram);
        if (w.distinctExact) expect(g.distinct, w.name).toBe(w.distinct);
        else expect(Math.abs(g.distinct / w.distinct - 1), w.name).toBeLessThan(0.05);
        for (const key of Object.keys(w.quantiles)) {
          const values = (m.x.columns.find((c) => c.name === w.name) as { values: Float64Array }).values
            .filter((v) => !Number.isNaN(v))
            .sort();
          const p = Number(key.slice(1)) / 100;
          expect(p).toBeGreaterThanOrEqual(rankOf(values, g.quantiles[key]! - 1e-9) - 0.02);
          expect(p).toBeLessThanOrEqual(rankOf(values, g.quantiles[key]!) + 0.02);
        }
      } else if (w.kind === 'categorical' && g.kind === 'categorical') {
        expect(g.counts).toEqual(w.counts);
        expect(g.topK).toEqual(w.topK);
        expect(g.distinct).toBe(w.distinct);
      }
    }
    // 'ts' has > 5 000 distinct values, so the HyperLogLog path was exercised.
    expect(whole.columns.find((c) => c.name === 'ts')!.distinctExact).toBe(false);
  });

  it('keeps totals when histogram edges differ, and refuses mismatched columns', () => {
    const a = profileBatch(
      { nRows: 4, columns: [{ kind: 'numeric', name: 'x', values: [0, 1, 2, 3] }] },
      { bins: 3 },
    );
    const b = profileBatch(
      { nRows: 3, columns: [{ kind: 'numeric', name: 'x', values: [2, 5, 8] }] },
      { bins: 2 },
    );
    const m = mergeProfiles(a, b).columns[0] as NumericProfile;
    const h = m.histogram;
    expect(h.counts.reduce((s, c) => s + c, 0) + h.underflow + h.overflow).toBeCloseTo(7, 9);
    expect(m.min).toBe(0);
    expect(m.max).toBe(8);
    expect(m.mean).toBeCloseTo(3, 12);
    const c = profileBatch({ nRows: 1, columns: [{ kind: 'text', name: 'x', values: ['a'] }] });
    expect(() => mergeProfiles(a, c)).toThrow(/column 'x' is numeric in one profile and categorical/);
  });

  it('gives whole-number columns with few values one bin per value', () => {
    const p = profileBatch({
      nRows: 6,
      columns: [{ kind: 'numeric', name: 'weekday', values: [0, 1, 1, 6, 3, Number.NaN] }],
    });
    const h = (p.columns[0] as NumericProfile).histogram;
    expect(h.edges).toEqual([-0.5, 0.5, 1.5, 2.5, 3.5, 4.5, 5.5, 6.5]);
    expect(h.counts).toEqual([1, 2, 0, 1, 0, 0, 1]);
    const q = profileBatch({ nRows: 2, columns: [{ kind: 'numeric', name: 'x', values: [0, 1.5] }] });
    expect((q.columns[0] as NumericProfile).histogram.edges).toHaveLength(21);
  });

  it('profiles raw text columns and merges their counts', () => {
    const a = profileBatch({
      nRows: 4,
      columns: [{ kind: 'text', name: 's', values: ['a', 'b', 'a', null] }],
    });
    const b = profileBatch({ nRows: 2, columns: [{ kind: 'text', name: 's', values: ['c', 'a'] }] });
    const m = mergeProfiles(a, b).columns[0] as CategoricalProfile;
    expect(m.counts).toEqual({ a: 3, b: 1, c: 1 });
    expect(m.missing).toBe(1);
    expect(m.distinct).toBe(3);
    expect(m.topK[0]).toEqual({ value: 'a', count: 3, share: 3 / 5 });
  });
});

describe('sketches', () => {
  it('HyperLogLog estimates 200k distinct values within 5%, and merges', () => {
    const a = new DistinctCounter(1000);
    const b = new DistinctCounter(1000);
    for (let i = 0; i < 120_000; i++) a.addNumber(i * 1.5);
    for (let i = 80_000; i < 200_000; i++) b.addNumber(i * 1.5);
    a.merge(b);
    expect(Math.abs(a.estimate() / 200_000 - 1)).toBeLessThan(0.05);
  });

  it('KLL quantiles of a merged sketch stay within 2% rank', () => {
    const s1 = createKll(200);
    const s2 = createKll(200, 7);
    const all = new Float64Array(100_000);
    for (let i = 0; i < all.length; i++) all[i] = Math.sin(i) * 1000 + (i % 17);
    kllUpdate(s1, all.subarray(0, 30_000));
    kllUpdate(s2, all.subarray(30_000));
    const merged = kllMerge(s1, s2);
    expect(merged.n).toBe(100_000);
    const sorted = Float64Array.from(all).sort();
    const ps = [0.01, 0.1, 0.5, 0.9, 0.99];
    kllQuantiles(merged, ps).forEach((q, i) => {
      expect(Math.abs(rankOf(sorted, q) - ps[i])).toBeLessThan(0.02);
    });
  });
});

describe('profiles without a quantile sketch (kllK 0, monitoring windows)', () => {
  it('equal the full profile in every exact statistic; quantiles within one fine bin; merges drop KLL', () => {
    let s = 7;
    const next = () => {
      s = (s * 16807) % 2147483647;
      return s / 2147483647;
    };
    const values = Float64Array.from({ length: 50_000 }, () => next() + next() + next());
    const col = [{ kind: 'numeric' as const, name: 'x', values }];
    const full = profileBatch({ nRows: values.length, columns: col }).columns[0] as NumericProfile;
    const lean = profileBatch({ nRows: values.length, columns: col }, { kllK: 0 })
      .columns[0] as NumericProfile;
    expect(lean.sketch.kind).toBe('distinct');
    expect(full.sketch.kind).toBe('sketch');
    for (const k of [
      'count',
      'missing',
      'min',
      'max',
      'mean',
      'm2',
      'std',
      'distinct',
      'histogram',
      'fine',
    ] as const)
      expect(lean[k]).toEqual(full[k]);
    const sorted = Float64Array.from(values).sort();
    const width = (lean.fine!.hi - lean.fine!.lo) / lean.fine!.counts.length;
    for (const [key, q] of Object.entries(lean.quantiles)) {
      const p = Number(key.slice(1)) / 100;
      const exact = sorted[Math.ceil(p * sorted.length) - 1]!;
      expect(Math.abs(q! - exact)).toBeLessThanOrEqual(width);
    }
    // A part without KLL merged with one with it: no quantile sketch of only part of the data.
    const merged = mergeProfiles({ rows: 1, columns: [lean] }, { rows: 1, columns: [full] })
      .columns[0] as NumericProfile;
    expect(merged.sketch.kind).toBe('distinct');
    expect(merged.count).toBe(2 * values.length);
    // While the exact table holds, a kllK 0 profile is the exact one (only the recorded k differs).
    const few = [
      { kind: 'numeric' as const, name: 'x', values: Float64Array.from(values, (v) => Math.round(v * 10)) },
    ];
    const exactLean = profileBatch({ nRows: values.length, columns: few }, { kllK: 0 })
      .columns[0] as NumericProfile;
    const exactFull = profileBatch({ nRows: values.length, columns: few }).columns[0] as NumericProfile;
    expect(exactLean.sketch).toEqual({ ...exactFull.sketch, kllK: 0 });
    expect({ ...exactLean, sketch: null }).toEqual({ ...exactFull, sketch: null });
  });
});

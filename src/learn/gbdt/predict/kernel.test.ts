import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { FeatureMatrix } from '../../../data/index.js';
import { buildEnsemble, mixedFeatures, randomEnsemble, randomMatrix } from '../hand-built-models.js';
import { GbdtLearner } from '../learner.js';
import { GbdtModel } from '../model.js';
import { compileEnsemble, goesLeft, predictRawColumns, type ScoringColumn } from '../predict.js';
import { type BinnedEnsemble, binEnsemble, MAX_PERFECT_DEPTH } from './binned.js';
import { compileKernel, type KernelColumn, kernelData, LANES } from './kernel.js';

/**
 * The fast kernel (binned.ts + kernel.ts) against the one split rule (`goesLeft`) and the
 * node-walking reference scorer. Raw scores must be bit-identical (toEqual on Float64Array
 * compares exactly): the kernel adds the same leaf values in the same order.
 */

/** The reference: walk nodes with goesLeft over the same columns the model reads. */
function referenceRaw(model: GbdtModel, x: FeatureMatrix): Float64Array {
  const levelCounts = model.info.features.map((f) => f.levels?.length ?? 0);
  const columns: ScoringColumn[] = model.info.features.map((f) => {
    const col = x.columns.find((c) => c.name === f.name)!;
    return col.kind === 'numeric'
      ? { kind: 'numeric', values: col.values }
      : { kind: 'categorical', codes: col.codes };
  });
  return predictRawColumns(compileEnsemble(model.ensemble, levelCounts), columns, x.nRows);
}

/**
 * The kernel of one layout, built directly (the model picks the layout by depth): batch raw
 * scores of x, and every `rowStep`-th row through the one-row entry, which must agree.
 */
function kernelRaw(
  model: GbdtModel,
  x: FeatureMatrix,
  layout: BinnedEnsemble['layout'],
  rowStep = 7,
): Float64Array {
  const levelCounts = model.info.features.map((f) => f.levels?.length ?? 0);
  const binned = binEnsemble(model.ensemble, levelCounts, layout)!;
  expect(binned.layout).toBe(layout);
  const kernel = compileKernel(kernelData(binned)!);
  const columns: KernelColumn[] = model.info.features.map((f) => {
    const col = x.columns.find((c) => c.name === f.name)!;
    return col.kind === 'numeric' ? col.values : col.codes;
  });
  const k = model.nOutputs;
  const out = new Float64Array(x.nRows * k);
  kernel.predictRange(columns, 0, x.nRows, out);
  const dense = model.toDenseRows(x);
  const nf = columns.length;
  const one = new Float64Array(k);
  for (let r = 0; r < x.nRows; r += rowStep) {
    kernel.predictRow(dense.subarray(r * nf, (r + 1) * nf), one);
    expect(Array.from(one), `${layout} row ${r}`).toEqual(Array.from(out.subarray(r * k, (r + 1) * k)));
  }
  return out;
}

/** 4 numeric features, a 40-level and a 300-level categorical (category sets of 10 words). */
function wideFeatures() {
  return [...mixedFeatures(4, 1, 40), ...mixedFeatures(0, 1, 300).map((f) => ({ ...f, name: 'wide' }))];
}

/** A binary (one output) or 3-class model of the ensemble. */
function classifierOf(
  ensemble: ReturnType<typeof randomEnsemble>,
  features: ReturnType<typeof wideFeatures>,
  nOutputs: number,
): GbdtModel {
  const task = nOutputs === 1 ? 'binary' : 'multiclass';
  return new GbdtModel(ensemble, {
    task,
    objective: task,
    features,
    classes: nOutputs === 1 ? undefined : ['a', 'b', 'c'],
  });
}

describe('fast GBDT kernel: one split rule', () => {
  // One split per case; the leaves say which way the kernel sent the row.
  const features = mixedFeatures(1, 1, 70);
  const thresholds = [-1.5, 0, 0.25, 3];
  const probesNumeric = [
    Number.NaN,
    Number.NEGATIVE_INFINITY,
    Number.POSITIVE_INFINITY,
    -2,
    10,
    ...thresholds.flatMap((t) => [t, t - 1e-9, t + 1e-9, Math.fround(t)]),
  ];
  const probesCategorical = [Number.NaN, -1, ...Array.from({ length: 70 }, (_, c) => c)];
  for (const defaultLeft of [false, true]) {
    it(`sends every probe value the way goesLeft does (defaultLeft ${defaultLeft}, numeric and categorical, 1- and 3-word sets)`, () => {
      // A tree per threshold on num0 and a categorical tree with a set crossing word boundaries;
      // every other tree of the ensemble gives the kernel a real depth to pad to.
      const cats = [0, 5, 31, 32, 33, 63, 64, 69];
      const trees = [
        ...thresholds.map((threshold, i) => ({
          output: 0,
          root: {
            feature: 0,
            threshold,
            defaultLeft,
            gain: 1,
            left: { leaf: 2 ** (2 * i) },
            right: { leaf: 2 ** (2 * i + 1) },
          },
        })),
        {
          output: 0,
          root: { feature: 1, cats, defaultLeft, gain: 1, left: { leaf: 2 ** 10 }, right: { leaf: 2 ** 11 } },
        },
      ];
      const ensemble = buildEnsemble({ nOutputs: 1, baseScore: [0], trees });
      const model = new GbdtModel(ensemble, { task: 'regression', objective: 'regression', features });
      const c = compileEnsemble(ensemble, [0, 70]);
      for (const num of probesNumeric) {
        for (const cat of probesCategorical) {
          let expected = 0;
          ensemble.treeRoot.forEach((root, t) => {
            const v = t < thresholds.length ? num : cat;
            const left = goesLeft(c, root, v);
            expected += ensemble.leafValue[left ? ensemble.left[root]! : ensemble.right[root]!]!;
          });
          expect(model.predictRow([num, cat])[0], `num ${num}, cat ${cat}`).toBe(expected);
          const x: FeatureMatrix = {
            nRows: 1,
            columns: [
              { kind: 'numeric', name: 'num0', values: Float64Array.of(num) },
              {
                kind: 'categorical',
                name: 'cat0',
                codes: Int32Array.of(Number.isNaN(cat) ? -1 : cat),
                levels: features[1]!.levels!,
              },
            ],
          };
          expect(model.predictRaw(x)[0], `batch: num ${num}, cat ${cat}`).toBe(expected);
        }
      }
    });
  }
});

describe('fast GBDT kernel: random ensembles', () => {
  for (const [nOutputs, depth, seed] of [
    [1, 8, 1],
    [1, 5, 2],
    [3, 7, 3],
  ] as const) {
    it(`equals the node walk bit for bit (outputs ${nOutputs}, depth ≤ ${depth}, categorical splits, 10% missing)`, () => {
      // 300 levels: category sets of 10 words; 4,000 rows: many groups of LANES rows, blocks and a tail.
      const features = wideFeatures();
      const ensemble = randomEnsemble({ features, nOutputs, nTreesPerOutput: 60, maxDepth: depth, seed });
      const model = classifierOf(ensemble, features, nOutputs);
      const x = randomMatrix(features, 4_003, seed + 10, 0.1, ensemble);
      expect(binEnsemble(ensemble, [0, 0, 0, 0, 40, 300])?.depth).toBe(depth);
      const expected = referenceRaw(model, x);
      expect(model.predictRaw(x)).toEqual(expected);
      expect(kernelRaw(model, x, 'perfect')).toEqual(expected);
      expect(kernelRaw(model, x, 'linked')).toEqual(expected);
      expect(model.predictRaw(x, { threads: 3 })).toEqual(expected);
      const dense = model.toDenseRows(x);
      const nf = features.length;
      const out = new Float64Array(nOutputs);
      for (let r = 0; r < x.nRows; r += 7) {
        model.predictRawRow(dense.subarray(r * nf, (r + 1) * nf), out);
        expect(Array.from(out)).toEqual(Array.from(expected.subarray(r * nOutputs, (r + 1) * nOutputs)));
      }
    });
  }

  it('scores a batch split over threads exactly as on one thread, for any row count', async () => {
    const features = mixedFeatures(3, 2, 50);
    const ensemble = randomEnsemble({ features, nOutputs: 1, nTreesPerOutput: 30, maxDepth: 6, seed: 9 });
    const model = new GbdtModel(ensemble, { task: 'binary', objective: 'binary', features });
    for (const n of [1, 2, 9, 11, 23, 1000]) {
      const x = randomMatrix(features, n, n, 0.1, ensemble);
      const one = model.predict(x, { threads: 1 });
      for (const threads of [2, 4]) expect(model.predict(x, { threads })).toEqual(one);
    }
    await model.releaseThreads();
  });

  // Deep, lopsided trees as lossguide growth and imported models make them: beyond
  // MAX_PERFECT_DEPTH the model takes the linked layout, any depth.
  for (const [maxDepth, nOutputs, seed, leafRate] of [
    [18, 1, 31, 0.47],
    [32, 1, 32, 0.47],
    [48, 3, 33, 0.5],
  ] as const) {
    it(`scores trees up to ${maxDepth} deep (outputs ${nOutputs}, categorical splits, 10% missing) as the node walk, bit for bit, batch, threads and one row`, async () => {
      const features = wideFeatures();
      const ensemble = randomEnsemble({
        features,
        nOutputs,
        nTreesPerOutput: 45,
        maxDepth,
        seed,
        leafRate,
      });
      const levelCounts = [0, 0, 0, 0, 40, 300];
      const binned = binEnsemble(ensemble, levelCounts)!;
      // The generator must have produced what the test is about: trees deeper than the perfect layout takes.
      expect(binned.layout).toBe('linked');
      expect(binned.depth).toBeGreaterThan(MAX_PERFECT_DEPTH + 4);
      const model = classifierOf(ensemble, features, nOutputs);
      const x = randomMatrix(features, 3_001, seed + 10, 0.1, ensemble);
      const expected = referenceRaw(model, x);
      expect(model.predictRaw(x)).toEqual(expected);
      expect(model.predictRaw(x, { threads: 3 })).toEqual(expected);
      expect(kernelRaw(model, x, 'linked', 5)).toEqual(expected);
      const dense = model.toDenseRows(x);
      const nf = features.length;
      const out = new Float64Array(nOutputs);
      for (let r = 0; r < x.nRows; r += 11) {
        model.predictRawRow(dense.subarray(r * nf, (r + 1) * nf), out);
        expect(Array.from(out)).toEqual(Array.from(expected.subarray(r * nOutputs, (r + 1) * nOutputs)));
        const few: FeatureMatrix = {
          nRows: 1,
          columns: x.columns.map((c) =>
            c.kind === 'numeric'
              ? { ...c, values: c.values.subarray(r, r + 1) }
              : { ...c, codes: c.codes.subarray(r, r + 1) },
          ),
        };
        expect(model.predictRaw(few)).toEqual(expected.subarray(r * nOutputs, (r + 1) * nOutputs));
      }
      await model.releaseThreads();
    });
  }

  it(`scores requests of fewer than ${LANES} rows (the one-row path) as the block path, with columns reordered and levels remapped`, () => {
    const features = mixedFeatures(2, 2, 30);
    const ensemble = randomEnsemble({ features, nOutputs: 3, nTreesPerOutput: 11, maxDepth: 6, seed: 21 });
    const model = new GbdtModel(ensemble, {
      task: 'multiclass',
      objective: 'multiclass',
      features,
      classes: ['a', 'b', 'c'],
    });
    const x = randomMatrix(features, 64, 22, 0.1, ensemble);
    const expected = model.predictRaw(x);
    // The same rows with columns in another order and one categorical column coded against a
    // reversed level table with an extra unseen level (scored as missing).
    const cat = x.columns[2]! as { codes: Int32Array; levels: string[] };
    const reversed = ['never-seen', ...[...cat.levels].reverse()];
    const recoded = Int32Array.from(cat.codes, (c) => (c < 0 ? -1 : reversed.indexOf(cat.levels[c]!)));
    for (let r = 0; r + 3 <= 64; r += 3) {
      const n = r % 2 === 0 ? 1 : 3;
      const slice: FeatureMatrix = {
        nRows: n,
        columns: [
          { ...x.columns[3]!, codes: (x.columns[3] as { codes: Int32Array }).codes.subarray(r, r + n) },
          {
            kind: 'categorical',
            name: features[2]!.name,
            codes: recoded.subarray(r, r + n),
            levels: reversed,
          },
          { ...x.columns[1]!, values: (x.columns[1] as { values: Float32Array }).values.subarray(r, r + n) },
          { ...x.columns[0]!, values: (x.columns[0] as { values: Float32Array }).values.subarray(r, r + n) },
        ] as FeatureMatrix['columns'],
      };
      expect(model.predictRaw(slice), `rows ${r}..${r + n}`).toEqual(expected.subarray(r * 3, (r + n) * 3));
    }
    const missing: FeatureMatrix = { nRows: 1, columns: x.columns.slice(1) };
    expect(() => model.predictRaw(missing)).toThrow(/feature matrix has no column 'num0'/);
  });

  it('rejects a thread count that is not a positive integer', () => {
    const features = mixedFeatures(1, 0, 0);
    const ensemble = randomEnsemble({ features, nOutputs: 1, nTreesPerOutput: 1, maxDepth: 2, seed: 1 });
    const model = new GbdtModel(ensemble, { task: 'regression', objective: 'regression', features });
    const x = randomMatrix(features, 10, 1);
    expect(() => model.predict(x, { threads: 0 })).toThrow(/threads must be a positive integer/);
  });
});

describe('fast GBDT kernel: a trained flights model', () => {
  const PARQUET = join(import.meta.dirname, '../../../../node_modules/vega-datasets/data/flights-3m.parquet');
  it('scores held-out May–Jun flights (unseen airports, NaN distances) exactly as the node walk', async () => {
    const { DuckDBInstance } = await import('@duckdb/node-api');
    const db = await DuckDBInstance.create(':memory:');
    const conn = await db.connect();
    const read = async (months: string, n: number, seed: number) =>
      (
        await conn.runAndReadAll(
          `SELECT hour(date)::DOUBLE AS hour, distance::DOUBLE AS distance, origin, destination,
                  (delay > 15)::DOUBLE AS label
           FROM (SELECT * FROM '${PARQUET}' WHERE month(date) BETWEEN ${months}) USING SAMPLE ${n} ROWS (reservoir, ${seed})`,
        )
      ).getRowObjects();
    const trainRows = await read('1 AND 4', 20_000, 1);
    const testRows = await read('5 AND 6', 5_000, 2);
    conn.closeSync();
    const levels = {
      origin: [...new Set(trainRows.map((r) => String(r.origin)))].sort(),
      destination: [...new Set(trainRows.map((r) => String(r.destination)))].sort(),
    };
    const matrix = (rows: typeof trainRows): FeatureMatrix => ({
      nRows: rows.length,
      columns: [
        { kind: 'numeric', name: 'hour', values: Float64Array.from(rows, (r) => Number(r.hour)) },
        {
          kind: 'numeric',
          name: 'distance',
          values: Float64Array.from(rows, (r, i) => (i % 11 === 0 ? Number.NaN : Number(r.distance))),
        },
        ...(['origin', 'destination'] as const).map((name) => {
          const index = new Map(levels[name].map((l, i) => [l, i]));
          return {
            kind: 'categorical' as const,
            name,
            codes: Int32Array.from(rows, (r) => index.get(String(r[name])) ?? -1),
            levels: levels[name],
          };
        }),
      ],
    });
    const model = (await new GbdtLearner({
      objective: 'binary',
      num_iterations: 40,
      num_leaves: 63,
      max_depth: 8,
      threads: 1,
    }).fit({ x: matrix(trainRows), y: Float64Array.from(trainRows, (r) => Number(r.label)) })) as GbdtModel;
    const test = matrix(testRows);
    const expected = referenceRaw(model, test);
    expect(model.predictRaw(test)).toEqual(expected);
    expect(model.predictRaw(test, { threads: 2 })).toEqual(expected);
    await model.releaseThreads();
    // The one-row path (40 trees: groups of LANES trees side by side, then a tail of 40 % LANES
    // when that is not 0) and small batches, whose rows past the last full group take that path too.
    const dense = model.toDenseRows(test);
    const out = new Float64Array(1);
    for (let r = 0; r < test.nRows; r++) {
      model.predictRawRow(dense.subarray(r * 4, r * 4 + 4), out);
      expect(out[0], `row ${r}`).toBe(expected[r]);
    }
    const head = (n: number): FeatureMatrix => ({
      nRows: n,
      columns: test.columns.map((c) =>
        c.kind === 'numeric'
          ? { ...c, values: c.values.subarray(0, n) }
          : { ...c, codes: c.codes.subarray(0, n) },
      ),
    });
    for (const n of [1, 7, 9, 10, 11, 15, 21])
      expect(model.predictRaw(head(n))).toEqual(expected.subarray(0, n));
  }, 60_000);
});

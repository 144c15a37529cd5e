/**
 * Benchmark: L2 logistic regression on flights-3m (npm run bench:linear [-- --rows N] [--json]).
 *
 * Features: hour, minute, weekday, day of month, distance (standardised) and one-hot origin /
 * destination; label delay > 15 min. Rows are ordered by date, the first 80 % train and the
 * last 20 % test. kiln (PipelineLearner: standard-scale + one-hot + LinearLearner) and
 * sklearn (StandardScaler + OneHotEncoder + LogisticRegression(lbfgs)) fit the same rows in
 * the same invocation, one after the other, with the same C, max_iter and tol; the bench prints
 * fit times, their ratio (kiln / sklearn, < 1 = kiln faster) and test AUC.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import type { CategoricalColumn, FeatureMatrix, NumericColumn } from '../src/data/index.js';
import { LinearLearner } from '../src/learn/linear/index.js';
import { objectiveThreads } from '../src/learn/linear/parallel-objective.js';
import { rocAuc } from '../src/learn/metrics/index.js';
import {
  type FittedTransform,
  fitStep,
  PipelineModel,
  type TransformStep,
} from '../src/learn/preprocess/index.js';

const PARQUET = 'node_modules/vega-datasets/data/flights-3m.parquet';
const NUMERIC = ['hour', 'minute', 'weekday', 'day', 'distance'];
const CATEGORICAL = ['origin', 'destination'];

function parseArgs(argv: string[]) {
  const args = { rows: 0, json: false, C: 1, maxIter: 100, tol: 1e-4, repeat: 1 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--json') args.json = true;
    else if (a === '--rows') args.rows = Number(argv[++i]);
    else if (a === '--C') args.C = Number(argv[++i]);
    else if (a === '--max-iter') args.maxIter = Number(argv[++i]);
    else if (a === '--tol') args.tol = Number(argv[++i]);
    else if (a === '--repeat') args.repeat = Math.max(1, Number(argv[++i]));
    else
      throw new Error(
        `bench:linear: unknown argument '${a}' (use --rows N, --repeat R, --json, --C, --max-iter, --tol)`,
      );
  }
  return args;
}

async function loadFlights(rows: number): Promise<{ x: FeatureMatrix; y: Float64Array }> {
  const db = await DuckDBInstance.create(':memory:');
  const conn = await db.connect();
  const source =
    rows > 0
      ? `(SELECT * FROM '${PARQUET}' USING SAMPLE reservoir(${rows} ROWS) REPEATABLE (42))`
      : `'${PARQUET}'`;
  const result = await conn.run(`
    SELECT hour(date)::DOUBLE, minute(date)::DOUBLE, dayofweek(date)::DOUBLE, day(date)::DOUBLE,
           distance::DOUBLE, origin, destination, (delay > 15)::DOUBLE
    FROM ${source} WHERE delay IS NOT NULL AND distance IS NOT NULL ORDER BY date`);
  const numeric: number[][] = NUMERIC.map(() => []);
  const cats: number[][] = CATEGORICAL.map(() => []);
  const levelMaps = CATEGORICAL.map(() => new Map<string, number>());
  const y: number[] = [];
  for (;;) {
    const chunk = await result.fetchChunk();
    if (!chunk || chunk.rowCount === 0) break;
    const n = chunk.rowCount;
    NUMERIC.forEach((_, j) => {
      const v = chunk.getColumnVector(j);
      for (let i = 0; i < n; i++) numeric[j].push(v.getItem(i) as number);
    });
    CATEGORICAL.forEach((_, j) => {
      const v = chunk.getColumnVector(NUMERIC.length + j);
      const map = levelMaps[j];
      for (let i = 0; i < n; i++) {
        const s = v.getItem(i) as string | null;
        if (s === null) {
          cats[j].push(-1);
          continue;
        }
        let code = map.get(s);
        if (code === undefined) {
          code = map.size;
          map.set(s, code);
        }
        cats[j].push(code);
      }
    });
    const yv = chunk.getColumnVector(NUMERIC.length + CATEGORICAL.length);
    for (let i = 0; i < n; i++) y.push(yv.getItem(i) as number);
  }
  conn.closeSync();
  const columns = [
    ...NUMERIC.map(
      (name, j): NumericColumn => ({ kind: 'numeric', name, values: Float64Array.from(numeric[j]) }),
    ),
    ...CATEGORICAL.map(
      (name, j): CategoricalColumn => ({
        kind: 'categorical',
        name,
        codes: Int32Array.from(cats[j]),
        levels: [...levelMaps[j].keys()],
      }),
    ),
  ];
  return { x: { nRows: y.length, columns }, y: Float64Array.from(y) };
}

function sliceRows(x: FeatureMatrix, from: number, to: number): FeatureMatrix {
  return {
    nRows: to - from,
    columns: x.columns.map((c) =>
      c.kind === 'numeric'
        ? { ...c, values: c.values.slice(from, to) }
        : { ...c, codes: c.codes.slice(from, to) },
    ),
  };
}

function writePeerData(dir: string, split: string, x: FeatureMatrix, y: Float64Array) {
  const n = x.nRows;
  const num = new Float64Array(NUMERIC.length * n);
  NUMERIC.forEach((name, j) => {
    num.set((x.columns.find((c) => c.name === name) as NumericColumn).values, j * n);
  });
  const cat = new Int32Array(CATEGORICAL.length * n);
  CATEGORICAL.forEach((name, j) => {
    cat.set((x.columns.find((c) => c.name === name) as CategoricalColumn).codes, j * n);
  });
  writeFileSync(join(dir, `${split}_numeric.f64`), new Uint8Array(num.buffer));
  writeFileSync(join(dir, `${split}_categorical.i32`), new Uint8Array(cat.buffer));
  writeFileSync(join(dir, `${split}_y.f64`), new Uint8Array(y.buffer, y.byteOffset, y.byteLength));
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const log = (s: string) => {
    if (!args.json) console.log(s);
  };
  const tLoad = performance.now();
  const all = await loadFlights(args.rows);
  const nTrain = Math.floor(all.x.nRows * 0.8);
  const train = { x: sliceRows(all.x, 0, nTrain), y: all.y.slice(0, nTrain) };
  const test = { x: sliceRows(all.x, nTrain, all.x.nRows), y: all.y.slice(nTrain) };
  log(
    `flights-3m: ${all.x.nRows} rows (${train.x.nRows} train, ${test.x.nRows} test), loaded in ${((performance.now() - tLoad) / 1000).toFixed(1)} s`,
  );

  // kiln: the same steps PipelineLearner runs, timed separately (preprocessing, then the fit).
  const steps: TransformStep[] = [
    { kind: 'standard-scale', columns: NUMERIC },
    { kind: 'one-hot', columns: CATEGORICAL, unseen: 'ignore' },
  ];
  const runKiln = async () => {
    const t0 = performance.now();
    const fitted: FittedTransform[] = [];
    let xt = train.x;
    for (const step of steps) {
      const r = fitStep(step, xt, { y: train.y });
      fitted.push(r.fitted);
      xt = r.out;
    }
    const t1 = performance.now();
    const estimator = await new LinearLearner({
      task: 'binary',
      C: args.C,
      maxIter: args.maxIter,
      tol: args.tol,
    }).fit({
      x: xt,
      y: train.y,
    });
    const t2 = performance.now();
    const model = new PipelineModel(
      fitted,
      estimator,
      train.x.columns.map((c) => ({ name: c.name, kind: c.kind })),
    );
    return {
      preprocess_s: (t1 - t0) / 1000,
      fit_s: (t2 - t1) / 1000,
      iterations: estimator.convergence.iterations,
      evaluations: estimator.convergence.evaluations,
      converged: estimator.convergence.converged,
      n_features: estimator.nCoef,
      threads: objectiveThreads(train.x.nRows, undefined),
      auc: rocAuc(test.y, model.predict(test.x)),
    };
  };

  const dir = mkdtempSync(join(tmpdir(), 'kiln-bench-linear-'));
  type PeerResult = {
    preprocess_s: number;
    fit_s: number;
    iterations: number;
    n_features: number;
    auc: number;
    sklearn: string;
  };
  const runSklearn = (): PeerResult => {
    const out = execFileSync('/usr/bin/python3', ['bench/peers/linear_peer.py', dir], {
      encoding: 'utf8',
      maxBuffer: 1 << 20,
    });
    return JSON.parse(out.trim().split('\n').pop()!);
  };
  const kilnRuns: Awaited<ReturnType<typeof runKiln>>[] = [];
  const sklearnRuns: PeerResult[] = [];
  try {
    writePeerData(dir, 'train', train.x, train.y);
    writePeerData(dir, 'test', test.x, test.y);
    writeFileSync(
      join(dir, 'meta.json'),
      JSON.stringify({
        n_train: train.x.nRows,
        n_test: test.x.nRows,
        numeric: NUMERIC,
        categorical: CATEGORICAL,
        C: args.C,
        max_iter: args.maxIter,
        tol: args.tol,
      }),
    );
    // Alternate the two so a burst of load from elsewhere on the machine hits both alike.
    for (let r = 0; r < args.repeat; r++) {
      const k = await runKiln();
      kilnRuns.push(k);
      log(
        `kiln    fit ${k.fit_s.toFixed(2)} s (+ preprocess ${k.preprocess_s.toFixed(2)} s), ${k.threads} thread(s), ${k.iterations} iterations (${k.evaluations} evaluations), ${k.n_features} features, test AUC ${k.auc.toFixed(4)}`,
      );
      const p = runSklearn();
      sklearnRuns.push(p);
      log(
        `sklearn fit ${p.fit_s.toFixed(2)} s (+ preprocess ${p.preprocess_s.toFixed(2)} s), ${p.iterations} iterations, ${p.n_features} features, test AUC ${p.auc.toFixed(4)} (sklearn ${p.sklearn})`,
      );
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  // The fastest of the repeats: the run least disturbed by other work on the machine.
  const fastest = <T extends { fit_s: number }>(runs: T[]) =>
    runs.reduce((a, b) => (b.fit_s < a.fit_s ? b : a));
  const kiln = fastest(kilnRuns);
  const sklearn = fastest(sklearnRuns);
  const ratio = kiln.fit_s / sklearn.fit_s;
  const totalRatio = (kiln.fit_s + kiln.preprocess_s) / (sklearn.fit_s + sklearn.preprocess_s);
  const aucDiff = kiln.auc - sklearn.auc;
  log(
    `fastest of ${args.repeat}: fit time ratio kiln/sklearn: ${ratio.toFixed(3)} (with preprocessing: ${totalRatio.toFixed(3)})`,
  );
  log(
    `AUC difference kiln − sklearn: ${aucDiff >= 0 ? '+' : ''}${aucDiff.toFixed(4)} (target: ratio ≤ 1.0 at |ΔAUC| ≤ 0.002: ${ratio <= 1 && Math.abs(aucDiff) <= 0.002 ? 'met' : 'not met'})`,
  );
  if (args.json) {
    console.log(
      JSON.stringify({
        bench: 'linear',
        rows: all.x.nRows,
        train_rows: train.x.nRows,
        test_rows: test.x.nRows,
        params: { C: args.C, max_iter: args.maxIter, tol: args.tol },
        repeat: args.repeat,
        kiln,
        sklearn,
        kiln_runs: kilnRuns.map((r) => r.fit_s),
        sklearn_runs: sklearnRuns.map((r) => r.fit_s),
        fit_time_ratio: ratio,
        total_time_ratio: totalRatio,
        auc_diff: aucDiff,
      }),
    );
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});

import { KilnError } from '../../errors.js';
import { getMetric } from '../metrics/index.js';
import type { Learner, Task, TrainingData } from '../types.js';
import { selectData } from './rows.js';
import { seededStream, shuffleInPlace } from './seeded-shuffle.js';

/** One train/test split: row indices, ascending. */
export interface Split {
  train: Uint32Array;
  test: Uint32Array;
}

function checkFolds(n: number, k: number, where: string): void {
  if (!Number.isInteger(k) || k < 2)
    throw new KilnError('INVALID_PARAMETER_VALUE', `${where}: folds must be an integer >= 2, got ${k}`);
  if (k > n) throw new KilnError('INVALID_PARAMETER_VALUE', `${where}: ${k} folds for only ${n} rows`);
}

function splitsFromFold(fold: Int32Array, k: number): Split[] {
  const out: Split[] = [];
  for (let f = 0; f < k; f++) {
    const train: number[] = [];
    const test: number[] = [];
    for (let i = 0; i < fold.length; i++) (fold[i] === f ? test : train).push(i);
    out.push({ train: Uint32Array.from(train), test: Uint32Array.from(test) });
  }
  return out;
}

/**
 * k-fold: rows (shuffled with `seed` if `shuffle`) cut into k contiguous folds whose sizes
 * differ by at most one, as sklearn's KFold.
 */
export function kFoldSplits(
  nRows: number,
  k: number,
  options: { shuffle?: boolean; seed?: number } = {},
): Split[] {
  checkFolds(nRows, k, 'kFoldSplits');
  const order = Uint32Array.from({ length: nRows }, (_, i) => i);
  if (options.shuffle) shuffleInPlace(order, seededStream(options.seed ?? 0));
  const fold = new Int32Array(nRows);
  let start = 0;
  for (let f = 0; f < k; f++) {
    const size = Math.floor(nRows / k) + (f < nRows % k ? 1 : 0);
    for (let i = start; i < start + size; i++) fold[order[i]] = f;
    start += size;
  }
  return splitsFromFold(fold, k);
}

/**
 * Stratified k-fold: each class's rows are dealt round-robin over the folds (after an optional
 * seeded shuffle within the class), so every fold keeps the class proportions within one row.
 */
export function stratifiedKFoldSplits(
  y: ArrayLike<number>,
  k: number,
  options: { shuffle?: boolean; seed?: number } = {},
): Split[] {
  checkFolds(y.length, k, 'stratifiedKFoldSplits');
  const byClass = new Map<number, number[]>();
  for (let i = 0; i < y.length; i++) {
    const list = byClass.get(y[i]);
    if (list) list.push(i);
    else byClass.set(y[i], [i]);
  }
  const fold = new Int32Array(y.length);
  let next = 0;
  for (const cls of [...byClass.keys()].sort((a, b) => a - b)) {
    const rows = Uint32Array.from(byClass.get(cls)!);
    if (options.shuffle) shuffleInPlace(rows, seededStream((options.seed ?? 0) + cls * 7919));
    // Continue the round-robin where the previous class stopped, so fold sizes stay balanced.
    for (const r of rows) fold[r] = next++ % k;
  }
  return splitsFromFold(fold, k);
}

/**
 * Time-series split (sklearn's TimeSeriesSplit): rows must be in time order; split i tests on
 * the i-th of k consecutive blocks at the end and trains on everything before it (minus `gap`
 * rows, optionally capped at `maxTrainSize` most recent rows). Never trains on the future.
 */
export function timeSeriesSplits(
  nRows: number,
  k: number,
  options: { testSize?: number; gap?: number; maxTrainSize?: number } = {},
): Split[] {
  const testSize = options.testSize ?? Math.floor(nRows / (k + 1));
  const gap = options.gap ?? 0;
  if (!Number.isInteger(k) || k < 1)
    throw new KilnError('INVALID_PARAMETER_VALUE', `timeSeriesSplits: k must be >= 1, got ${k}`);
  if (testSize < 1 || nRows - k * testSize - gap < 1) {
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      `timeSeriesSplits: ${nRows} rows are too few for ${k} splits of ${testSize} test rows with gap ${gap}`,
    );
  }
  const out: Split[] = [];
  for (let s = nRows - k * testSize; s < nRows; s += testSize) {
    const trainEnd = s - gap;
    const trainStart = options.maxTrainSize ? Math.max(0, trainEnd - options.maxTrainSize) : 0;
    out.push({
      train: Uint32Array.from({ length: trainEnd - trainStart }, (_, i) => trainStart + i),
      test: Uint32Array.from({ length: testSize }, (_, i) => s + i),
    });
  }
  return out;
}

export interface CrossValidationResult {
  metrics: string[];
  folds: {
    fold: number;
    trainRows: number;
    testRows: number;
    metrics: Record<string, number>;
    fitSeconds: number;
  }[];
  /** Mean and (population) standard deviation over folds. */
  aggregate: Record<string, { mean: number; std: number }>;
}

export interface CrossValidateOptions {
  /** Explicit splits; otherwise `folds` (default 5), stratified for classification tasks. */
  splits?: Split[];
  folds?: number;
  /** 'kfold' | 'stratified' | 'time-series'; default stratified for binary/multiclass, else kfold. */
  scheme?: 'kfold' | 'stratified' | 'time-series';
  shuffle?: boolean;
  seed?: number;
  /** Metric names from the METRICS registry; default: the task's usual set. */
  metrics?: string[];
  /** Needed to pick defaults when the learner does not say its task. */
  task?: Task;
}

const DEFAULT_METRICS: Record<Task, string[]> = {
  binary: ['auc', 'logloss', 'accuracy', 'average_precision', 'brier'],
  multiclass: ['logloss', 'accuracy', 'f1_macro'],
  regression: ['rmse', 'mae', 'r2'],
  anomaly: ['auc', 'average_precision'],
};

type TaskParams = { task?: Task; objective?: string; estimator?: { params?: unknown } };

/** The task a learner's params name: `task` (linear), `objective` (GBDT), a pipeline's estimator's. */
function taskOfLearner(learner: { params?: unknown }): Task {
  const p = learner.params as TaskParams | undefined;
  if (p?.task) return p.task;
  if (p?.objective)
    return p.objective === 'binary' || p.objective === 'multiclass' ? p.objective : 'regression';
  if (p?.estimator) return taskOfLearner(p.estimator);
  return 'binary';
}

/** Fits the learner on each split's training rows and scores its test rows. */
export async function crossValidate(
  learner: Learner<unknown>,
  data: TrainingData,
  options: CrossValidateOptions = {},
): Promise<CrossValidationResult> {
  if (!data.y)
    throw new KilnError('INVALID_PARAMETER_VALUE', 'crossValidate: needs labels (y) to score the folds');
  const task = options.task ?? taskOfLearner(learner);
  const k = options.folds ?? 5;
  const scheme = options.scheme ?? (task === 'binary' || task === 'multiclass' ? 'stratified' : 'kfold');
  const splits =
    options.splits ??
    (scheme === 'stratified'
      ? stratifiedKFoldSplits(data.y, k, { shuffle: options.shuffle ?? true, seed: options.seed })
      : scheme === 'time-series'
        ? timeSeriesSplits(data.x.nRows, k)
        : kFoldSplits(data.x.nRows, k, { shuffle: options.shuffle ?? true, seed: options.seed }));
  const names = options.metrics ?? DEFAULT_METRICS[task];
  const specs = names.map(getMetric);
  const folds: CrossValidationResult['folds'] = [];
  for (const [f, split] of splits.entries()) {
    const train = selectData(data, split.train);
    const test = selectData(data, split.test);
    const t0 = performance.now();
    const model = await learner.fit(train);
    const fitSeconds = (performance.now() - t0) / 1000;
    const pred = model.predict(test.x);
    const metrics: Record<string, number> = {};
    for (const spec of specs) metrics[spec.name] = spec.fn(test.y!, pred, test.weight);
    folds.push({ fold: f, trainRows: split.train.length, testRows: split.test.length, metrics, fitSeconds });
  }
  const aggregate: CrossValidationResult['aggregate'] = {};
  for (const spec of specs) {
    const v = folds.map((f) => f.metrics[spec.name]);
    const mean = v.reduce((a, b) => a + b, 0) / v.length;
    const std = Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / v.length);
    aggregate[spec.name] = { mean, std };
  }
  return { metrics: specs.map((s) => s.name), folds, aggregate };
}

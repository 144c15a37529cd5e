import { KilnError } from '../../errors.js';
import type { Task } from '../types.js';
import { accuracy, brierScore, logLoss, precisionRecallFscore, predictedClasses } from './classification.js';
import { averagePrecision, prAuc, rocAuc, rocAucOvr } from './ranking.js';
import { mae, mape, mse, r2, rmse } from './regression.js';

/**
 * Metrics by name, so trainers (early stopping), tuners and reports can take a metric as a
 * string. Every function takes predictions in `Model.predict` layout: binary → probability of
 * class 1 (or anomaly score), multiclass → row-major nRows × K probabilities, regression →
 * the value. Hard-label metrics threshold binary probabilities at 0.5 and take the argmax
 * for multiclass.
 */
export type MetricFn = (
  yTrue: ArrayLike<number>,
  pred: ArrayLike<number>,
  weight?: ArrayLike<number>,
) => number;

export interface MetricSpec {
  name: string;
  direction: 'maximize' | 'minimize';
  /** Tasks the metric is defined for. */
  tasks: readonly Task[];
  fn: MetricFn;
  description: string;
}

const CLASSIFICATION: readonly Task[] = ['binary', 'multiclass'];
const SCORED: readonly Task[] = ['binary', 'anomaly'];

function labels(yTrue: ArrayLike<number>, pred: ArrayLike<number>): Float64Array {
  return predictedClasses(pred, yTrue.length);
}

function isMulticlass(yTrue: ArrayLike<number>, pred: ArrayLike<number>): boolean {
  return pred.length !== yTrue.length;
}

const specs: MetricSpec[] = [
  {
    name: 'auc',
    direction: 'maximize',
    tasks: ['binary', 'multiclass', 'anomaly'],
    fn: (y, p, w) => (isMulticlass(y, p) ? rocAucOvr(y, p, w) : rocAuc(y, p, w)),
    description: 'ROC AUC (multiclass: one-vs-rest, macro average)',
  },
  {
    name: 'average_precision',
    direction: 'maximize',
    tasks: SCORED,
    fn: averagePrecision,
    description: 'average precision (step-wise area under the PR curve)',
  },
  {
    name: 'pr_auc',
    direction: 'maximize',
    tasks: SCORED,
    fn: prAuc,
    description: 'trapezoidal area under the PR curve',
  },
  {
    name: 'logloss',
    direction: 'minimize',
    tasks: CLASSIFICATION,
    fn: logLoss,
    description: 'negative log-likelihood (binary or multiclass)',
  },
  { name: 'brier', direction: 'minimize', tasks: ['binary'], fn: brierScore, description: 'Brier score' },
  {
    name: 'accuracy',
    direction: 'maximize',
    tasks: CLASSIFICATION,
    fn: (y, p, w) => accuracy(y, labels(y, p), w),
    description: 'accuracy at threshold 0.5 / argmax',
  },
  {
    name: 'error',
    direction: 'minimize',
    tasks: CLASSIFICATION,
    fn: (y, p, w) => 1 - accuracy(y, labels(y, p), w),
    description: '1 − accuracy',
  },
  {
    name: 'precision',
    direction: 'maximize',
    tasks: ['binary'],
    fn: (y, p, w) => precisionRecallFscore(y, labels(y, p), { weight: w }).precision,
    description: 'precision of class 1 at threshold 0.5',
  },
  {
    name: 'recall',
    direction: 'maximize',
    tasks: ['binary'],
    fn: (y, p, w) => precisionRecallFscore(y, labels(y, p), { weight: w }).recall,
    description: 'recall of class 1 at threshold 0.5',
  },
  {
    name: 'f1',
    direction: 'maximize',
    tasks: ['binary'],
    fn: (y, p, w) => precisionRecallFscore(y, labels(y, p), { weight: w }).f,
    description: 'F1 of class 1 at threshold 0.5',
  },
  {
    name: 'f1_macro',
    direction: 'maximize',
    tasks: CLASSIFICATION,
    fn: (y, p, w) => precisionRecallFscore(y, labels(y, p), { weight: w, average: 'macro' }).f,
    description: 'F1 averaged over classes',
  },
  {
    name: 'f1_weighted',
    direction: 'maximize',
    tasks: CLASSIFICATION,
    fn: (y, p, w) => precisionRecallFscore(y, labels(y, p), { weight: w, average: 'weighted' }).f,
    description: 'F1 averaged over classes, weighted by support',
  },
  {
    name: 'rmse',
    direction: 'minimize',
    tasks: ['regression'],
    fn: rmse,
    description: 'root mean squared error',
  },
  { name: 'mse', direction: 'minimize', tasks: ['regression'], fn: mse, description: 'mean squared error' },
  { name: 'mae', direction: 'minimize', tasks: ['regression'], fn: mae, description: 'mean absolute error' },
  {
    name: 'r2',
    direction: 'maximize',
    tasks: ['regression'],
    fn: r2,
    description: 'coefficient of determination',
  },
  {
    name: 'mape',
    direction: 'minimize',
    tasks: ['regression'],
    fn: mape,
    description: 'mean absolute percentage error (fraction)',
  },
];

export const METRICS: Readonly<Record<string, MetricSpec>> = Object.freeze(
  Object.fromEntries(specs.map((s) => [s.name, s])),
);

/** Other spellings users bring from sklearn / XGBoost / LightGBM. */
const ALIASES: Record<string, string> = {
  roc_auc: 'auc',
  log_loss: 'logloss',
  mlogloss: 'logloss',
  binary_logloss: 'logloss',
  multi_logloss: 'logloss',
  merror: 'error',
  brier_score: 'brier',
  aucpr: 'average_precision',
  l2: 'mse',
  l1: 'mae',
};

export function getMetric(name: string): MetricSpec {
  const spec = METRICS[name] ?? METRICS[ALIASES[name] ?? ''];
  if (!spec) {
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      `unknown metric '${name}' (known: ${Object.keys(METRICS).join(', ')}; aliases: ${Object.keys(ALIASES).join(', ')})`,
    );
  }
  return spec;
}

/** The metric a task is judged by when the user names none. */
export function defaultMetric(task: Task): MetricSpec {
  return getMetric(task === 'regression' ? 'rmse' : task === 'multiclass' ? 'logloss' : 'auc');
}

/** True when `a` is a better value than `b` for this metric. */
export function isBetter(spec: MetricSpec, a: number, b: number): boolean {
  return spec.direction === 'maximize' ? a > b : a < b;
}

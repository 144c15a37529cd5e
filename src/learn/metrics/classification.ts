import { KilnError } from '../../errors.js';
import { checkBinaryLabels, checkWeights } from './ranking.js';

/**
 * Classification metrics over class codes (0..K-1) or probabilities, matching scikit-learn 1.2
 * including its edge cases (zero division gives 0, weighted averages by true-class support).
 */

export type Average = 'binary' | 'macro' | 'weighted' | 'micro';

export interface ClassMetricOptions {
  average?: Average;
  weight?: ArrayLike<number>;
}

function checkSameLength(a: ArrayLike<number>, b: ArrayLike<number>, where: string): void {
  if (a.length !== b.length) {
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      `${where}: ${a.length} labels but ${b.length} predictions`,
    );
  }
  if (a.length === 0) throw new KilnError('INVALID_PARAMETER_VALUE', `${where}: no rows`);
}

function weightedMean(values: ArrayLike<number>, weight: ArrayLike<number> | undefined): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < values.length; i++) {
    const w = weight ? weight[i] : 1;
    num += values[i] * w;
    den += w;
  }
  if (den === 0) throw new KilnError('INVALID_PARAMETER_VALUE', 'weights sum to zero');
  return num / den;
}

/** Fraction (weighted) of rows whose predicted class equals the true class. */
export function accuracy(
  yTrue: ArrayLike<number>,
  yPred: ArrayLike<number>,
  weight?: ArrayLike<number>,
): number {
  checkSameLength(yTrue, yPred, 'accuracy');
  checkWeights(weight, yTrue.length, 'accuracy');
  let num = 0;
  let den = 0;
  for (let i = 0; i < yTrue.length; i++) {
    const w = weight ? weight[i] : 1;
    if (yTrue[i] === yPred[i]) num += w;
    den += w;
  }
  return num / den;
}

/** Sorted distinct class codes seen in either array (sklearn's unique_labels). */
export function presentLabels(yTrue: ArrayLike<number>, yPred: ArrayLike<number>): number[] {
  const set = new Set<number>();
  for (let i = 0; i < yTrue.length; i++) set.add(yTrue[i]);
  for (let i = 0; i < yPred.length; i++) set.add(yPred[i]);
  for (const v of set) {
    if (Number.isNaN(v)) throw new KilnError('INVALID_PARAMETER_VALUE', 'class labels contain NaN');
  }
  return [...set].sort((a, b) => a - b);
}

export interface ConfusionMatrix {
  /** Class codes, in the order of rows and columns. */
  labels: number[];
  /** matrix[i][j] = (weighted) count of rows with true label labels[i] predicted as labels[j]. */
  matrix: number[][];
}

export function confusionMatrix(
  yTrue: ArrayLike<number>,
  yPred: ArrayLike<number>,
  options: { labels?: number[]; weight?: ArrayLike<number> } = {},
): ConfusionMatrix {
  checkSameLength(yTrue, yPred, 'confusionMatrix');
  checkWeights(options.weight, yTrue.length, 'confusionMatrix');
  const labels = options.labels ?? presentLabels(yTrue, yPred);
  const pos = new Map<number, number>(labels.map((l, i) => [l, i]));
  const k = labels.length;
  const flat = new Float64Array(k * k);
  for (let r = 0; r < yTrue.length; r++) {
    const i = pos.get(yTrue[r]);
    const j = pos.get(yPred[r]);
    if (i === undefined || j === undefined) continue;
    flat[i * k + j] += options.weight ? options.weight[r] : 1;
  }
  const matrix: number[][] = [];
  for (let i = 0; i < k; i++) matrix.push(Array.from(flat.subarray(i * k, (i + 1) * k)));
  return { labels, matrix };
}

export interface PrecisionRecallF {
  precision: number;
  recall: number;
  f: number;
}

/**
 * Precision, recall and F-beta with sklearn's averaging: 'binary' scores class 1 only,
 * 'macro' the unweighted mean over classes, 'weighted' the mean weighted by each class's
 * true count, 'micro' from global counts. A 0/0 ratio counts as 0.
 */
export function precisionRecallFscore(
  yTrue: ArrayLike<number>,
  yPred: ArrayLike<number>,
  options: ClassMetricOptions & { beta?: number } = {},
): PrecisionRecallF {
  const where = 'precisionRecallFscore';
  checkSameLength(yTrue, yPred, where);
  checkWeights(options.weight, yTrue.length, where);
  const average = options.average ?? 'binary';
  const beta2 = (options.beta ?? 1) ** 2;
  const present = presentLabels(yTrue, yPred);
  let labels = present;
  if (average === 'binary') {
    if (present.some((l) => l !== 0 && l !== 1)) {
      throw new KilnError(
        'INVALID_PARAMETER_VALUE',
        `${where}: average 'binary' needs labels 0/1, found ${present.join(', ')}; use 'macro', 'weighted' or 'micro'`,
      );
    }
    labels = [1];
  }
  const k = labels.length;
  const pos = new Map<number, number>(labels.map((l, i) => [l, i]));
  let tp = new Float64Array(k);
  let predSum = new Float64Array(k);
  let trueSum = new Float64Array(k);
  for (let r = 0; r < yTrue.length; r++) {
    const w = options.weight ? options.weight[r] : 1;
    const t = pos.get(yTrue[r]);
    const p = pos.get(yPred[r]);
    if (t !== undefined) trueSum[t] += w;
    if (p !== undefined) predSum[p] += w;
    if (t !== undefined && yTrue[r] === yPred[r]) tp[t] += w;
  }
  if (average === 'micro') {
    tp = Float64Array.of(tp.reduce((a, b) => a + b, 0));
    predSum = Float64Array.of(predSum.reduce((a, b) => a + b, 0));
    trueSum = Float64Array.of(trueSum.reduce((a, b) => a + b, 0));
  }
  const m = tp.length;
  const precision = new Float64Array(m);
  const recall = new Float64Array(m);
  const f = new Float64Array(m);
  for (let i = 0; i < m; i++) {
    precision[i] = predSum[i] === 0 ? 0 : tp[i] / predSum[i];
    recall[i] = trueSum[i] === 0 ? 0 : tp[i] / trueSum[i];
    let denom = beta2 * precision[i] + recall[i];
    if (denom === 0) denom = 1;
    f[i] = ((1 + beta2) * precision[i] * recall[i]) / denom;
  }
  let weights: Float64Array | undefined;
  if (average === 'weighted') {
    weights = trueSum;
    if (trueSum.reduce((a, b) => a + b, 0) === 0) return { precision: 0, recall: 0, f: 0 };
  }
  return {
    precision: weightedMean(precision, weights),
    recall: weightedMean(recall, weights),
    f: weightedMean(f, weights),
  };
}

export function precision(
  yTrue: ArrayLike<number>,
  yPred: ArrayLike<number>,
  options?: ClassMetricOptions,
): number {
  return precisionRecallFscore(yTrue, yPred, options).precision;
}

export function recall(
  yTrue: ArrayLike<number>,
  yPred: ArrayLike<number>,
  options?: ClassMetricOptions,
): number {
  return precisionRecallFscore(yTrue, yPred, options).recall;
}

export function f1(yTrue: ArrayLike<number>, yPred: ArrayLike<number>, options?: ClassMetricOptions): number {
  return precisionRecallFscore(yTrue, yPred, options).f;
}

const EPS = 2.220446049250313e-16;

/**
 * Mean (weighted) negative log-likelihood. `prob` is either one probability of class 1 per
 * row (binary) or row-major nRows × K class probabilities with yTrue in 0..K-1. Probabilities
 * are clipped to [eps, 1 − eps] and rows renormalised, as sklearn does.
 */
export function logLoss(
  yTrue: ArrayLike<number>,
  prob: ArrayLike<number>,
  weight?: ArrayLike<number>,
): number {
  const n = yTrue.length;
  if (n === 0) throw new KilnError('INVALID_PARAMETER_VALUE', 'logLoss: no rows');
  checkWeights(weight, n, 'logLoss');
  const k = prob.length / n;
  if (prob.length === n) {
    checkBinaryLabels(yTrue, n, 'logLoss');
    let num = 0;
    let den = 0;
    for (let i = 0; i < n; i++) {
      const p = Math.min(Math.max(prob[i], EPS), 1 - EPS);
      const q = 1 - p;
      const s = q + p;
      const loss = -Math.log(yTrue[i] === 1 ? p / s : q / s);
      const w = weight ? weight[i] : 1;
      num += loss * w;
      den += w;
    }
    return num / den;
  }
  if (!Number.isInteger(k) || k < 2) {
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      `logLoss: ${prob.length} probabilities for ${n} rows is not n × K`,
    );
  }
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    const y = yTrue[i];
    if (!Number.isInteger(y) || y < 0 || y >= k) {
      throw new KilnError(
        'INVALID_PARAMETER_VALUE',
        `logLoss: label at row ${i} is ${y}, expected a class in 0..${k - 1}`,
      );
    }
    let s = 0;
    for (let c = 0; c < k; c++) s += Math.min(Math.max(prob[i * k + c], EPS), 1 - EPS);
    const p = Math.min(Math.max(prob[i * k + y], EPS), 1 - EPS);
    const w = weight ? weight[i] : 1;
    num += -Math.log(p / s) * w;
    den += w;
  }
  return num / den;
}

/** Mean (weighted) squared difference between the probability of class 1 and the 0/1 label. */
export function brierScore(
  yTrue: ArrayLike<number>,
  prob: ArrayLike<number>,
  weight?: ArrayLike<number>,
): number {
  checkBinaryLabels(yTrue, prob.length, 'brierScore');
  checkWeights(weight, prob.length, 'brierScore');
  for (let i = 0; i < prob.length; i++) {
    if (!(prob[i] >= 0 && prob[i] <= 1)) {
      throw new KilnError(
        'INVALID_PARAMETER_VALUE',
        `brierScore: probability at row ${i} is ${prob[i]}, outside [0, 1]`,
      );
    }
  }
  const sq = new Float64Array(prob.length);
  for (let i = 0; i < prob.length; i++) sq[i] = (yTrue[i] - prob[i]) ** 2;
  return weightedMean(sq, weight);
}

/** Class codes from predictions: binary probability > threshold → 1; multiclass argmax. */
export function predictedClasses(prob: ArrayLike<number>, nRows: number, threshold = 0.5): Float64Array {
  const out = new Float64Array(nRows);
  const k = prob.length / nRows;
  if (k === 1) {
    for (let i = 0; i < nRows; i++) out[i] = prob[i] > threshold ? 1 : 0;
    return out;
  }
  for (let i = 0; i < nRows; i++) {
    let best = 0;
    for (let c = 1; c < k; c++) if (prob[i * k + c] > prob[i * k + best]) best = c;
    out[i] = best;
  }
  return out;
}

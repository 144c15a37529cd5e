import { KilnError } from '../../errors.js';
import { labelsByScoreDescending, orderByScoreDescending } from './sort-scores.js';

/**
 * Ranking metrics for binary labels (1 = positive, 0 = negative), computed exactly as
 * scikit-learn 1.2 does: rows are grouped by distinct score, so tied scores form one step of
 * the curve (ROC AUC counts a positive/negative tie as half a correct pair).
 */

export interface RocCurve {
  fpr: Float64Array;
  tpr: Float64Array;
  /** Decreasing; thresholds[0] is max(score) + 1 as in sklearn 1.2 (no row is predicted positive). */
  thresholds: Float64Array;
}

export interface PrCurve {
  /** Precision at each threshold, ending with 1 (sklearn's convention). */
  precision: Float64Array;
  /** Recall at each threshold, decreasing, ending with 0. */
  recall: Float64Array;
  /** Increasing; one fewer entry than precision/recall. */
  thresholds: Float64Array;
}

interface ClfCurve {
  fps: Float64Array;
  tps: Float64Array;
  thresholds: Float64Array;
}

export function checkBinaryLabels(yTrue: ArrayLike<number>, n: number, where: string): void {
  if (yTrue.length !== n) {
    throw new KilnError('INVALID_PARAMETER_VALUE', `${where}: ${yTrue.length} labels but ${n} predictions`);
  }
  for (let i = 0; i < n; i++) {
    const y = yTrue[i];
    if (y !== 0 && y !== 1) {
      throw new KilnError('INVALID_PARAMETER_VALUE', `${where}: label at row ${i} is ${y}, expected 0 or 1`);
    }
  }
}

export function checkWeights(weight: ArrayLike<number> | undefined, n: number, where: string): void {
  if (!weight) return;
  if (weight.length !== n) {
    throw new KilnError('INVALID_PARAMETER_VALUE', `${where}: ${weight.length} weights but ${n} rows`);
  }
  for (let i = 0; i < n; i++) {
    const w = weight[i];
    if (!(w >= 0) || !Number.isFinite(w)) {
      throw new KilnError(
        'INVALID_PARAMETER_VALUE',
        `${where}: weight at row ${i} is ${w}, expected finite and >= 0`,
      );
    }
  }
}

/** Cumulative true and false positives at each distinct score, highest score first. */
function binaryClfCurve(
  yTrue: ArrayLike<number>,
  score: ArrayLike<number>,
  weight: ArrayLike<number> | undefined,
  where: string,
): ClfCurve {
  const n = score.length;
  checkBinaryLabels(yTrue, n, where);
  checkWeights(weight, n, where);
  if (weight) {
    // sklearn drops zero-weight rows before building the curve, so they create no threshold.
    let kept = 0;
    for (let i = 0; i < n; i++) if (weight[i] !== 0) kept++;
    if (kept < n) {
      const y = new Float64Array(kept);
      const s = new Float64Array(kept);
      const w = new Float64Array(kept);
      let j = 0;
      for (let i = 0; i < n; i++) {
        if (weight[i] === 0) continue;
        y[j] = yTrue[i];
        s[j] = score[i];
        w[j++] = weight[i];
      }
      yTrue = y;
      score = s;
      weight = w;
    }
  }
  const m = score.length;
  if (m === 0) throw new KilnError('INVALID_PARAMETER_VALUE', `${where}: no rows with non-zero weight`);
  const order = orderByScoreDescending(score, where);
  // Typed arrays sized for the worst case (every score distinct), trimmed at the end: GBDT
  // early stopping builds this curve for the validation set every round.
  const fps = new Float64Array(m);
  const tps = new Float64Array(m);
  const thresholds = new Float64Array(m);
  let nPoints = 0;
  let tp = 0;
  let fp = 0;
  for (let k = 0; k < m; k++) {
    const r = order[k];
    const w = weight ? weight[r] : 1;
    if (yTrue[r] === 1) tp += w;
    else fp += w;
    const s = score[r];
    if (k === m - 1 || score[order[k + 1]] !== s) {
      fps[nPoints] = fp;
      tps[nPoints] = tp;
      thresholds[nPoints++] = s;
    }
  }
  return {
    fps: fps.subarray(0, nPoints),
    tps: tps.subarray(0, nPoints),
    thresholds: thresholds.subarray(0, nPoints),
  };
}

/** ROC curve, with sklearn's drop_intermediate (collinear points removed) on by default. */
export function rocCurve(
  yTrue: ArrayLike<number>,
  score: ArrayLike<number>,
  weight?: ArrayLike<number>,
  options: { dropIntermediate?: boolean } = {},
): RocCurve {
  return rocCurveFromCounts(binaryClfCurve(yTrue, score, weight, 'rocCurve'), options);
}

/**
 * The cumulative counts every ranking curve and metric of one scored data set derives from:
 * build them once (one sort) and read the ROC curve, PR curve, AUC and average precision
 * from them, instead of sorting the scores once per curve (learn/evaluate's report does).
 */
export type BinaryCurveCounts = ClfCurve;

export function binaryCurveCounts(
  yTrue: ArrayLike<number>,
  score: ArrayLike<number>,
  weight?: ArrayLike<number>,
  where = 'binaryCurveCounts',
): BinaryCurveCounts {
  return binaryClfCurve(yTrue, score, weight, where);
}

/** rocCurve from counts built once (binaryCurveCounts). */
export function rocCurveFromCounts(
  counts: BinaryCurveCounts,
  options: { dropIntermediate?: boolean } = {},
): RocCurve {
  let { fps, tps, thresholds } = counts;
  if ((options.dropIntermediate ?? true) && fps.length > 2) {
    const keep: number[] = [0];
    for (let i = 1; i < fps.length - 1; i++) {
      const d2f = fps[i + 1] - fps[i] - (fps[i] - fps[i - 1]);
      const d2t = tps[i + 1] - tps[i] - (tps[i] - tps[i - 1]);
      if (d2f !== 0 || d2t !== 0) keep.push(i);
    }
    keep.push(fps.length - 1);
    fps = Float64Array.from(keep, (i) => fps[i]);
    tps = Float64Array.from(keep, (i) => tps[i]);
    thresholds = Float64Array.from(keep, (i) => thresholds[i]);
  }
  const m = fps.length + 1;
  const fpr = new Float64Array(m);
  const tpr = new Float64Array(m);
  const th = new Float64Array(m);
  const fpTotal = fps[fps.length - 1];
  const tpTotal = tps[tps.length - 1];
  th[0] = thresholds[0] + 1;
  for (let i = 1; i < m; i++) {
    fpr[i] = fpTotal > 0 ? fps[i - 1] / fpTotal : Number.NaN;
    tpr[i] = tpTotal > 0 ? tps[i - 1] / tpTotal : Number.NaN;
    th[i] = thresholds[i - 1];
  }
  if (fpTotal <= 0) fpr[0] = Number.NaN;
  if (tpTotal <= 0) tpr[0] = Number.NaN;
  return { fpr, tpr, thresholds: th };
}

/** Area under a curve by the trapezoidal rule; x must be monotonic (either direction). */
export function trapezoidArea(x: ArrayLike<number>, y: ArrayLike<number>): number {
  if (x.length < 2) {
    throw new KilnError('INVALID_PARAMETER_VALUE', `trapezoidArea: need at least 2 points, got ${x.length}`);
  }
  let direction = 1;
  let increasing = true;
  let decreasing = true;
  for (let i = 1; i < x.length; i++) {
    const d = x[i] - x[i - 1];
    if (d < 0) increasing = false;
    if (d > 0) decreasing = false;
  }
  if (!increasing) {
    if (decreasing) direction = -1;
    else
      throw new KilnError('INVALID_PARAMETER_VALUE', 'trapezoidArea: x is neither increasing nor decreasing');
  }
  let area = 0;
  for (let i = 1; i < x.length; i++) area += ((x[i] - x[i - 1]) * (y[i] + y[i - 1])) / 2;
  return direction * area;
}

/** Area under the ROC curve (binary labels 0/1, any real-valued score). */
export function rocAuc(
  yTrue: ArrayLike<number>,
  score: ArrayLike<number>,
  weight?: ArrayLike<number>,
): number {
  if (!weight && score.length >= 4096) return rocAucUnweighted(yTrue, score);
  return rocAucFromCounts(binaryClfCurve(yTrue, score, weight, 'rocAuc'));
}

/** rocAuc from counts built once (binaryCurveCounts). */
export function rocAucFromCounts(counts: BinaryCurveCounts): number {
  const { fps, tps } = counts;
  const fpTotal = fps[fps.length - 1];
  const tpTotal = tps[tps.length - 1];
  if (!(fpTotal > 0) || !(tpTotal > 0)) {
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      'rocAuc: only one class is present in the labels; ROC AUC is not defined',
    );
  }
  // The trapezoids under the ROC curve's points straight from the counts: sklearn's
  // roc_curve + auc without materialising the curve (dropping collinear points, as sklearn
  // does, leaves the area unchanged).
  let area = 0;
  let fpPrev = 0;
  let tpPrev = 0;
  for (let i = 0; i < fps.length; i++) {
    area += (fps[i] - fpPrev) * (tps[i] + tpPrev);
    fpPrev = fps[i];
    tpPrev = tps[i];
  }
  return area / (2 * fpTotal * tpTotal);
}

/**
 * rocAuc without weights on large inputs, the case GBDT early stopping hits every round: the
 * same trapezoids, from labels sorted with their keys (see labelsByScoreDescending).
 */
function rocAucUnweighted(yTrue: ArrayLike<number>, score: ArrayLike<number>): number {
  const n = score.length;
  checkBinaryLabels(yTrue, n, 'rocAuc');
  const { labels, hi, lo } = labelsByScoreDescending(yTrue, score, 'rocAuc');
  let tp = 0;
  let fp = 0;
  let area = 0;
  let fpPrev = 0;
  let tpPrev = 0;
  for (let k = 0; k < n; k++) {
    if (labels[k] === 1) tp++;
    else fp++;
    // The end of a run of equal scores is one point of the curve.
    if (k === n - 1 || hi[k + 1] !== hi[k] || lo[k + 1] !== lo[k]) {
      area += (fp - fpPrev) * (tp + tpPrev);
      fpPrev = fp;
      tpPrev = tp;
    }
  }
  if (fp === 0 || tp === 0) {
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      'rocAuc: only one class is present in the labels; ROC AUC is not defined',
    );
  }
  return area / (2 * fp * tp);
}

/**
 * One-vs-rest ROC AUC for K classes, macro-averaged (sklearn's multi_class='ovr',
 * average='macro'); prob is row-major nRows × K.
 */
export function rocAucOvr(
  yTrue: ArrayLike<number>,
  prob: ArrayLike<number>,
  weight?: ArrayLike<number>,
): number {
  const n = yTrue.length;
  const k = n > 0 ? prob.length / n : 0;
  if (!Number.isInteger(k) || k < 2) {
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      `rocAucOvr: ${prob.length} probabilities for ${n} rows is not n × K`,
    );
  }
  const y = new Float64Array(n);
  const s = new Float64Array(n);
  let sum = 0;
  for (let c = 0; c < k; c++) {
    for (let i = 0; i < n; i++) {
      y[i] = yTrue[i] === c ? 1 : 0;
      s[i] = prob[i * k + c];
    }
    sum += rocAuc(y, s, weight);
  }
  return sum / k;
}

/** Precision-recall curve as sklearn 1.2's precision_recall_curve returns it. */
export function prCurve(
  yTrue: ArrayLike<number>,
  score: ArrayLike<number>,
  weight?: ArrayLike<number>,
): PrCurve {
  return prCurveFromCounts(binaryClfCurve(yTrue, score, weight, 'prCurve'));
}

/** prCurve from counts built once (binaryCurveCounts). */
export function prCurveFromCounts(counts: BinaryCurveCounts): PrCurve {
  const { fps, tps, thresholds } = counts;
  const m = tps.length;
  const tpTotal = tps[m - 1];
  const precision = new Float64Array(m + 1);
  const recall = new Float64Array(m + 1);
  const th = new Float64Array(m);
  for (let i = 0; i < m; i++) {
    const j = m - 1 - i;
    const ps = tps[j] + fps[j];
    precision[i] = ps !== 0 ? tps[j] / ps : 0;
    recall[i] = tpTotal === 0 ? 1 : tps[j] / tpTotal;
    th[i] = thresholds[j];
  }
  precision[m] = 1;
  recall[m] = 0;
  return { precision, recall, thresholds: th };
}

/** Average precision: sum over thresholds of (R_n − R_{n−1}) · P_n (no interpolation). */
export function averagePrecision(
  yTrue: ArrayLike<number>,
  score: ArrayLike<number>,
  weight?: ArrayLike<number>,
): number {
  if (!weight && score.length >= 4096) {
    const ap = averagePrecisionUnweighted(yTrue, score);
    if (ap !== null) return ap;
  }
  return averagePrecisionFromCounts(binaryClfCurve(yTrue, score, weight, 'prCurve'));
}

/** averagePrecision from counts built once (binaryCurveCounts). */
export function averagePrecisionFromCounts(counts: BinaryCurveCounts): number {
  const { precision, recall } = prCurveFromCounts(counts);
  let ap = 0;
  for (let i = 0; i < recall.length - 1; i++) ap -= (recall[i + 1] - recall[i]) * precision[i];
  return ap;
}

/**
 * averagePrecision without weights on large inputs: Σ (recall_k − recall_k−1) · precision_k
 * over the distinct scores, highest first, from labels sorted with their keys. Null when no
 * label is positive (the curve path handles that case as sklearn does).
 */
function averagePrecisionUnweighted(yTrue: ArrayLike<number>, score: ArrayLike<number>): number | null {
  const n = score.length;
  checkBinaryLabels(yTrue, n, 'prCurve');
  const { labels, hi, lo } = labelsByScoreDescending(yTrue, score, 'prCurve');
  let positives = 0;
  for (let k = 0; k < n; k++) positives += labels[k];
  if (positives === 0) return null;
  let tp = 0;
  let fp = 0;
  let ap = 0;
  let recallPrev = 0;
  for (let k = 0; k < n; k++) {
    if (labels[k] === 1) tp++;
    else fp++;
    if (k === n - 1 || hi[k + 1] !== hi[k] || lo[k + 1] !== lo[k]) {
      const recall = tp / positives;
      ap += (recall - recallPrev) * (tp / (tp + fp));
      recallPrev = recall;
    }
  }
  return ap;
}

/** Area under the PR curve by the trapezoidal rule (sklearn's auc(recall, precision)). */
export function prAuc(
  yTrue: ArrayLike<number>,
  score: ArrayLike<number>,
  weight?: ArrayLike<number>,
): number {
  const { precision, recall } = prCurve(yTrue, score, weight);
  return trapezoidArea(recall, precision);
}

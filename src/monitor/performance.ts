import { KilnError } from '../errors.js';
import { logLoss, mae, precisionRecallFscore, rmse, rocAuc } from '../learn/index.js';
import type { MonitoredModel, TrainingReference } from './model-reference.js';
import type { WindowData } from './window-scan.js';

/**
 * Live performance of a window: measured on the labelled requests (labels arrive later through
 * feedback), and — for binary probability models — estimated on every prediction before labels
 * arrive, by confidence-based performance estimation (NannyML's CBPE).
 *
 * CBPE reads each predicted probability p as the chance the row is positive, so a row predicted
 * positive (p ≥ threshold) is a true positive with probability p and a false positive with 1 − p
 * (and so on); summing gives an expected confusion matrix, and sweeping the threshold an expected
 * ROC curve. That holds only while the model is calibrated on the current data — the assumption
 * stated in every output — so the reference's calibration (the training evaluation's curve:
 * expected calibration error and the largest bin gap) is reported next to the estimate. Under
 * concept drift (P(y | x) changing) no estimate from inputs alone can see it; measured metrics
 * will, once labels arrive.
 */
export interface BinaryMetrics {
  rows: number;
  positives?: number;
  auc?: number;
  logloss?: number;
  precision: number;
  recall: number;
  accuracy: number;
}

export interface RegressionMetrics {
  rows: number;
  rmse: number;
  mae: number;
}

export interface PerformanceBucket {
  from: string;
  to: string;
  rows: number;
  labelled: number;
  measured?: Record<string, number>;
  estimated?: Record<string, number>;
}

export interface PerformanceReport {
  model: MonitoredModel;
  task: string;
  window: { from: string; to: string; requests: number; rows: number };
  threshold?: number;
  labels: { labelled: number; unparsable: number; skippedMultiRow: number };
  measured?: Record<string, number>;
  /** The training evaluation's metrics (main held-out part) and measured − training. */
  training?: { part: string; metrics: Record<string, number> };
  change?: Record<string, number>;
  estimated?: Record<string, number> & { rows: number };
  calibration?: {
    assumption: string;
    referenceEce?: number;
    referenceMaxGap?: number;
    referenceRows?: number;
    warning?: string;
  };
  timeline: PerformanceBucket[];
}

/** Labels to 0/1 for a binary model: classes[1] (or 1, true, '1') is positive. NaN when neither class. */
export function binaryLabel(label: unknown, classes: string[] | undefined): number {
  const text = String(label);
  const [neg, pos] = classes && classes.length === 2 ? classes : ['0', '1'];
  if (text === pos || label === true || (label === 1 && pos === '1')) return 1;
  if (text === neg || label === false || (label === 0 && neg === '0')) return 0;
  if (text === 'true') return 1;
  if (text === 'false') return 0;
  return Number.NaN;
}

export function binaryMetrics(y: ArrayLike<number>, p: ArrayLike<number>, threshold: number): BinaryMetrics {
  const n = y.length;
  let positives = 0;
  for (let i = 0; i < n; i++) positives += y[i]!;
  const predicted = new Float64Array(n);
  let correct = 0;
  for (let i = 0; i < n; i++) {
    predicted[i] = p[i]! >= threshold ? 1 : 0;
    if (predicted[i] === y[i]) correct++;
  }
  const pr = precisionRecallFscore(y, predicted);
  const both = positives > 0 && positives < n;
  const clipped = Float64Array.from(p as ArrayLike<number>, (v) => Math.min(1, Math.max(0, v)));
  return {
    rows: n,
    positives,
    ...(both ? { auc: rocAuc(y, p) } : {}),
    ...(both ? { logloss: logLoss(y, clipped) } : {}),
    precision: pr.precision as number,
    recall: pr.recall as number,
    accuracy: correct / n,
  };
}

/** CBPE: the expected confusion matrix at `threshold` and the expected ROC AUC, from probabilities alone. */
export function estimateBinaryMetrics(
  p: ArrayLike<number>,
  threshold: number,
): Record<string, number> & { rows: number } {
  const n = p.length;
  let tp = 0;
  let fp = 0;
  let tn = 0;
  let fn = 0;
  for (let i = 0; i < n; i++) {
    const q = Math.min(1, Math.max(0, p[i]!));
    if (q >= threshold) {
      tp += q;
      fp += 1 - q;
    } else {
      fn += q;
      tn += 1 - q;
    }
  }
  const out: Record<string, number> & { rows: number } = {
    rows: n,
    precision: tp + fp > 0 ? tp / (tp + fp) : 0,
    recall: tp + fn > 0 ? tp / (tp + fn) : 0,
    accuracy: n > 0 ? (tp + tn) / n : 0,
  };
  const auc = expectedAuc(p);
  if (auc !== undefined) out.auc = auc;
  return out;
}

/**
 * The expected ROC curve's area: rows sorted by p descending, each threshold between distinct
 * values adds p to the expected true positives and 1 − p to the false ones (ties form one step,
 * a diagonal segment, as in rocAuc).
 */
function expectedAuc(p: ArrayLike<number>): number | undefined {
  const sorted = Float64Array.from(p as ArrayLike<number>, (v) => Math.min(1, Math.max(0, v)))
    .sort()
    .reverse();
  let P = 0;
  for (const v of sorted) P += v;
  const N = sorted.length - P;
  if (!(P > 0 && N > 0)) return undefined;
  let area = 0;
  let tp = 0;
  let i = 0;
  while (i < sorted.length) {
    let dtp = 0;
    let dfp = 0;
    const v = sorted[i]!;
    while (i < sorted.length && sorted[i] === v) {
      dtp += sorted[i]!;
      dfp += 1 - sorted[i]!;
      i++;
    }
    area += (dfp / N) * ((tp + tp + dtp) / (2 * P));
    tp += dtp;
  }
  return area;
}

/** The reference's calibration from the evaluation's curve (bins with probPred, probTrue, count). */
export function referenceCalibration(
  curve: { probTrue: number[]; probPred: number[]; count: number[] } | undefined,
) {
  if (!curve || curve.count.length === 0) return undefined;
  let n = 0;
  let ece = 0;
  let maxGap = 0;
  curve.count.forEach((c, i) => {
    const gap = Math.abs(curve.probTrue[i]! - curve.probPred[i]!);
    n += c;
    ece += c * gap;
    if (gap > maxGap) maxGap = gap;
  });
  return { ece: ece / n, maxGap, rows: n };
}

const CBPE_ASSUMPTION =
  'CBPE assumes the predicted probabilities are calibrated on the current data (P(y=1 | p) = p); it cannot see concept drift (P(y | x) changing), only measured metrics can';

export function performanceReport(ref: TrainingReference, data: WindowData): PerformanceReport {
  const task = ref.task ?? (ref.classes?.length === 2 ? 'binary' : 'regression');
  if (task !== 'binary' && task !== 'regression') {
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      `performance: ${ref.model.uri} is a ${task} model; windowed performance covers binary and regression models`,
    );
  }
  const window = {
    from: new Date(data.from).toISOString(),
    to: new Date(data.to).toISOString(),
    requests: data.requests,
    rows: data.rows,
  };
  const part = ref.evaluation.test ? 'test' : ref.evaluation.valid ? 'valid' : undefined;
  const training = part ? { part, metrics: ref.evaluation[part]! } : undefined;
  const { predictions: lp, labels, bucket: lb } = data.labelled;
  const y = new Float64Array(labels.length);
  let unparsable = 0;
  const keep: number[] = [];
  for (let i = 0; i < labels.length; i++) {
    const v = task === 'binary' ? binaryLabel(labels[i], ref.classes) : Number(labels[i]);
    if (Number.isFinite(v)) {
      y[keep.length] = v;
      keep.push(i);
    } else unparsable++;
  }
  const yk = y.subarray(0, keep.length);
  const pk = Float64Array.from(keep, (i) => lp[i]!);
  const bk = Uint32Array.from(keep, (i) => lb[i]!);
  const measure = (yy: Float64Array, pp: Float64Array): Record<string, number> | undefined => {
    if (yy.length === 0) return undefined;
    if (task === 'binary') return { ...binaryMetrics(yy, pp, ref.threshold) };
    return { rows: yy.length, rmse: rmse(yy, pp), mae: mae(yy, pp) };
  };
  const measured = measure(yk, pk);
  const report: PerformanceReport = {
    model: ref.model,
    task,
    window,
    ...(task === 'binary' ? { threshold: ref.threshold } : {}),
    labels: { labelled: keep.length, unparsable, skippedMultiRow: data.labelledSkipped },
    ...(measured ? { measured } : {}),
    ...(training ? { training } : {}),
    timeline: [],
  };
  if (measured && training) {
    const change: Record<string, number> = {};
    for (const [k, v] of Object.entries(measured)) {
      if (k !== 'rows' && k !== 'positives' && training.metrics[k] !== undefined)
        change[k] = v - training.metrics[k]!;
    }
    report.change = change;
  }
  if (task === 'binary' && data.predictions.length > 0) {
    report.estimated = estimateBinaryMetrics(data.predictions, ref.threshold);
    const cal = referenceCalibration(ref.report?.curves.calibration);
    report.calibration = {
      assumption: CBPE_ASSUMPTION,
      ...(cal ? { referenceEce: cal.ece, referenceMaxGap: cal.maxGap, referenceRows: cal.rows } : {}),
      ...(!cal
        ? { warning: 'the training evaluation stored no calibration curve: the assumption is unchecked' }
        : cal.ece > 0.05
          ? {
              warning: `the model is not calibrated on the reference (ECE ${cal.ece.toFixed(3)} > 0.05): the estimate is biased`,
            }
          : {}),
    };
  }
  for (const b of data.buckets.keys()) {
    const bucket = data.buckets[b]!;
    const idx: number[] = [];
    for (let i = 0; i < bk.length; i++) if (bk[i] === b) idx.push(i);
    const m = measure(
      Float64Array.from(idx, (i) => yk[i]!),
      Float64Array.from(idx, (i) => pk[i]!),
    );
    const preds: number[] = [];
    for (let i = 0; i < data.predictionBucket.length; i++)
      if (data.predictionBucket[i] === b) preds.push(data.predictions[i]!);
    report.timeline.push({
      from: new Date(bucket.from).toISOString(),
      to: new Date(bucket.to).toISOString(),
      rows: bucket.rows,
      labelled: idx.length,
      ...(m ? { measured: m } : {}),
      ...(task === 'binary' && preds.length > 0
        ? { estimated: estimateBinaryMetrics(preds, ref.threshold) }
        : {}),
    });
  }
  return report;
}

import { KilnError } from '../../errors.js';
import {
  accuracy,
  averagePrecisionFromCounts,
  type BinaryCurveCounts,
  binaryCurveCounts,
  brierScore,
  calibrationCurve,
  confusionMatrix,
  defaultMetric,
  getMetric,
  logLoss,
  mae,
  mape,
  prCurveFromCounts,
  precisionRecallFscore,
  predictedClasses,
  r2,
  rmse,
  rocAucFromCounts,
  rocAucOvr,
  rocCurveFromCounts,
} from '../metrics/index.js';
import { PipelineModel } from '../preprocess/index.js';
import type { Model, Task, TrainingData } from '../types.js';
import { permutationImportance } from './permutation-importance.js';
import {
  type BinaryValueMatrix,
  confusionValue,
  isRegressionValue,
  regressionValue,
  type ValueMatrix,
} from './value.js';

/** One row of the threshold table: what flagging every row with score ≥ threshold costs. */
export interface ThresholdRow {
  threshold: number;
  tp: number;
  fp: number;
  tn: number;
  fn: number;
  precision: number;
  recall: number;
  f1: number;
  fpr: number;
  /** fp · costFalsePositive + fn · costFalseNegative. */
  cost: number;
  /** With a value matrix: the value of flagging at this threshold (value.ts). */
  value?: number;
}

export interface EvaluationReport {
  kind: 'kiln.evaluation';
  version: 1;
  createdAt: string;
  title: string;
  /** `estimator`: for a preprocessing pipeline, the learner inside it (`learner` is 'pipeline'). */
  model: { learner: string; estimator?: string; task: Task; featureNames: string[]; nOutputs: number };
  data: { nRows: number; positiveRate?: number; classes?: string[] };
  metrics: Record<string, number>;
  /** Curves for plots, thinned to at most `maxCurvePoints` points (metrics use every row). */
  curves: {
    roc?: { fpr: number[]; tpr: number[]; thresholds: number[] };
    pr?: { precision: number[]; recall: number[]; thresholds: number[] };
    calibration?: { probTrue: number[]; probPred: number[]; count: number[] };
    /** Regression: a sample of (actual, predicted) pairs. */
    predictedVsActual?: { actual: number[]; predicted: number[] };
  };
  confusionMatrix?: { threshold?: number; labels: string[]; matrix: number[][] };
  costs?: { falsePositive: number; falseNegative: number };
  /**
   * What the errors at the confusion matrix's threshold cost: `total` = fp · costFalsePositive
   * + fn · costFalseNegative, `perRow` = total / rows (weights when given), `per1k` = 1,000 ·
   * perRow + the serving cost per 1,000 predictions. Binary and anomaly tasks.
   */
  cost?: {
    threshold: number;
    falsePositives: number;
    falseNegatives: number;
    total: number;
    perRow: number;
    per1k: number;
  };
  thresholdTable?: ThresholdRow[];
  /** The threshold with the lowest total cost over every distinct score. */
  bestThreshold?: ThresholdRow;
  /**
   * With a value matrix (`EvaluateOptions.value`): the value at the operating threshold (binary)
   * or of the errors (regression), in total, per row and per 1,000 predictions.
   */
  value?: { matrix: ValueMatrix; threshold?: number; total: number; perRow: number; per1k: number };
  /** With a binary value matrix: the threshold of highest value over every distinct score. */
  bestValueThreshold?: ThresholdRow;
  featureImportance?: { kind: string; values: { feature: string; importance: number }[] };
}

export interface EvaluateOptions {
  /** Cost of flagging a negative (false positive). Default 1. */
  costFalsePositive?: number;
  /** Cost of missing a positive (false negative). Default 1. */
  costFalseNegative?: number;
  /**
   * Serving cost per 1,000 predictions, added to `cost.per1k`. Default 0. When any of the three
   * costs is given, the metrics include `cost_per_1k` (the caller stated a cost model).
   */
  costPer1kPredictions?: number;
  /**
   * More metrics from learn/metrics' registry (names or aliases, e.g. 'error', 'mse', 'pr_auc'),
   * computed on the same predictions and keyed by canonical name. A name the report already
   * computes keeps the report's value (for hard-label metrics: at `threshold`).
   */
  metrics?: readonly string[];
  /**
   * What decisions are worth (value.ts): adds `value` to the report and to every threshold row,
   * the best-value threshold, and the metric `value_per_1k`.
   */
  value?: ValueMatrix;
  /** Threshold for the confusion matrix (binary). Default 0.5, or the model's own for anomaly models. */
  threshold?: number;
  /** 'model' (its own featureImportance), 'permutation', or 'auto' (model's if it has one). Default 'auto'. */
  importance?: 'model' | 'permutation' | 'auto' | 'none';
  permutationRepeats?: number;
  seed?: number;
  /** Rows in the threshold table. Default 21 (0, 0.05, …, 1 for probabilities; score quantiles otherwise). */
  thresholdSteps?: number;
  maxCurvePoints?: number;
  title?: string;
  /**
   * The model's predictions on data.x (laid out as `predict` returns them) when the caller
   * already has them, e.g. a fit's training predictions (FitOptions.onTrainingPredictions):
   * the report then does not score the rows again.
   */
  predictions?: Float64Array;
}

function thin(n: number, max: number): number[] {
  if (n <= max) return Array.from({ length: n }, (_, i) => i);
  const idx: number[] = [];
  for (let k = 0; k < max; k++) idx.push(Math.round((k * (n - 1)) / (max - 1)));
  return [...new Set(idx)];
}

const round = (v: number) => (Number.isFinite(v) ? Number(v.toPrecision(12)) : v);

/**
 * Evaluates a model on labelled data: metrics, curves, confusion matrix, a cost-aware
 * threshold table and feature importance, as one JSON-serialisable report
 * (render it with renderReportHtml).
 */
export function evaluateModel(
  model: Model,
  data: TrainingData,
  options: EvaluateOptions = {},
): EvaluationReport {
  const y = data.y;
  if (!y || y.length !== data.x.nRows) {
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      `evaluateModel: need ${data.x.nRows} labels, got ${y?.length ?? 0}`,
    );
  }
  const w = data.weight;
  const task = model.task;
  const expected = data.x.nRows * (task === 'multiclass' ? model.nOutputs : 1);
  if (options.predictions && options.predictions.length !== expected) {
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      `evaluateModel: predictions has ${options.predictions.length} values, the data needs ${expected}`,
    );
  }
  const pred = options.predictions ?? model.predict(data.x);
  const maxPts = options.maxCurvePoints ?? 300;
  const report: EvaluationReport = {
    kind: 'kiln.evaluation',
    version: 1,
    createdAt: new Date().toISOString(),
    title: options.title ?? `${model.learner} ${task} model`,
    model: {
      learner: model.learner,
      ...(model instanceof PipelineModel ? { estimator: model.estimator.learner } : {}),
      task,
      featureNames: [...model.featureNames],
      nOutputs: model.nOutputs,
    },
    data: { nRows: data.x.nRows, classes: data.classes },
    metrics: {},
    curves: {},
  };

  if (task === 'binary' || task === 'anomaly') {
    let pos = 0;
    for (let i = 0; i < y.length; i++) pos += y[i];
    report.data.positiveRate = pos / y.length;
    const m = report.metrics;
    // One sort of the scores: every curve, AUC, average precision and the threshold table
    // below read the same cumulative counts.
    const counts = binaryCurveCounts(y, pred, w, 'evaluateModel');
    m.auc = rocAucFromCounts(counts);
    m.average_precision = averagePrecisionFromCounts(counts);
    const roc = rocCurveFromCounts(counts);
    const rocIdx = thin(roc.fpr.length, maxPts);
    report.curves.roc = {
      fpr: rocIdx.map((i) => round(roc.fpr[i])),
      tpr: rocIdx.map((i) => round(roc.tpr[i])),
      thresholds: rocIdx.map((i) => round(roc.thresholds[i])),
    };
    const pr = prCurveFromCounts(counts);
    const prIdx = thin(pr.precision.length, maxPts);
    report.curves.pr = {
      precision: prIdx.map((i) => round(pr.precision[i])),
      recall: prIdx.map((i) => round(pr.recall[i])),
      thresholds: prIdx.map((i) => round(pr.thresholds[Math.min(i, pr.thresholds.length - 1)])),
    };
    const probabilities = task === 'binary';
    if (probabilities) {
      m.logloss = logLoss(y, pred, w);
      m.brier = brierScore(y, pred, w);
      const cal = calibrationCurve(y, pred, { nBins: 10 });
      report.curves.calibration = {
        probTrue: Array.from(cal.probTrue, round),
        probPred: Array.from(cal.probPred, round),
        count: Array.from(cal.count),
      };
    }
    const threshold =
      options.threshold ?? (task === 'anomaly' ? ((model as { threshold?: number }).threshold ?? 0.5) : 0.5);
    const labels = Float64Array.from(pred, (p) => (p >= threshold ? 1 : 0));
    m.accuracy = accuracy(y, labels, w);
    const prf = precisionRecallFscore(y, labels, { weight: w });
    m.precision = prf.precision;
    m.recall = prf.recall;
    m.f1 = prf.f;
    const cm = confusionMatrix(y, labels, { labels: [0, 1], weight: w });
    report.confusionMatrix = {
      threshold,
      labels: data.classes?.slice(0, 2) ?? ['0', '1'],
      matrix: cm.matrix,
    };
    const cFP = options.costFalsePositive ?? 1;
    const cFN = options.costFalseNegative ?? 1;
    report.costs = { falsePositive: cFP, falseNegative: cFN };
    const falsePositives = cm.matrix[0][1];
    const falseNegatives = cm.matrix[1][0];
    let totalWeight = y.length;
    if (w) {
      totalWeight = 0;
      for (let i = 0; i < w.length; i++) totalWeight += w[i];
    }
    const total = falsePositives * cFP + falseNegatives * cFN;
    const perRow = totalWeight > 0 ? total / totalWeight : 0;
    report.cost = {
      threshold,
      falsePositives,
      falseNegatives,
      total,
      perRow,
      per1k: perRow * 1000 + (options.costPer1kPredictions ?? 0),
    };
    const statedCostModel =
      options.costFalsePositive !== undefined ||
      options.costFalseNegative !== undefined ||
      options.costPer1kPredictions !== undefined;
    if (statedCostModel) m.cost_per_1k = report.cost.per1k;
    // The confusion counts at the operating threshold, so a later reader (the promotion gate)
    // can price them under any value matrix.
    m.tp = cm.matrix[1][1];
    m.fp = falsePositives;
    m.tn = cm.matrix[0][0];
    m.fn = falseNegatives;
    const valueMatrix = options.value && !isRegressionValue(options.value) ? options.value : undefined;
    if (options.value && !valueMatrix) {
      throw new KilnError(
        'INVALID_PARAMETER_VALUE',
        `evaluateModel: a ${task} model needs a value matrix of true_positive, false_positive, false_negative, true_negative (per_unit_error is for regression)`,
      );
    }
    const table = thresholdTable(
      counts,
      y,
      pred,
      w,
      cFP,
      cFN,
      options.thresholdSteps ?? 21,
      probabilities,
      valueMatrix,
    );
    report.thresholdTable = table.rows;
    report.bestThreshold = table.best;
    if (valueMatrix) {
      const total = confusionValue({ tp: m.tp, fp: m.fp, tn: m.tn, fn: m.fn }, valueMatrix);
      const perRow = totalWeight > 0 ? total / totalWeight : 0;
      report.value = { matrix: valueMatrix, threshold, total, perRow, per1k: perRow * 1000 };
      report.bestValueThreshold = table.bestValue;
      m.value_per_1k = perRow * 1000;
    }
  } else if (task === 'multiclass') {
    const k = model.nOutputs;
    const m = report.metrics;
    m.logloss = logLoss(y, pred, w);
    m.auc_ovr = rocAucOvr(y, pred, w);
    const labels = predictedClasses(pred, y.length);
    m.accuracy = accuracy(y, labels, w);
    m.f1_macro = precisionRecallFscore(y, labels, { average: 'macro', weight: w }).f;
    m.f1_weighted = precisionRecallFscore(y, labels, { average: 'weighted', weight: w }).f;
    const classIdx = Array.from({ length: k }, (_, i) => i);
    const cm = confusionMatrix(y, labels, { labels: classIdx, weight: w });
    report.confusionMatrix = {
      labels: classIdx.map((i) => data.classes?.[i] ?? String(i)),
      matrix: cm.matrix,
    };
  } else {
    const m = report.metrics;
    m.rmse = rmse(y, pred, w);
    m.mae = mae(y, pred, w);
    m.r2 = r2(y, pred, w);
    m.mape = mape(y, pred, w);
    if (options.value) {
      if (!isRegressionValue(options.value)) {
        throw new KilnError(
          'INVALID_PARAMETER_VALUE',
          'evaluateModel: a regression model needs a value matrix with per_unit_error (and loss)',
        );
      }
      const errors = new Float64Array(y.length);
      let totalWeight = 0;
      for (let i = 0; i < y.length; i++) {
        const wi = w ? w[i]! : 1;
        // A weighted squared loss weighs e², so the weight scales e by √w (|e|: by w).
        errors[i] = (pred[i]! - y[i]!) * (options.value.loss === 'squared' ? Math.sqrt(wi) : wi);
        totalWeight += wi;
      }
      const total = regressionValue(errors, options.value);
      const perRow = totalWeight > 0 ? total / totalWeight : 0;
      report.value = { matrix: options.value, total, perRow, per1k: perRow * 1000 };
      m.value_per_1k = perRow * 1000;
    }
    const idx = thin(y.length, 1000);
    report.curves.predictedVsActual = {
      actual: idx.map((i) => round(y[i])),
      predicted: idx.map((i) => round(pred[i])),
    };
  }
  for (const name of options.metrics ?? []) {
    const spec = getMetric(name);
    if (!spec.tasks.includes(task)) {
      throw new KilnError(
        'INVALID_PARAMETER_VALUE',
        `evaluateModel: metric '${spec.name}' is not defined for a ${task} task`,
      );
    }
    if (report.metrics[spec.name] === undefined) report.metrics[spec.name] = spec.fn(y, pred, w);
  }
  for (const key of Object.keys(report.metrics)) report.metrics[key] = round(report.metrics[key]);

  const mode = options.importance ?? 'auto';
  if (mode !== 'none') {
    const own = mode !== 'permutation' && model.featureImportance ? model.featureImportance() : undefined;
    if (mode === 'model' && !own) {
      throw new KilnError(
        'INVALID_PARAMETER_VALUE',
        `evaluateModel: the ${model.learner} model has no feature importance of its own`,
      );
    }
    let kind = 'model';
    let values = own;
    if (!values) {
      kind = 'permutation';
      const metric = task === 'anomaly' ? getMetric('auc') : defaultMetric(task);
      values = permutationImportance(model, data.x, y, metric, {
        repeats: options.permutationRepeats,
        seed: options.seed,
        weight: w,
      });
      kind = `permutation (${metric.name})`;
    }
    report.featureImportance = {
      kind,
      values: Object.entries(values)
        .map(([feature, importance]) => ({ feature, importance: round(importance) }))
        .sort((a, b) => b.importance - a.importance),
    };
  }
  return report;
}

/**
 * Counts at evenly spaced thresholds (probabilities) or score quantiles (any other score),
 * plus the exact cost-minimising threshold over every distinct score.
 */
function thresholdTable(
  counts: BinaryCurveCounts,
  y: Float64Array,
  score: Float64Array,
  weight: Float64Array | undefined,
  cFP: number,
  cFN: number,
  steps: number,
  probabilities: boolean,
  valueMatrix?: BinaryValueMatrix,
): { rows: ThresholdRow[]; best: ThresholdRow; bestValue?: ThresholdRow } {
  const roc = rocCurveFromCounts(counts, { dropIntermediate: false });
  let P = 0;
  let N = 0;
  for (let i = 0; i < y.length; i++) {
    const wi = weight ? weight[i] : 1;
    if (y[i] === 1) P += wi;
    else N += wi;
  }
  // roc.thresholds is decreasing; at index i every row with score ≥ thresholds[i] is flagged.
  const rowAt = (i: number, threshold: number): ThresholdRow => {
    const tp = P > 0 ? roc.tpr[i] * P : 0;
    const fp = N > 0 ? roc.fpr[i] * N : 0;
    const fn = P - tp;
    const tn = N - fp;
    const precision = tp + fp > 0 ? tp / (tp + fp) : 0;
    const recall = P > 0 ? tp / P : 0;
    return {
      threshold: round(threshold),
      tp: round(tp),
      fp: round(fp),
      tn: round(tn),
      fn: round(fn),
      precision: round(precision),
      recall: round(recall),
      f1: round(precision + recall > 0 ? (2 * precision * recall) / (precision + recall) : 0),
      fpr: round(N > 0 ? fp / N : 0),
      cost: round(fp * cFP + fn * cFN),
      ...(valueMatrix ? { value: round(confusionValue({ tp, fp, tn, fn }, valueMatrix)) } : {}),
    };
  };
  // Index of the last curve point whose threshold is ≥ t (flag score ≥ t).
  const indexFor = (t: number): number => {
    let lo = 0;
    let hi = roc.thresholds.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (roc.thresholds[mid] >= t) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  };
  const grid: number[] = [];
  if (probabilities) {
    for (let s = 0; s < steps; s++) grid.push(s / (steps - 1));
  } else {
    const sorted = Float64Array.from(score).sort();
    for (let s = 0; s < steps; s++)
      grid.push(sorted[Math.min(sorted.length - 1, Math.floor((s / (steps - 1)) * sorted.length))]);
  }
  const rows = [...new Set(grid)].map((t) => rowAt(indexFor(t), t));
  // Scan every distinct threshold on plain numbers; build the row object only for the winner.
  let bestIndex = 0;
  let bestCost = Number.POSITIVE_INFINITY;
  let bestValueIndex = 0;
  let bestValue = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < roc.thresholds.length; i++) {
    const tp = P > 0 ? roc.tpr[i] * P : 0;
    const fp = N > 0 ? roc.fpr[i] * N : 0;
    const cost = fp * cFP + (P - tp) * cFN;
    if (cost < bestCost) {
      bestCost = cost;
      bestIndex = i;
    }
    if (valueMatrix) {
      const value = confusionValue({ tp, fp, tn: N - fp, fn: P - tp }, valueMatrix);
      if (value > bestValue) {
        bestValue = value;
        bestValueIndex = i;
      }
    }
  }
  return {
    rows,
    best: rowAt(bestIndex, roc.thresholds[bestIndex]),
    ...(valueMatrix ? { bestValue: rowAt(bestValueIndex, roc.thresholds[bestValueIndex]) } : {}),
  };
}

import {
  type BinaryValueMatrix,
  type ConfusionCounts,
  confusionValue,
  isRegressionValue,
  regressionValue,
  type ValueMatrix,
} from '../learn/index.js';
import type { LoggedPrediction } from '../monitor/index.js';

/**
 * Realised value: the value matrix (learn/evaluate/value.ts) applied to the labelled
 * predictions a version actually served (the prediction log with feedback attached), the same
 * arithmetic as the evaluation report, so a replay of held-out rows gives the offline figure.
 *
 * A logged prediction is one request; its `predictions` output holds one score per row and
 * feedback gives one label per request, so only single-row requests can be priced (others are
 * counted in `unpriced`). A binary label counts as positive when it is 1, true, or the text
 * "1" / "true" (any case) or `positiveLabel`.
 */
export interface RealisedValue {
  /** Labelled single-row predictions priced. */
  labelled: number;
  /** Labelled requests that could not be priced (several rows, or no numeric score / label). */
  unpriced: number;
  total: number;
  per1k: number;
  /**
   * Standard error of `per1k`: 1,000 · the sample standard deviation of the per-prediction
   * values / √labelled (0 with fewer than two), for comparing versions (summary.ts).
   */
  per1kStderr: number;
  /** Binary: the confusion counts at the operating threshold. */
  counts?: ConfusionCounts;
  threshold?: number;
}

export function realisedValue(
  rows: readonly LoggedPrediction[],
  matrix: ValueMatrix,
  options: { positiveLabel?: string; output?: string } = {},
): RealisedValue {
  const output = options.output ?? 'predictions';
  let unpriced = 0;
  const scores: number[] = [];
  const labels: unknown[] = [];
  for (const r of rows) {
    const out = r.outputs[output];
    const score = out?.length === 1 ? Number(out[0]) : Number.NaN;
    if (!Number.isFinite(score) || r.label === undefined) {
      unpriced++;
      continue;
    }
    scores.push(score);
    labels.push(r.label);
  }
  if (isRegressionValue(matrix)) {
    const errors: number[] = [];
    for (let i = 0; i < scores.length; i++) {
      const y = Number(labels[i]);
      if (!Number.isFinite(y)) {
        unpriced++;
        continue;
      }
      errors.push(scores[i]! - y);
    }
    const total = regressionValue(errors, matrix);
    return {
      labelled: errors.length,
      unpriced,
      total,
      per1k: errors.length ? (1000 * total) / errors.length : 0,
      per1kStderr: stderrPer1k(errors.map((e) => regressionValue([e], matrix))),
    };
  }
  const m = matrix as BinaryValueMatrix;
  const threshold = m.threshold ?? 0.5;
  const counts: ConfusionCounts = { tp: 0, fp: 0, tn: 0, fn: 0 };
  const positive = (label: unknown) =>
    label === 1 ||
    label === true ||
    (typeof label === 'string' &&
      (/^(1|true)$/i.test(label.trim()) ||
        (options.positiveLabel !== undefined && label === options.positiveLabel)));
  const values: number[] = [];
  for (let i = 0; i < scores.length; i++) {
    const flagged = scores[i]! >= threshold;
    const actual = positive(labels[i]);
    if (flagged && actual) {
      counts.tp++;
      values.push(m.true_positive);
    } else if (flagged) {
      counts.fp++;
      values.push(-m.false_positive);
    } else if (actual) {
      counts.fn++;
      values.push(-m.false_negative);
    } else {
      counts.tn++;
      values.push(m.true_negative);
    }
  }
  const total = confusionValue(counts, m);
  const n = scores.length;
  return {
    labelled: n,
    unpriced,
    total,
    per1k: n ? (1000 * total) / n : 0,
    per1kStderr: stderrPer1k(values),
    counts,
    threshold,
  };
}

function stderrPer1k(values: readonly number[]): number {
  const n = values.length;
  if (n < 2) return 0;
  let mean = 0;
  for (const v of values) mean += v / n;
  let ss = 0;
  for (const v of values) ss += (v - mean) ** 2;
  return 1000 * Math.sqrt(ss / (n - 1) / n);
}

/**
 * `a` − `b` in value per 1,000 predictions with a 95 % confidence interval, treating the two
 * labelled windows as independent samples (Welch's standard error, normal quantile 1.96): a
 * canary and its champion answer different requests. For a shadow (the same requests) the
 * interval is conservative, since the pairing is not used.
 */
export function compareValue(
  a: RealisedValue,
  b: RealisedValue,
): { diffPer1k: number; ci95: [number, number] } {
  const diff = a.per1k - b.per1k;
  const se = Math.sqrt(a.per1kStderr ** 2 + b.per1kStderr ** 2);
  return { diffPer1k: diff, ci95: [diff - 1.959964 * se, diff + 1.959964 * se] };
}

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
 * A logged prediction is one request, and its `predictions` output holds one score per row.
 * Feedback gives a request one label, or (JSON feedback) an array of one label per row: a
 * single-row request is priced with its label, a multi-row one row by row with its array;
 * a label that does not match the rows (a scalar for several rows, an array of another length)
 * leaves the request unpriced. A binary label counts as positive when it is 1, true, or the
 * text "1" / "true" (any case) or `positiveLabel`.
 *
 * ValueAccumulator adds requests one at a time (the outcome summary streams a window through
 * it); `realisedValue` is the same over an array.
 */
export interface RealisedValue {
  /** Labelled rows priced (a multi-row request counts each of its rows). */
  labelled: number;
  /** Labelled requests that could not be priced (labels not matching the rows, no numeric score / label). */
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

export class ValueAccumulator {
  private readonly output: string;
  private readonly positive: (label: unknown) => boolean;
  private readonly threshold: number;
  private readonly counts: ConfusionCounts = { tp: 0, fp: 0, tn: 0, fn: 0 };
  private priced = 0;
  private unpriced = 0;
  private total = 0;
  // Welford's running mean and sum of squared deviations of the per-row values (the stderr).
  private mean = 0;
  private m2 = 0;

  constructor(
    private readonly matrix: ValueMatrix,
    options: { positiveLabel?: string; output?: string } = {},
  ) {
    this.output = options.output ?? 'predictions';
    this.threshold = isRegressionValue(matrix) ? 0 : ((matrix as BinaryValueMatrix).threshold ?? 0.5);
    this.positive = (label) =>
      label === 1 ||
      label === true ||
      (typeof label === 'string' &&
        (/^(1|true)$/i.test(label.trim()) ||
          (options.positiveLabel !== undefined && label === options.positiveLabel)));
  }

  /** One labelled request: its outputs and its label (a scalar, or one per row). */
  add(outputs: Record<string, unknown[]>, label: unknown): void {
    const out = outputs[this.output];
    const rows = Array.isArray(out) ? out.length : 0;
    const labels = Array.isArray(label) ? label : [label];
    if (rows === 0 || labels.length !== rows) {
      this.unpriced++;
      return;
    }
    const values: number[] = [];
    for (let i = 0; i < rows; i++) {
      const v = this.rowValue(Number(out![i]), labels[i]);
      if (v === undefined) {
        this.unpriced++;
        return;
      }
      values.push(v);
    }
    for (const v of values) this.push(v);
  }

  /** The value of one scored row, or undefined when its score or label cannot be priced. */
  private rowValue(score: number, label: unknown): number | undefined {
    if (!Number.isFinite(score) || label === undefined || label === null) return undefined;
    if (isRegressionValue(this.matrix)) {
      const y = Number(label);
      return Number.isFinite(y) ? regressionValue([score - y], this.matrix) : undefined;
    }
    const m = this.matrix as BinaryValueMatrix;
    const flagged = score >= this.threshold;
    const actual = this.positive(label);
    if (flagged && actual) {
      this.counts.tp++;
      return m.true_positive;
    }
    if (flagged) {
      this.counts.fp++;
      return -m.false_positive;
    }
    if (actual) {
      this.counts.fn++;
      return -m.false_negative;
    }
    this.counts.tn++;
    return m.true_negative;
  }

  private push(v: number): void {
    this.priced++;
    this.total += v;
    const d = v - this.mean;
    this.mean += d / this.priced;
    this.m2 += d * (v - this.mean);
  }

  result(): RealisedValue {
    const n = this.priced;
    const binary = !isRegressionValue(this.matrix);
    return {
      labelled: n,
      unpriced: this.unpriced,
      // The binary total from the counts, as the evaluation report computes it.
      total: binary ? confusionValue(this.counts, this.matrix as BinaryValueMatrix) : this.total,
      per1k: n ? (1000 * this.total) / n : 0,
      per1kStderr: n < 2 ? 0 : 1000 * Math.sqrt(this.m2 / (n - 1) / n),
      ...(binary ? { counts: { ...this.counts }, threshold: this.threshold } : {}),
    };
  }
}

export function realisedValue(
  rows: readonly LoggedPrediction[],
  matrix: ValueMatrix,
  options: { positiveLabel?: string; output?: string } = {},
): RealisedValue {
  const acc = new ValueAccumulator(matrix, options);
  for (const r of rows) {
    if (r.label === undefined) acc.add({}, undefined);
    else acc.add(r.outputs, r.label);
  }
  return acc.result();
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

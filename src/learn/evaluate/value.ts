import { z } from 'zod';

/**
 * What a model's decisions are worth, in money. A binary (or anomaly) model flags a row when
 * its score is ≥ a threshold; each outcome has a value:
 *
 *   value = TP · true_positive + TN · true_negative − FP · false_positive − FN · false_negative
 *
 * `true_positive` / `true_negative` are gains (a caught fraud's saved loss), `false_positive`
 * / `false_negative` are costs (a blocked good customer, a missed fraud), all written as
 * non-negative amounts so a policy reads as the business states it. A regression model loses
 * `per_unit_error` per unit of absolute error (`loss: absolute`, the default) or per squared
 * unit (`loss: squared`): value = −per_unit_error · Σ|e| (or Σe²).
 *
 * One matrix shape serves the training spec (`value:`), the promotion policy (`value:`) and
 * realised value on live traffic, so offline and live figures are the same arithmetic.
 */
const amount = z.number().finite().min(0);

export const binaryValueSchema = z
  .object({
    true_positive: amount.default(0),
    false_positive: amount.default(0),
    false_negative: amount.default(0),
    true_negative: amount.default(0),
    /** Operating threshold: rows with score ≥ threshold are flagged. Default 0.5. */
    threshold: z.number().finite().optional(),
  })
  .strict()
  .refine((v) => v.true_positive + v.false_positive + v.false_negative + v.true_negative > 0, {
    message: 'a value matrix needs at least one non-zero entry',
  });

export const regressionValueSchema = z
  .object({
    per_unit_error: amount,
    loss: z.enum(['absolute', 'squared']).default('absolute'),
  })
  .strict();

export const valueMatrixSchema = z.union([regressionValueSchema, binaryValueSchema]);

export type BinaryValueMatrix = z.output<typeof binaryValueSchema>;
export type RegressionValueMatrix = z.output<typeof regressionValueSchema>;
export type ValueMatrix = z.output<typeof valueMatrixSchema>;

export function isRegressionValue(v: ValueMatrix): v is RegressionValueMatrix {
  return 'per_unit_error' in v;
}

export interface ConfusionCounts {
  tp: number;
  fp: number;
  tn: number;
  fn: number;
}

/** Total value of a confusion matrix under the matrix (see the header). */
export function confusionValue(c: ConfusionCounts, m: BinaryValueMatrix): number {
  return c.tp * m.true_positive + c.tn * m.true_negative - c.fp * m.false_positive - c.fn * m.false_negative;
}

/** Value per 1,000 predictions: the unit the gate and the outcome summary compare in. */
export function valuePer1k(c: ConfusionCounts, m: BinaryValueMatrix): number {
  const n = c.tp + c.fp + c.tn + c.fn;
  return n > 0 ? (1000 * confusionValue(c, m)) / n : 0;
}

/** Value of regression errors: −per_unit_error · Σ|e| (absolute) or Σe² (squared). */
export function regressionValue(errors: ArrayLike<number>, m: RegressionValueMatrix): number {
  let loss = 0;
  for (let i = 0; i < errors.length; i++) {
    const e = errors[i]!;
    loss += m.loss === 'squared' ? e * e : Math.abs(e);
  }
  return -m.per_unit_error * loss;
}

/**
 * Regression value per 1,000 predictions from the run's logged error metrics (mean absolute
 * error, or root mean squared error for a squared loss): what the gate uses.
 */
export function regressionValuePer1kFromMetrics(
  metrics: { mae?: number; rmse?: number },
  m: RegressionValueMatrix,
): number | undefined {
  const perRow =
    m.loss === 'squared' ? (metrics.rmse === undefined ? undefined : metrics.rmse ** 2) : metrics.mae;
  if (perRow === undefined || !Number.isFinite(perRow)) return undefined;
  return -1000 * m.per_unit_error * perRow;
}

/** The matrix as one short line, for a rule's detail and the report. */
export function describeValueMatrix(m: ValueMatrix): string {
  if (isRegressionValue(m)) return `−${m.per_unit_error} per unit of ${m.loss} error`;
  return `TP +${m.true_positive}, TN +${m.true_negative}, FP −${m.false_positive}, FN −${m.false_negative}`;
}

import { KilnError } from '../../errors.js';
import { checkWeights } from './ranking.js';

/** Regression metrics matching scikit-learn 1.2 (optional per-row weights everywhere). */

function check(
  yTrue: ArrayLike<number>,
  yPred: ArrayLike<number>,
  weight: ArrayLike<number> | undefined,
  where: string,
) {
  if (yTrue.length !== yPred.length) {
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      `${where}: ${yTrue.length} targets but ${yPred.length} predictions`,
    );
  }
  if (yTrue.length === 0) throw new KilnError('INVALID_PARAMETER_VALUE', `${where}: no rows`);
  checkWeights(weight, yTrue.length, where);
}

function weightedMeanOf(
  n: number,
  weight: ArrayLike<number> | undefined,
  term: (i: number) => number,
): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    const w = weight ? weight[i] : 1;
    num += term(i) * w;
    den += w;
  }
  return num / den;
}

export function mse(yTrue: ArrayLike<number>, yPred: ArrayLike<number>, weight?: ArrayLike<number>): number {
  check(yTrue, yPred, weight, 'mse');
  return weightedMeanOf(yTrue.length, weight, (i) => (yTrue[i] - yPred[i]) ** 2);
}

export function rmse(yTrue: ArrayLike<number>, yPred: ArrayLike<number>, weight?: ArrayLike<number>): number {
  return Math.sqrt(mse(yTrue, yPred, weight));
}

export function mae(yTrue: ArrayLike<number>, yPred: ArrayLike<number>, weight?: ArrayLike<number>): number {
  check(yTrue, yPred, weight, 'mae');
  return weightedMeanOf(yTrue.length, weight, (i) => Math.abs(yTrue[i] - yPred[i]));
}

const EPS = 2.220446049250313e-16;

/** Mean absolute percentage error as a fraction (0.1 = 10 %); |y| below machine eps counts as eps. */
export function mape(yTrue: ArrayLike<number>, yPred: ArrayLike<number>, weight?: ArrayLike<number>): number {
  check(yTrue, yPred, weight, 'mape');
  return weightedMeanOf(
    yTrue.length,
    weight,
    (i) => Math.abs(yPred[i] - yTrue[i]) / Math.max(Math.abs(yTrue[i]), EPS),
  );
}

/** Coefficient of determination; a constant target gives 1 if predicted exactly, else 0 (sklearn's force_finite). */
export function r2(yTrue: ArrayLike<number>, yPred: ArrayLike<number>, weight?: ArrayLike<number>): number {
  check(yTrue, yPred, weight, 'r2');
  const n = yTrue.length;
  const mean = weightedMeanOf(n, weight, (i) => yTrue[i]);
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    const w = weight ? weight[i] : 1;
    num += w * (yTrue[i] - yPred[i]) ** 2;
    den += w * (yTrue[i] - mean) ** 2;
  }
  if (den === 0) return num === 0 ? 1 : 0;
  return 1 - num / den;
}

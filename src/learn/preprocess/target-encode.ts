import type { CategoricalColumn, FeatureColumn, FeatureMatrix } from '../../data/index.js';
import { KilnError } from '../../errors.js';
import { findColumn, indexOf, pickColumns, replaceColumns } from './columns.js';
import type { FitContext, FittedTransform, TargetEncodeStep, TransformState } from './types.js';

interface EncodedColumn {
  name: string;
  levels: string[];
  /** Smoothed mean target per level (index as levels). */
  values: number[];
}

/**
 * Level → smoothed mean of the target: (Σ w·y + m·prior) / (Σ w + m), unseen and missing
 * levels → prior. At fit time the training rows get out-of-fold values (each row encoded by
 * the other folds' statistics), so the estimator never sees a row's own label leaked into its
 * feature; scoring uses statistics from all training rows.
 */
export class FittedTargetEncoder implements FittedTransform {
  readonly kind = 'target-encode';
  constructor(
    readonly columns: EncodedColumn[],
    readonly prior: number,
  ) {}

  transform(x: FeatureMatrix): FeatureMatrix {
    const out = new Map<string, FeatureColumn[]>();
    for (const fit of this.columns) {
      const col = findColumn(x, fit.name, 'categorical', 'target-encode') as CategoricalColumn;
      const index = indexOf(fit.levels);
      const byCode = Float64Array.from(col.levels, (l) => {
        const i = index.get(l);
        return i === undefined ? this.prior : fit.values[i];
      });
      const values = Float64Array.from(col.codes, (c) => (c < 0 ? this.prior : byCode[c]));
      out.set(fit.name, [{ kind: 'numeric', name: fit.name, values }]);
    }
    return replaceColumns(x, out);
  }

  state(): TransformState {
    return { kind: 'target-encode', columns: this.columns, prior: this.prior };
  }

  static fromState(s: TransformState): FittedTargetEncoder {
    return new FittedTargetEncoder(s.columns as EncodedColumn[], s.prior as number);
  }
}

/** Fits the encoder and returns the out-of-fold encoding of the training matrix with it. */
export function fitTargetEncoder(
  step: TargetEncodeStep,
  x: FeatureMatrix,
  ctx: FitContext,
): { fitted: FittedTargetEncoder; out: FeatureMatrix } {
  const y = ctx.y;
  if (!y || y.length !== x.nRows) {
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      'target-encode: needs the training labels (binary 0/1 or a regression target)',
    );
  }
  const n = x.nRows;
  const m = step.smoothing ?? 10;
  const k = Math.max(2, Math.min(step.folds ?? 5, n));
  const w = ctx.weight ?? new Float64Array(n).fill(1);
  let sy = 0;
  let sw = 0;
  for (let i = 0; i < n; i++) {
    if (!Number.isFinite(y[i])) {
      throw new KilnError('INVALID_PARAMETER_VALUE', `target-encode: target at row ${i} is ${y[i]}`);
    }
    sy += w[i] * y[i];
    sw += w[i];
  }
  const prior = sw > 0 ? sy / sw : 0;
  // Fold of each row: a seeded shuffle dealt round-robin, so folds are balanced.
  const fold = new Int32Array(n);
  const perm = Uint32Array.from({ length: n }, (_, i) => i);
  let seed = (step.seed ?? 0) * 2654435761 + 1;
  for (let i = n - 1; i > 0; i--) {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    const j = seed % (i + 1);
    const t = perm[i];
    perm[i] = perm[j];
    perm[j] = t;
  }
  for (let i = 0; i < n; i++) fold[perm[i]] = i % k;

  const columns: EncodedColumn[] = [];
  const out = new Map<string, FeatureColumn[]>();
  for (const c of pickColumns(x, step.columns, 'categorical', 'target-encode')) {
    const col = c as CategoricalColumn;
    const L = col.levels.length;
    const sumY = new Float64Array(L);
    const sumW = new Float64Array(L);
    const foldY = new Float64Array(L * k);
    const foldW = new Float64Array(L * k);
    for (let i = 0; i < n; i++) {
      const code = col.codes[i];
      if (code < 0) continue;
      sumY[code] += w[i] * y[i];
      sumW[code] += w[i];
      foldY[code * k + fold[i]] += w[i] * y[i];
      foldW[code * k + fold[i]] += w[i];
    }
    const values = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const code = col.codes[i];
      if (code < 0) {
        values[i] = prior;
        continue;
      }
      const f = code * k + fold[i];
      values[i] = (sumY[code] - foldY[f] + m * prior) / (sumW[code] - foldW[f] + m);
    }
    out.set(col.name, [{ kind: 'numeric', name: col.name, values }]);
    const levels: string[] = [];
    const encoded: number[] = [];
    for (let l = 0; l < L; l++) {
      if (sumW[l] === 0) continue;
      levels.push(col.levels[l]);
      encoded.push((sumY[l] + m * prior) / (sumW[l] + m));
    }
    columns.push({ name: col.name, levels, values: encoded });
  }
  return { fitted: new FittedTargetEncoder(columns, prior), out: replaceColumns(x, out) };
}

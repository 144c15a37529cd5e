import type { FeatureMatrix } from '../../data/index.js';

/**
 * Preprocessing steps as data: a step spec says what to fit, `fitStep` turns it into a fitted
 * transform, and a fitted transform's `state()` is plain JSON that `loadTransform` rebuilds
 * exactly (numbers round-trip through JSON bit for bit), so a model artifact carries the same
 * preprocessing that training used.
 *
 * Every step works column-wise on a FeatureMatrix and replaces the columns it names in place,
 * keeping their names and order; columns it does not name pass through untouched. Categorical
 * columns are matched by level string, not code, so a scoring matrix with its own level table
 * is transformed the same way as the training matrix.
 */

/** What to do with a category the encoder did not see when it was fitted. */
export type UnseenPolicy = 'error' | 'other' | 'ignore';

export type ImputeStep = {
  kind: 'impute';
  /** Default: every column with a missing value at fit time. */
  columns?: string[];
  /** mean / median: numeric only; most_frequent: both kinds; constant: fillValue. */
  strategy: 'mean' | 'median' | 'most_frequent' | 'constant';
  /** For 'constant': a number for numeric columns, a level for categorical ones. */
  fillValue?: number | string;
};

export type StandardScaleStep = {
  kind: 'standard-scale';
  /** Default: every numeric column. */
  columns?: string[];
  withMean?: boolean;
  withStd?: boolean;
};

export type RobustScaleStep = {
  kind: 'robust-scale';
  /** Default: every numeric column. */
  columns?: string[];
  /** Percentiles whose gap is the scale; default [25, 75]. */
  quantileRange?: [number, number];
};

export type OneHotStep = {
  kind: 'one-hot';
  /** Default: every categorical column. */
  columns?: string[];
  /** Default 'ignore' (an unseen level sets no indicator). */
  unseen?: UnseenPolicy;
  /** Levels seen fewer times than this at fit time are merged into '__other__'. Default 1 (keep all). */
  minFrequency?: number;
  /**
   * false (default): the column stays categorical with the fitted level table, and the
   * estimator expands it (the linear learner keeps one coefficient per level without
   * materialising indicators; GBDT splits on it natively). true: emit one numeric 0/1
   * column per level, named `column=level`.
   */
  expand?: boolean;
};

export type OrdinalStep = {
  kind: 'ordinal';
  /** Default: every categorical column. */
  columns?: string[];
  /** Default 'error'. 'ignore' gives NaN (missing); 'other' gives code = number of levels. */
  unseen?: UnseenPolicy;
};

export type TargetEncodeStep = {
  kind: 'target-encode';
  /** Default: every categorical column. */
  columns?: string[];
  /** Pseudo-count pulling rare levels towards the global mean. Default 10. */
  smoothing?: number;
  /** Folds for the out-of-fold encoding of the training rows. Default 5. */
  folds?: number;
  /** Seed of the fold assignment. Default 0. */
  seed?: number;
};

export type HashStep = {
  kind: 'hash';
  /** Default: every categorical column. */
  columns?: string[];
  /** Buckets per column. Default 1024. */
  nBuckets?: number;
};

export type TransformStep =
  | ImputeStep
  | StandardScaleStep
  | RobustScaleStep
  | OneHotStep
  | OrdinalStep
  | TargetEncodeStep
  | HashStep;

/** JSON state of a fitted step: its kind plus whatever it learned. */
export type TransformState = { kind: TransformStep['kind'] } & Record<string, unknown>;

export interface FittedTransform {
  readonly kind: TransformStep['kind'];
  transform(x: FeatureMatrix): FeatureMatrix;
  state(): TransformState;
}

/** What a step may learn from besides the features (target encoding needs the labels). */
export interface FitContext {
  y?: Float64Array;
  weight?: Float64Array;
}

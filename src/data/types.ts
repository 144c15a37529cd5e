/**
 * The in-memory shape that learners consume: one typed array per column, never one JS object
 * per row. Produced by matrix materialisation (see matrix.ts), consumed by src/learn/.
 */

/** A numeric feature; missing values are NaN. */
export interface NumericColumn {
  kind: 'numeric';
  name: string;
  values: Float64Array | Float32Array;
}

/**
 * A categorical feature as integer codes into `levels`; -1 marks a missing value, and codes
 * at or past `levels.length` never occur in a matrix (unseen levels at scoring time are
 * mapped to -1 by whoever builds the matrix, and treated as missing by learners).
 */
export interface CategoricalColumn {
  kind: 'categorical';
  name: string;
  codes: Int32Array;
  levels: string[];
}

export type FeatureColumn = NumericColumn | CategoricalColumn;

export interface FeatureMatrix {
  nRows: number;
  columns: FeatureColumn[];
}

/**
 * A feature matrix with its label, laid out as learners' `TrainingData` wants it: `y` holds the
 * value (regression) or the class index into `classes` (binary / multiclass); NaN = missing.
 */
export interface LabelledMatrix {
  x: FeatureMatrix;
  y?: Float64Array;
  /** Class names for a boolean or categorical target, index = class code in `y`. */
  classes?: string[];
  /** Name of the target column `y` came from. */
  targetName?: string;
}

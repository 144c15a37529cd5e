import type { FeatureMatrix } from '../data/index.js';

/**
 * The contract every built-in learner keeps (gbdt/, linear/, iforest/), so training runs,
 * tuning, the registry and the server treat them alike.
 *
 * Rules an implementation keeps:
 * - `fit` never mutates its inputs; it may run on worker threads but resolves only once the
 *   model is complete.
 * - `onIteration` is called once per boosting round / epoch, in order, on the calling thread;
 *   returning `false` stops training early (tuning pruners use this) and the model keeps the
 *   iterations done so far (or the best one when early stopping on a validation set).
 * - predictions are a fresh Float64Array, laid out as `Model.predict` documents.
 * - `onTrainingPredictions`, when the learner supports it, is called at most once, after the
 *   last iteration and before `fit` resolves, with the final model's predictions on the
 *   training rows as its own training state holds them (GBDT: the boosting scores), equal to
 *   `model.predict(x)` to 1e-12; a learner whose state does not match the returned model (early
 *   stopping kept an earlier iteration) does not call it. It lets a caller skip re-scoring.
 * - `serialize` output loads back with `loadModel` to a model whose predictions are identical
 *   bit for bit.
 */
export type Task = 'binary' | 'multiclass' | 'regression' | 'anomaly';

export interface TrainingData {
  x: FeatureMatrix;
  /** binary: 0/1; multiclass: class index 0..K-1; regression: the value; anomaly: optional 0/1 labels. */
  y?: Float64Array;
  /** Optional per-row weights. */
  weight?: Float64Array;
  /** Class names for binary / multiclass, index = class code. */
  classes?: string[];
}

export interface IterationInfo {
  iteration: number;
  /** e.g. { 'train.logloss': 0.41, 'valid.auc': 0.72 } */
  metrics: Record<string, number>;
}

export interface FitOptions {
  valid?: TrainingData;
  onIteration?: (info: IterationInfo) => boolean | undefined;
  onTrainingPredictions?: (predictions: Float64Array) => void;
  /**
   * Called once at the end of a fit with where its wall time went, in seconds by phase
   * (learner-specific names: GBDT reports binning, gradients, histograms, partition,
   * split_search, scores, other).
   */
  onPhaseSeconds?: (seconds: Record<string, number>) => void;
  signal?: AbortSignal;
}

export interface Model {
  readonly learner: string;
  readonly task: Task;
  readonly featureNames: readonly string[];
  /** Number of outputs per row: 1, or K for multiclass. */
  readonly nOutputs: number;
  /**
   * binary: probability of class 1; multiclass: row-major nRows × K probabilities;
   * regression: predicted value; anomaly: anomaly score (higher = more anomalous).
   */
  predict(x: FeatureMatrix): Float64Array;
  /** Margin before the link function (log-odds for binary), same layout as predict. */
  predictRaw(x: FeatureMatrix): Float64Array;
  /** Per-feature importance by kind ('gain', 'split', 'weight' …), when the learner has one. */
  featureImportance?(kind?: string): Record<string, number>;
  /** Versioned binary form (see model-format.ts). */
  serialize(): Uint8Array;
}

export interface Learner<Params = Record<string, unknown>> {
  readonly name: string;
  readonly params: Params;
  fit(data: TrainingData, options?: FitOptions): Promise<Model>;
}

import type { FeatureMatrix } from '../../data/index.js';
import { KilnError } from '../../errors.js';
import { remapCodes } from '../categorical-codes.js';
import { encodeModel, type ModelContainer } from '../model-format.js';
import type { Model } from '../types.js';
import { averagePathLength } from './path-length.js';

export const IFOREST_LEARNER = 'iforest';

export interface IForestColumn {
  name: string;
  kind: 'numeric' | 'categorical';
  /** Fitted levels; categorical codes are split on as ordinal numbers in this order. */
  levels?: string[];
}

export interface IForestState {
  columns: IForestColumn[];
  nTrees: number;
  /** Rows each tree was grown on (ψ); scores are normalised by c(ψ). */
  sampleSize: number;
  /** Score at or above which a row is flagged anomalous. */
  threshold: number;
  contamination: number | 'auto';
  params: Record<string, unknown>;
}

/**
 * The flat forest: node i of the whole forest has `feature[i]` (-1 = leaf), `threshold[i]`
 * (go left when x ≤ threshold; missing values go left), children `left[i]` / `right[i]` as
 * absolute node indices, and for a leaf `leafDepth[i]` = depth + c(points left in the leaf).
 */
export interface IForestNodes {
  treeStart: Int32Array;
  feature: Int32Array;
  threshold: Float64Array;
  left: Int32Array;
  right: Int32Array;
  leafDepth: Float64Array;
}

/**
 * Isolation Forest model. `predict` returns the anomaly score s = 2^(−E[h(x)] / c(ψ)) in
 * (0, 1], higher = more anomalous (sklearn's −score_samples); `predictLabels` flags rows at
 * or above the threshold set from `contamination` at fit time.
 */
export class IsolationForestModel implements Model {
  readonly learner = IFOREST_LEARNER;
  readonly task = 'anomaly' as const;
  readonly nOutputs = 1;
  readonly featureNames: readonly string[];
  readonly threshold: number;

  constructor(
    readonly state: IForestState,
    readonly nodes: IForestNodes,
  ) {
    this.featureNames = state.columns.map((c) => c.name);
    this.threshold = state.threshold;
  }

  /** Column values as the trees split on them (categorical → fitted level index, missing → NaN). */
  columnValues(x: FeatureMatrix): Float64Array[] {
    const byName = new Map(x.columns.map((c) => [c.name, c]));
    return this.state.columns.map((spec) => {
      const col = byName.get(spec.name);
      if (!col)
        throw new KilnError(
          'INVALID_PARAMETER_VALUE',
          `iforest predict: feature column '${spec.name}' is missing from the input`,
        );
      if (col.kind !== spec.kind) {
        throw new KilnError(
          'INVALID_PARAMETER_VALUE',
          `iforest predict: column '${spec.name}' is ${col.kind} but the model was trained on a ${spec.kind} column`,
        );
      }
      if (col.kind === 'numeric')
        return col.values instanceof Float64Array ? col.values : Float64Array.from(col.values);
      const codes = remapCodes(col.codes, col.levels, spec.levels!);
      return Float64Array.from(codes, (c) => (c < 0 ? Number.NaN : c));
    });
  }

  /** Mean isolation depth E[h(x)] per row. */
  meanDepth(x: FeatureMatrix): Float64Array {
    const cols = this.columnValues(x);
    const { treeStart, feature, threshold, left, right, leafDepth } = this.nodes;
    const n = x.nRows;
    const out = new Float64Array(n);
    const nTrees = this.state.nTrees;
    for (let t = 0; t < nTrees; t++) {
      const root = treeStart[t];
      for (let i = 0; i < n; i++) {
        let node = root;
        for (;;) {
          const f = feature[node];
          if (f < 0) break;
          const v = cols[f][i];
          node = v > threshold[node] ? right[node] : left[node];
        }
        out[i] += leafDepth[node];
      }
    }
    for (let i = 0; i < n; i++) out[i] /= nTrees;
    return out;
  }

  predict(x: FeatureMatrix): Float64Array {
    const depth = this.meanDepth(x);
    const c = averagePathLength(this.state.sampleSize);
    for (let i = 0; i < depth.length; i++) depth[i] = 2 ** (-depth[i] / c);
    return depth;
  }

  /** Same as predict: the anomaly score is the model's raw output. */
  predictRaw(x: FeatureMatrix): Float64Array {
    return this.predict(x);
  }

  /** 1 where the score is at or above the contamination threshold, else 0. */
  predictLabels(x: FeatureMatrix): Float64Array {
    const s = this.predict(x);
    for (let i = 0; i < s.length; i++) s[i] = s[i] >= this.threshold ? 1 : 0;
    return s;
  }

  /** 'split': share of splits made on each feature. */
  featureImportance(kind = 'split'): Record<string, number> {
    if (kind !== 'split') {
      throw new KilnError(
        'INVALID_PARAMETER_VALUE',
        `iforest feature importance kind '${kind}' is not known (use 'split')`,
      );
    }
    const counts = new Float64Array(this.state.columns.length);
    let total = 0;
    for (const f of this.nodes.feature) {
      if (f >= 0) {
        counts[f]++;
        total++;
      }
    }
    return Object.fromEntries(this.state.columns.map((c, j) => [c.name, total ? counts[j] / total : 0]));
  }

  toContainer(): ModelContainer {
    return { learner: IFOREST_LEARNER, meta: this.state, buffers: { ...this.nodes } };
  }

  serialize(): Uint8Array {
    return encodeModel(this.toContainer());
  }
}

export function loadIsolationForestModel(container: ModelContainer): IsolationForestModel {
  const b = container.buffers;
  const need = ['treeStart', 'feature', 'threshold', 'left', 'right', 'leafDepth'];
  for (const name of need) {
    if (!b[name]) throw new KilnError('INVALID_PARAMETER_VALUE', `iforest model file lacks buffer '${name}'`);
  }
  return new IsolationForestModel(container.meta as IForestState, {
    treeStart: Int32Array.from(b.treeStart),
    feature: Int32Array.from(b.feature),
    threshold: Float64Array.from(b.threshold),
    left: Int32Array.from(b.left),
    right: Int32Array.from(b.right),
    leafDepth: Float64Array.from(b.leafDepth),
  });
}

import { KilnError } from '../../errors.js';
import { percentileOfSorted } from '../metrics/index.js';
import { mulberry32 } from '../seeded-random.js';
import type { FitOptions, Learner, TrainingData } from '../types.js';
import { type IForestColumn, type IForestNodes, IsolationForestModel } from './model.js';
import { averagePathLength } from './path-length.js';

/** Isolation Forest parameters, with their defaults (sklearn's). */
export interface IForestParams {
  /** Trees. Default 100. */
  nEstimators: number;
  /** Rows drawn (without replacement) per tree: a count, a fraction of n, or 'auto' = min(256, n). */
  maxSamples: number | 'auto';
  /**
   * Expected share of anomalies, which sets the flagging threshold to that quantile of the
   * training scores; 'auto' uses the paper's fixed threshold of 0.5.
   */
  contamination: number | 'auto';
  /** Seed of the subsampling and split draws. Default 0. */
  seed: number;
}

export const IFOREST_DEFAULTS: IForestParams = {
  nEstimators: 100,
  maxSamples: 'auto',
  contamination: 'auto',
  seed: 0,
};

/**
 * Unsupervised anomaly detector (Liu, Ting & Zhou 2008): each tree isolates a random
 * subsample by random axis-aligned splits, and rows that isolate in few splits are anomalous.
 * Labels, when present in the training data, are ignored by the fit (use them to evaluate).
 * Categorical columns are split on as ordinal codes; missing values go left at every split.
 */
export class IsolationForestLearner implements Learner<IForestParams> {
  readonly name = 'iforest';
  readonly params: IForestParams;

  constructor(params: Partial<IForestParams> = {}) {
    this.params = { ...IFOREST_DEFAULTS, ...params };
    const { nEstimators, contamination } = this.params;
    if (!Number.isInteger(nEstimators) || nEstimators < 1) {
      throw new KilnError(
        'INVALID_PARAMETER_VALUE',
        `iforest: nEstimators must be a positive integer, got ${nEstimators}`,
      );
    }
    if (contamination !== 'auto' && !(contamination > 0 && contamination <= 0.5)) {
      throw new KilnError(
        'INVALID_PARAMETER_VALUE',
        `iforest: contamination must be 'auto' or in (0, 0.5], got ${contamination}`,
      );
    }
  }

  async fit(data: TrainingData, options: FitOptions = {}): Promise<IsolationForestModel> {
    const { x } = data;
    const n = x.nRows;
    if (n < 2) throw new KilnError('INVALID_PARAMETER_VALUE', 'iforest: need at least 2 training rows');
    // The fit ignores labels, but labels that do not line up with the rows would mislead
    // whoever evaluates the scores against them.
    if (data.y && data.y.length !== n) {
      throw new KilnError(
        'INVALID_PARAMETER_VALUE',
        `iforest: ${data.y.length} labels for ${n} training rows`,
      );
    }
    const p = this.params;
    const columns: IForestColumn[] = x.columns.map((c) =>
      c.kind === 'numeric'
        ? { name: c.name, kind: 'numeric' }
        : { name: c.name, kind: 'categorical', levels: [...c.levels] },
    );
    const psi =
      p.maxSamples === 'auto'
        ? Math.min(256, n)
        : p.maxSamples <= 1
          ? Math.max(2, Math.floor(p.maxSamples * n))
          : Math.min(Math.floor(p.maxSamples), n);
    const heightLimit = Math.ceil(Math.log2(Math.max(psi, 2)));
    const shell = new IsolationForestModel(
      {
        columns,
        nTrees: 0,
        sampleSize: psi,
        threshold: 0.5,
        contamination: p.contamination,
        params: { ...p },
      },
      emptyNodes(),
    );
    const cols = shell.columnValues(x);
    const random = mulberry32(p.seed * 2654435761 + 17);

    const feature: number[] = [];
    const threshold: number[] = [];
    const left: number[] = [];
    const right: number[] = [];
    const leafDepth: number[] = [];
    const treeStart: number[] = [];
    const perm = Uint32Array.from({ length: n }, (_, i) => i);
    const nFeatures = cols.length;
    let treesGrown = 0;

    for (let t = 0; t < p.nEstimators; t++) {
      if (options.signal?.aborted) break;
      // Partial Fisher–Yates: the first psi entries become a uniform sample without replacement.
      for (let i = 0; i < psi; i++) {
        const j = i + Math.floor(random() * (n - i));
        const tmp = perm[i];
        perm[i] = perm[j];
        perm[j] = tmp;
      }
      const rows = perm.slice(0, psi);
      treeStart.push(feature.length);
      const grow = (start: number, end: number, depth: number): number => {
        const node = feature.length;
        feature.push(-1);
        threshold.push(0);
        left.push(-1);
        right.push(-1);
        leafDepth.push(0);
        const size = end - start;
        if (depth >= heightLimit || size <= 1) {
          leafDepth[node] = depth + averagePathLength(size);
          return node;
        }
        // Pick a feature that still varies in this node (try them in random order).
        let f = -1;
        let lo = 0;
        let hi = 0;
        const first = Math.floor(random() * nFeatures);
        for (let k = 0; k < nFeatures && f < 0; k++) {
          const cand = (first + k) % nFeatures;
          const v = cols[cand];
          let mn = Number.POSITIVE_INFINITY;
          let mx = Number.NEGATIVE_INFINITY;
          for (let r = start; r < end; r++) {
            const a = v[rows[r]];
            if (a < mn) mn = a;
            if (a > mx) mx = a;
          }
          if (mx > mn) {
            f = cand;
            lo = mn;
            hi = mx;
          }
        }
        if (f < 0) {
          leafDepth[node] = depth + averagePathLength(size);
          return node;
        }
        let split = lo + random() * (hi - lo);
        if (split >= hi) split = lo;
        const v = cols[f];
        // Partition rows: x ≤ split (and missing) to the left.
        let i = start;
        let j = end - 1;
        while (i <= j) {
          const a = v[rows[i]];
          if (!(a > split)) i++;
          else {
            const tmp = rows[i];
            rows[i] = rows[j];
            rows[j] = tmp;
            j--;
          }
        }
        feature[node] = f;
        threshold[node] = split;
        const l = grow(start, i, depth + 1);
        const r = grow(i, end, depth + 1);
        left[node] = l;
        right[node] = r;
        return node;
      };
      grow(0, psi, 0);
      treesGrown++;
      if (options.onIteration?.({ iteration: t + 1, metrics: { 'train.nodes': feature.length } }) === false)
        break;
    }

    const nodes: IForestNodes = {
      treeStart: Int32Array.from(treeStart),
      feature: Int32Array.from(feature),
      threshold: Float64Array.from(threshold),
      left: Int32Array.from(left),
      right: Int32Array.from(right),
      leafDepth: Float64Array.from(leafDepth),
    };
    const state = { ...shell.state, nTrees: treesGrown };
    let model = new IsolationForestModel(state, nodes);
    if (p.contamination !== 'auto') {
      const scores = model.predict(x).sort();
      // The (1 − contamination) quantile of the training scores flags that share of rows.
      const threshold = percentileOfSorted(scores, 1 - p.contamination);
      model = new IsolationForestModel({ ...state, threshold }, nodes);
    }
    return model;
  }
}

function emptyNodes(): IForestNodes {
  return {
    treeStart: new Int32Array(0),
    feature: new Int32Array(0),
    threshold: new Float64Array(0),
    left: new Int32Array(0),
    right: new Int32Array(0),
    leafDepth: new Float64Array(0),
  };
}

import type { GbdtObjective } from '../params.js';

/**
 * Gradients and hessians of each objective with respect to the raw score, and the constant
 * score the boosting starts from. Scores are row-major nRows × nOutputs doubles; gradients
 * go out as Float32 pairs (g, h) per row, the layout the histogram kernel reads.
 */
export interface ObjectiveSpec {
  name: GbdtObjective;
  nOutputs: number;
  huberDelta: number;
}

export function initialScore(obj: ObjectiveSpec, y: Float64Array, w: Float64Array | undefined): Float64Array {
  const K = obj.nOutputs;
  const out = new Float64Array(K);
  const n = y.length;
  let sw = 0;
  for (let i = 0; i < n; i++) sw += w ? w[i] : 1;
  switch (obj.name) {
    case 'binary': {
      let pos = 0;
      for (let i = 0; i < n; i++) pos += (w ? w[i] : 1) * y[i];
      const p = Math.min(Math.max(pos / sw, 1e-15), 1 - 1e-15);
      out[0] = Math.log(p / (1 - p));
      break;
    }
    case 'multiclass': {
      const cnt = new Float64Array(K);
      for (let i = 0; i < n; i++) cnt[y[i]] += w ? w[i] : 1;
      for (let k = 0; k < K; k++) out[k] = Math.log(Math.max(cnt[k] / sw, 1e-15));
      break;
    }
    case 'regression':
    case 'huber': {
      let s = 0;
      for (let i = 0; i < n; i++) s += (w ? w[i] : 1) * y[i];
      out[0] = s / sw;
      break;
    }
    case 'regression_l1':
      out[0] = weightedMedian(y, w, null, 0, n);
      break;
  }
  return out;
}

/**
 * Fills gradHess of rows [start, end) for output k (rows are independent, so threads split
 * the range). Single-output objectives read `score`; multiclass reads `prob`, the softmax of
 * the scores computed once per round by softmaxInto; binary reads `expNeg` = exp(−score), kept
 * up to date by addLeafValues instead of the score, so a round costs no exp per row (the gradient pass was 10 % of
 * training time on flights, nearly all of it Math.exp).
 */
export function computeGradients(
  obj: ObjectiveSpec,
  score: Float64Array,
  prob: Float64Array | null,
  expNeg: Float64Array | null,
  y: Float64Array,
  w: Float64Array | undefined,
  k: number,
  gradHess: Float32Array,
  start: number,
  end: number,
): void {
  switch (obj.name) {
    case 'binary':
      for (let i = start; i < end; i++) {
        const p = 1 / (1 + expNeg![i]);
        const wi = w ? w[i] : 1;
        gradHess[2 * i] = (p - y[i]) * wi;
        gradHess[2 * i + 1] = Math.max(p * (1 - p), 1e-16) * wi;
      }
      break;
    case 'multiclass': {
      const K = obj.nOutputs;
      // LightGBM's factor K / (K − 1) makes the softmax hessian match the binary one at K = 2.
      const factor = K / (K - 1);
      const pr = prob!;
      for (let i = start; i < end; i++) {
        const p = pr[i * K + k];
        const wi = w ? w[i] : 1;
        gradHess[2 * i] = (p - (y[i] === k ? 1 : 0)) * wi;
        gradHess[2 * i + 1] = Math.max(factor * p * (1 - p), 1e-16) * wi;
      }
      break;
    }
    case 'regression':
      for (let i = start; i < end; i++) {
        const wi = w ? w[i] : 1;
        gradHess[2 * i] = (score[i] - y[i]) * wi;
        gradHess[2 * i + 1] = wi;
      }
      break;
    case 'regression_l1':
      for (let i = start; i < end; i++) {
        const wi = w ? w[i] : 1;
        const d = score[i] - y[i];
        gradHess[2 * i] = (d > 0 ? 1 : d < 0 ? -1 : 0) * wi;
        gradHess[2 * i + 1] = wi;
      }
      break;
    case 'huber': {
      const delta = obj.huberDelta;
      for (let i = start; i < end; i++) {
        const wi = w ? w[i] : 1;
        const d = score[i] - y[i];
        gradHess[2 * i] = Math.min(delta, Math.max(d, -delta)) * wi;
        gradHess[2 * i + 1] = wi;
      }
      break;
    }
  }
}

/** Row-wise softmax of a row-major n × K score matrix into prob. */
export function softmaxInto(score: Float64Array, K: number, prob: Float64Array): void {
  const n = score.length / K;
  for (let i = 0; i < n; i++) {
    const o = i * K;
    let m = score[o];
    for (let k = 1; k < K; k++) if (score[o + k] > m) m = score[o + k];
    let s = 0;
    for (let k = 0; k < K; k++) {
      const e = Math.exp(score[o + k] - m);
      prob[o + k] = e;
      s += e;
    }
    for (let k = 0; k < K; k++) prob[o + k] /= s;
  }
}

/** The link from raw score to Model.predict's layout, in place. */
export function applyLink(obj: ObjectiveSpec, raw: Float64Array): Float64Array {
  if (obj.name === 'binary') {
    for (let i = 0; i < raw.length; i++) raw[i] = 1 / (1 + Math.exp(-raw[i]));
  } else if (obj.name === 'multiclass') {
    softmaxInto(raw, obj.nOutputs, raw);
  }
  return raw;
}

/**
 * Weighted median of values[rows[i]] for i in [start, end) (rows null: identity). Absolute
 * error leaves take it instead of the Newton step, as LightGBM renews them.
 */
export function weightedMedian(
  values: Float64Array,
  w: Float64Array | undefined,
  rows: Int32Array | null,
  start: number,
  end: number,
): number {
  const n = end - start;
  if (n <= 0) return 0;
  const idx = new Int32Array(n);
  for (let i = 0; i < n; i++) idx[i] = rows ? rows[start + i] : start + i;
  const order = Array.from(idx).sort((a, b) => values[a] - values[b] || a - b);
  if (!w) {
    const mid = (n - 1) / 2;
    const lo = values[order[Math.floor(mid)]];
    const hi = values[order[Math.ceil(mid)]];
    return (lo + hi) / 2;
  }
  let total = 0;
  for (const r of order) total += w[r];
  let acc = 0;
  for (const r of order) {
    acc += w[r];
    if (acc >= total / 2) return values[r];
  }
  return values[order[n - 1]];
}

/**
 * score[row, k] += the value of the leaf holding each row, for partition positions [lo, hi):
 * leaf l owns rows[leafStart[l], leafStart[l] + leafCount[l]). Threads split the positions.
 * With `expNeg` (binary), exp(−score) is updated instead: binary training keeps no raw score.
 */
export function addLeafValues(
  score: Float64Array,
  expNeg: Float64Array | null,
  K: number,
  k: number,
  rows: Int32Array,
  leafStart: Int32Array,
  leafCount: Int32Array,
  leafValue: Float64Array,
  nLeaves: number,
  lo: number,
  hi: number,
): void {
  for (let l = 0; l < nLeaves; l++) {
    const s = Math.max(leafStart[l], lo);
    const e = Math.min(leafStart[l] + leafCount[l], hi);
    const v = leafValue[l];
    if (expNeg) {
      // exp(−(score + v)) = exp(−score)·exp(−v): one exp per leaf instead of one per row.
      const f = Math.exp(-v);
      for (let i = s; i < e; i++) expNeg[rows[i]] *= f;
    } else if (K === 1) for (let i = s; i < e; i++) score[rows[i]] += v;
    else for (let i = s; i < e; i++) score[rows[i] * K + k] += v;
  }
}

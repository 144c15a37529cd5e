import { LOG_SQRT_2PI, logNormalMass, normalCdf, normalQuantile } from '../normal.js';
import type { Rng } from '../rng.js';

/**
 * Optuna's univariate Parzen estimators (TPE's l(x) and g(x)) on typed arrays.
 *
 * Numeric: one truncated normal per observation plus a prior component N(mid, range) with
 * weight `priorWeight`. Bandwidths follow Optuna's univariate rule: each observation's σ is
 * the larger distance to its sorted neighbours (the prior mean included, the range ends as
 * outer neighbours; `consider_endpoints = false` uses the inner neighbour at the ends),
 * then clipped to [range / min(100, 1 + nKernels), range] ("magic clip"). A discrete
 * parameter (step > 0) extends the range by step/2 each side and scores by the mass of
 * the step cell, as `_BatchedDiscreteTruncNormDistributions` does.
 *
 * Categorical: each observation is a kernel with `priorWeight / nKernels` on every choice
 * and +1 on the observed one, normalised; the prior kernel is uniform.
 */

/** Optuna's default_weights: 1 for the newest 25, a linear ramp from 1/n for older ones. */
export function defaultWeights(n: number, out: Float64Array): Float64Array {
  if (n < 25) {
    out.fill(1, 0, n);
    return out;
  }
  const ramp = n - 25;
  for (let i = 0; i < ramp; i++) out[i] = ramp === 1 ? 1 / n : 1 / n + ((1 - 1 / n) * i) / (ramp - 1);
  out.fill(1, ramp, n);
  return out;
}

export interface NumericEstimator {
  n: number; // components, prior included
  mus: Float64Array;
  sigmas: Float64Array;
  /** log weight − log σ − log √2π − log Z (continuous); log weight − log Z (discrete). */
  consts: Float64Array;
  cumWeights: Float64Array;
  low: number; // truncation bounds (extended by step/2 when discrete)
  high: number;
  step: number;
  /**
   * Kernels with σ ≤ 2·minSigma sorted by mean, so a density evaluation visits only those
   * near x (the others' terms fall more than 40 nats below the largest: e⁻⁴⁰ is below
   * double precision). After many trials nearly every g(x) kernel is narrow.
   */
  narrowMus: Float64Array;
  narrowIdx: Int32Array;
  narrowSigmaMax: number;
  narrowConstMax: number;
  wideIdx: Int32Array;
}

/**
 * Reusable buffers for one estimator at a time, so a sampler building thousands of kernels per
 * suggestion does not hand the garbage collector megabytes per trial.
 */
export class ParzenWorkspace {
  private size = 0;
  f64: Float64Array[] = [];
  i32: Int32Array[] = [];
  taken = new Uint8Array(0);

  ensure(n: number): this {
    if (n <= this.size) return this;
    const size = Math.max(n, this.size * 2, 64);
    this.f64 = Array.from({ length: 8 }, () => new Float64Array(size));
    this.i32 = Array.from({ length: 3 }, () => new Int32Array(size));
    this.taken = new Uint8Array(size);
    this.size = size;
    return this;
  }
}

export function buildNumericEstimator(
  obs: Float64Array,
  nObs: number,
  low: number,
  high: number,
  step: number,
  priorWeight: number,
  workspace?: ParzenWorkspace,
): NumericEstimator {
  const n = nObs + 1;
  const ws = workspace?.ensure(n);
  const f = (k: number) => (ws ? ws.f64[k].subarray(0, n) : new Float64Array(n));
  const ii = (k: number, len: number) => (ws ? ws.i32[k].subarray(0, len) : new Int32Array(len));
  const mus = f(0);
  const sigmas = f(1);
  const weights = defaultWeights(nObs, f(2));
  mus.set(obs.subarray(0, nObs));
  const mid = 0.5 * (low + high);
  mus[nObs] = mid;
  weights[nObs] = priorWeight;
  const range = high - low + step;
  const lo = low - step / 2;
  const hi = high + step / 2;
  // Bandwidths from sorted neighbours (prior mean included).
  // Native numeric sort of the values, then each index finds its slot by binary search
  // (ties take consecutive slots): several times faster than sorting indices with a comparator.
  const sortedMus = f(3);
  sortedMus.set(mus);
  sortedMus.sort();
  const order = ii(0, n);
  const taken = ws ? ws.taken.subarray(0, n).fill(0) : new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    let p = lowerBound(sortedMus, mus[i]);
    while (taken[p]) p++;
    taken[p] = 1;
    order[p] = i;
  }
  for (let k = 0; k < n; k++) {
    const left = k === 0 ? lo : mus[order[k - 1]];
    const right = k === n - 1 ? hi : mus[order[k + 1]];
    const m = mus[order[k]];
    sigmas[order[k]] = Math.max(m - left, right - m);
  }
  if (n + 2 >= 4) {
    // consider_endpoints = false: the outermost kernels look inward only.
    sigmas[order[0]] = n > 1 ? mus[order[1]] - mus[order[0]] : sigmas[order[0]];
    sigmas[order[n - 1]] = n > 1 ? mus[order[n - 1]] - mus[order[n - 2]] : sigmas[order[n - 1]];
  }
  const minSigma = range / Math.min(100, 1 + n);
  const maxSigma = range;
  for (let i = 0; i < nObs; i++) sigmas[i] = Math.min(maxSigma, Math.max(minSigma, sigmas[i]));
  sigmas[nObs] = range;
  let wsum = 0;
  for (let i = 0; i < n; i++) wsum += weights[i];
  const consts = f(4);
  const cumWeights = f(5);
  let acc = 0;
  for (let i = 0; i < n; i++) {
    const w = weights[i] / wsum;
    acc += w;
    cumWeights[i] = acc;
    const za = (lo - mus[i]) / sigmas[i];
    const zb = (hi - mus[i]) / sigmas[i];
    // Far from both ends the truncation mass is 1 to double precision (Φ(−9) < 1e-18).
    const logZ = za < -9 && zb > 9 ? 0 : logNormalMass(za, zb);
    consts[i] = step > 0 ? Math.log(w) - logZ : Math.log(w) - Math.log(sigmas[i]) - LOG_SQRT_2PI - logZ;
  }
  let nNarrow = 0;
  for (let k = 0; k < n; k++) if (sigmas[order[k]] <= 2 * minSigma) nNarrow++;
  const narrowMus = ws ? ws.f64[6].subarray(0, nNarrow) : new Float64Array(nNarrow);
  const narrowIdx = ii(1, nNarrow);
  const wideIdx = ii(2, n - nNarrow);
  let narrowSigmaMax = 0;
  let narrowConstMax = Number.NEGATIVE_INFINITY;
  for (let k = 0, a = 0, b = 0; k < n; k++) {
    const i = order[k];
    if (sigmas[i] <= 2 * minSigma) {
      narrowMus[a] = mus[i];
      narrowIdx[a++] = i;
      if (sigmas[i] > narrowSigmaMax) narrowSigmaMax = sigmas[i];
      if (consts[i] > narrowConstMax) narrowConstMax = consts[i];
    } else {
      wideIdx[b++] = i;
    }
  }
  return {
    n,
    mus,
    sigmas,
    consts,
    cumWeights,
    low: lo,
    high: hi,
    step,
    narrowMus,
    narrowIdx,
    narrowSigmaMax,
    narrowConstMax,
    wideIdx,
  };
}

function lowerBound(a: Float64Array, x: number): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const m = (lo + hi) >> 1;
    if (a[m] < x) lo = m + 1;
    else hi = m;
  }
  return lo;
}

function pickComponent(cum: Float64Array, n: number, u: number): number {
  let a = 0;
  let b = n - 1;
  const target = u * cum[n - 1];
  while (a < b) {
    const m = (a + b) >> 1;
    if (cum[m] < target) a = m + 1;
    else b = m;
  }
  return a;
}

/** A draw from a truncated normal on [low, high], by inverse CDF on the precise side. */
export function sampleTruncatedNormal(
  mu: number,
  sigma: number,
  low: number,
  high: number,
  rng: Rng,
): number {
  let za = (low - mu) / sigma;
  let zb = (high - mu) / sigma;
  let flip = false;
  if (za > 0) {
    // Upper tail: mirror to the lower tail, where Φ keeps its relative precision.
    flip = true;
    [za, zb] = [-zb, -za];
  }
  const pa = normalCdf(za);
  const pb = normalCdf(zb);
  let z: number;
  if (pb - pa < 1e-300) z = Math.abs(za) < Math.abs(zb) ? za : zb;
  else z = normalQuantile(pa + rng.uniform() * (pb - pa));
  z = Math.min(zb, Math.max(za, z));
  if (flip) z = -z;
  return mu + sigma * z;
}

/** Draws from the mixture; discrete draws land on the step grid starting at `gridLow`. */
export function sampleNumeric(est: NumericEstimator, gridLow: number, gridHigh: number, rng: Rng): number {
  const i = pickComponent(est.cumWeights, est.n, rng.uniform());
  const x = sampleTruncatedNormal(est.mus[i], est.sigmas[i], est.low, est.high, rng);
  if (est.step > 0) {
    const snapped = gridLow + Math.round((x - gridLow) / est.step) * est.step;
    return Math.min(gridHigh, Math.max(gridLow, snapped));
  }
  return x;
}

/** log density (or cell mass when discrete) of the mixture at x; `scratch` has room for est.n. */
export function logDensity(est: NumericEstimator, x: number, scratch: Float64Array): number {
  const { n, mus, sigmas, consts } = est;
  let max = Number.NEGATIVE_INFINITY;
  if (est.step > 0) {
    const h = est.step / 2;
    for (let i = 0; i < n; i++) {
      const s = sigmas[i];
      const t = consts[i] + logNormalMass((x - h - mus[i]) / s, (x + h - mus[i]) / s);
      scratch[i] = t;
      if (t > max) max = t;
    }
    return sumExp(scratch, n, max);
  }
  // Continuous: wide kernels always, narrow ones only within reach of the largest term.
  let k = 0;
  const { wideIdx, narrowMus, narrowIdx } = est;
  for (let j = 0; j < wideIdx.length; j++) {
    const i = wideIdx[j];
    const z = (x - mus[i]) / sigmas[i];
    const t = consts[i] - 0.5 * z * z;
    scratch[k++] = t;
    if (t > max) max = t;
  }
  const nn = narrowMus.length;
  if (nn > 0) {
    const pos = lowerBound(narrowMus, x);
    for (const j of [pos - 1, pos]) {
      if (j < 0 || j >= nn) continue;
      const i = narrowIdx[j];
      const z = (x - mus[i]) / sigmas[i];
      const t = consts[i] - 0.5 * z * z;
      if (t > max) max = t;
    }
    // A narrow kernel at distance d contributes at most narrowConstMax − ½(d/σmax)².
    const reach = est.narrowSigmaMax * Math.sqrt(2 * Math.max(0, est.narrowConstMax - max + 40));
    const from = lowerBound(narrowMus, x - reach);
    const to = lowerBound(narrowMus, x + reach);
    for (let j = from; j <= to && j < nn; j++) {
      const i = narrowIdx[j];
      const z = (x - mus[i]) / sigmas[i];
      const t = consts[i] - 0.5 * z * z;
      scratch[k++] = t;
      if (t > max) max = t;
    }
  }
  return sumExp(scratch, k, max);
}

/** log Σ exp(terms), skipping terms 40 nats below the largest (below double precision). */
function sumExp(scratch: Float64Array, k: number, max: number): number {
  if (max === Number.NEGATIVE_INFINITY) return max;
  const floor = max - 40;
  let sum = 0;
  for (let i = 0; i < k; i++) {
    const t = scratch[i];
    if (t > floor) sum += Math.exp(t - max);
  }
  return max + Math.log(sum);
}

/** Mixture probabilities over choices (categorical estimator). */
export function categoricalProbabilities(
  obs: Float64Array,
  nObs: number,
  nChoices: number,
  priorWeight: number,
): Float64Array {
  const p = new Float64Array(nChoices);
  const weights = defaultWeights(nObs, new Float64Array(nObs + 1));
  weights[nObs] = priorWeight;
  let wsum = 0;
  for (let i = 0; i <= nObs; i++) wsum += weights[i];
  const nKernels = nObs + 1;
  const kernelNorm = 1 + (priorWeight * nChoices) / nKernels;
  const base = priorWeight / nKernels;
  let obsWeight = 0;
  for (let i = 0; i < nObs; i++) {
    const w = weights[i] / wsum;
    obsWeight += w;
    p[obs[i]] += w / kernelNorm;
  }
  const wPrior = weights[nObs] / wsum;
  for (let c = 0; c < nChoices; c++) p[c] += (obsWeight * base) / kernelNorm + wPrior / nChoices;
  return p;
}

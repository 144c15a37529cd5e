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
}

export function buildNumericEstimator(
  obs: Float64Array,
  nObs: number,
  low: number,
  high: number,
  step: number,
  priorWeight: number,
): NumericEstimator {
  const n = nObs + 1;
  const mus = new Float64Array(n);
  const sigmas = new Float64Array(n);
  const weights = defaultWeights(nObs, new Float64Array(n));
  mus.set(obs.subarray(0, nObs));
  const mid = 0.5 * (low + high);
  mus[nObs] = mid;
  weights[nObs] = priorWeight;
  const range = high - low + step;
  const lo = low - step / 2;
  const hi = high + step / 2;
  // Bandwidths from sorted neighbours (prior mean included).
  const order = new Int32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  order.sort((a, b) => mus[a] - mus[b]);
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
  const consts = new Float64Array(n);
  const cumWeights = new Float64Array(n);
  let acc = 0;
  for (let i = 0; i < n; i++) {
    const w = weights[i] / wsum;
    acc += w;
    cumWeights[i] = acc;
    const logZ = logNormalMass((lo - mus[i]) / sigmas[i], (hi - mus[i]) / sigmas[i]);
    consts[i] = step > 0 ? Math.log(w) - logZ : Math.log(w) - Math.log(sigmas[i]) - LOG_SQRT_2PI - logZ;
  }
  return { n, mus, sigmas, consts, cumWeights, low: lo, high: hi, step };
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
  } else {
    for (let i = 0; i < n; i++) {
      const z = (x - mus[i]) / sigmas[i];
      const t = consts[i] - 0.5 * z * z;
      scratch[i] = t;
      if (t > max) max = t;
    }
  }
  if (max === Number.NEGATIVE_INFINITY) return max;
  let sum = 0;
  for (let i = 0; i < n; i++) sum += Math.exp(scratch[i] - max);
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

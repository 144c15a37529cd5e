import type { FeatureBinMapper } from './binning.js';
import { BIN_DOUBLES } from './histogram.js';

/** The regularisation and size limits a split must respect (LightGBM's meanings). */
export interface SplitRules {
  lambdaL1: number;
  lambdaL2: number;
  minDataInLeaf: number;
  minSumHessianInLeaf: number;
  minGainToSplit: number;
  maxCatToOnehot: number;
  maxCatThreshold: number;
  catSmooth: number;
  catL2: number;
  minDataPerGroup: number;
}

/** The best split found for one leaf; `gain` is -Infinity when the leaf cannot split. */
export class SplitCandidate {
  gain = Number.NEGATIVE_INFINITY;
  feature = -1;
  /** numeric: value bins ≤ threshold go left (-1: only missing goes left). */
  threshold = 0;
  defaultLeft = false;
  isCategorical = false;
  /** categorical: the bins that go left. */
  catBins: number[] = [];
  leftG = 0;
  leftH = 0;
  /** Rows on each side, estimated from the hessians (see findBestSplitForFeature). */
  leftC = 0;
  rightG = 0;
  rightH = 0;
  rightC = 0;

  reset(): void {
    this.gain = Number.NEGATIVE_INFINITY;
    this.feature = -1;
    this.catBins = [];
  }
}

function thresholdL1(g: number, l1: number): number {
  if (g > l1) return g - l1;
  if (g < -l1) return g + l1;
  return 0;
}

export function leafGain(g: number, h: number, l1: number, l2: number): number {
  const t = thresholdL1(g, l1);
  return (t * t) / (h + l2);
}

/** The (unshrunk) leaf value that minimises the second-order loss with L1/L2 penalties. */
export function leafOutput(g: number, h: number, l1: number, l2: number): number {
  return -thresholdL1(g, l1) / (h + l2);
}

/**
 * Scans feature f's histogram (BIN_DOUBLES doubles per bin at `base`) for the best split of a
 * leaf with totals (G, H) and C rows, and writes it into `best` when it beats best.gain. Ties
 * keep the earlier candidate, so the scan order (features ascending, bins ascending) makes
 * results unique.
 *
 * Histograms hold no row counts, so the rows on a side are estimated from its hessian share,
 * round(h · C / H), as LightGBM does: min_data_in_leaf, cat_smooth and min_data_per_group
 * compare against that estimate. It is exact when every row has the same hessian (squared
 * error, Huber and absolute error without weights); for logistic losses a leaf can end up a
 * few rows under min_data_in_leaf, never under min_sum_hessian_in_leaf.
 */
export function findBestSplitForFeature(
  hist: Float64Array,
  base: number,
  feature: number,
  mapper: FeatureBinMapper,
  G: number,
  H: number,
  C: number,
  rules: SplitRules,
  best: SplitCandidate,
): void {
  if (mapper.kind === 'numeric') numericSplit(hist, base, feature, mapper, G, H, C, rules, best);
  else categoricalSplit(hist, base, feature, mapper, G, H, C, rules, best);
}

function numericSplit(
  hist: Float64Array,
  base: number,
  feature: number,
  mapper: FeatureBinMapper,
  G: number,
  H: number,
  C: number,
  rules: SplitRules,
  best: SplitCandidate,
): void {
  const { lambdaL1: l1, lambdaL2: l2, minDataInLeaf: minData, minSumHessianInLeaf: minHess } = rules;
  const nv = mapper.missingBin;
  const mb = base + BIN_DOUBLES * nv;
  const mG = hist[mb];
  const mH = hist[mb + 1];
  const minGainShift = leafGain(G, H, l1, l2) + rules.minGainToSplit;
  const hasMissing = mH > 0;
  const perHessian = C / H;
  // Pass 1: missing goes right. Without missing rows the last value bin would leave the right empty.
  scanThresholds(0, hasMissing ? nv - 1 : nv - 2, false);
  // Pass 2: missing goes left (t = -1: only missing goes left).
  if (hasMissing) scanThresholds(-1, nv - 2, true);

  /** Thresholds t in [first, last], left = bins ≤ t (plus the missing bin when missingLeft). */
  function scanThresholds(first: number, last: number, missingLeft: boolean): void {
    let lG = missingLeft ? mG : 0;
    let lH = missingLeft ? mH : 0;
    for (let t = first; t <= last; t++) {
      if (t >= 0) {
        const b = base + BIN_DOUBLES * t;
        const h = hist[b + 1];
        if (h === 0) continue;
        lG += hist[b];
        lH += h;
      }
      const lC = Math.round(lH * perHessian);
      if (lC < minData || lH < minHess) continue;
      const rC = C - lC;
      const rH = H - lH;
      if (rC < minData || rH < minHess) break;
      const rG = G - lG;
      const gain = leafGain(lG, lH, l1, l2) + leafGain(rG, rH, l1, l2);
      if (gain > minGainShift && gain - minGainShift + rules.minGainToSplit > best.gain) {
        setNumeric(best, gain - minGainShift + rules.minGainToSplit, feature, t, lG, lH, lC, rG, rH, rC);
        // Without missing rows in training the direction is a guess: follow the heavier side.
        best.defaultLeft = missingLeft || (!hasMissing && lH > rH);
      }
    }
  }
}

function setNumeric(
  best: SplitCandidate,
  gain: number,
  feature: number,
  t: number,
  lG: number,
  lH: number,
  lC: number,
  rG: number,
  rH: number,
  rC: number,
): void {
  best.gain = gain;
  best.feature = feature;
  best.threshold = t;
  best.isCategorical = false;
  best.catBins = [];
  best.leftG = lG;
  best.leftH = lH;
  best.leftC = lC;
  best.rightG = rG;
  best.rightH = rH;
  best.rightC = rC;
}

/** Each category's sort key, computed once per scan rather than in every comparison (bins < 256). */
const sortKeys = new Float64Array(256);
/** The categories to order, and the merge sort's second buffer. */
const sortBins = new Int32Array(256);
const sortSpare = new Int32Array(256);

/**
 * sortBins[0, n) ordered by sortKeys ascending, ties by bin: a bottom-up merge sort over typed
 * arrays, 2.7× faster than Array.prototype.sort with a comparator for flights' ~230 airports
 * (8.3 µs against 22 µs), and the split search sorts two such features for every new leaf.
 * Returns a view of whichever buffer holds the result.
 */
function sortBinsByKey(n: number): Int32Array {
  const keys = sortKeys;
  let src = sortBins;
  let dst = sortSpare;
  for (let width = 1; width < n; width *= 2) {
    for (let lo = 0; lo < n; lo += 2 * width) {
      const mid = Math.min(lo + width, n);
      const hi = Math.min(lo + 2 * width, n);
      let i = lo;
      let j = mid;
      let k = lo;
      while (i < mid && j < hi) {
        const a = src[i];
        const b = src[j];
        if (keys[b] < keys[a] || (keys[b] === keys[a] && b < a)) {
          dst[k++] = b;
          j++;
        } else {
          dst[k++] = a;
          i++;
        }
      }
      while (i < mid) dst[k++] = src[i++];
      while (j < hi) dst[k++] = src[j++];
    }
    const s = src;
    src = dst;
    dst = s;
  }
  return src.subarray(0, n);
}

/**
 * LightGBM's categorical split: one-vs-rest when the feature has few levels; otherwise the
 * levels seen at least cat_smooth times are sorted by G / (H + cat_smooth) and the best prefix
 * from either end (at most max_cat_threshold levels, groups of min_data_per_group rows) goes
 * left. Missing and unlisted levels go right.
 */
function categoricalSplit(
  hist: Float64Array,
  base: number,
  feature: number,
  mapper: FeatureBinMapper,
  G: number,
  H: number,
  C: number,
  rules: SplitRules,
  best: SplitCandidate,
): void {
  const { lambdaL1: l1, minDataInLeaf: minData, minSumHessianInLeaf: minHess } = rules;
  const nv = mapper.missingBin;
  const perHessian = C / H;
  if (nv <= rules.maxCatToOnehot) {
    const l2 = rules.lambdaL2;
    const minGainShift = leafGain(G, H, l1, l2) + rules.minGainToSplit;
    for (let t = 0; t < nv; t++) {
      const b = base + BIN_DOUBLES * t;
      const lH = hist[b + 1];
      const lC = Math.round(lH * perHessian);
      if (lC < minData || lH < minHess) continue;
      const rC = C - lC;
      const rH = H - lH;
      if (rC < minData || rH < minHess) continue;
      const lG = hist[b];
      const rG = G - lG;
      const gain = leafGain(lG, lH, l1, l2) + leafGain(rG, rH, l1, l2);
      if (gain > minGainShift && gain - minGainShift + rules.minGainToSplit > best.gain) {
        setCategorical(
          best,
          gain - minGainShift + rules.minGainToSplit,
          feature,
          [t],
          lG,
          lH,
          lC,
          rG,
          rH,
          rC,
        );
      }
    }
    return;
  }
  const l2 = rules.lambdaL2 + rules.catL2;
  const minGainShift = leafGain(G, H, l1, l2) + rules.minGainToSplit;
  const smooth = rules.catSmooth;
  let nUsed = 0;
  for (let t = 0; t < nv; t++) {
    const h = hist[base + BIN_DOUBLES * t + 1];
    if (h > 0 && Math.round(h * perHessian) >= rules.catSmooth) {
      sortKeys[t] = hist[base + BIN_DOUBLES * t] / (h + smooth);
      sortBins[nUsed++] = t;
    }
  }
  if (nUsed === 0) return;
  // Ascending by key, ties by bin: a unique order, hence a deterministic split.
  const used = sortBinsByKey(nUsed);
  const maxNumCat = Math.min(rules.maxCatThreshold, Math.floor((used.length + 1) / 2));
  let bestDir = 0;
  let bestCount = 0;
  let found = false;
  let bestGain = best.gain;
  const bestSums = new Float64Array(6);
  for (const dir of [1, -1]) {
    let pos = dir === 1 ? 0 : used.length - 1;
    let lG = 0;
    let lH = 0;
    let lC = 0;
    let group = 0;
    for (let i = 0; i < used.length && i < maxNumCat; i++) {
      const t = used[pos];
      pos += dir;
      const b = base + BIN_DOUBLES * t;
      const h = hist[b + 1];
      lG += hist[b];
      lH += h;
      lC = Math.round(lH * perHessian);
      group += h * perHessian;
      if (lC < minData || lH < minHess) continue;
      const rC = C - lC;
      if (rC < minData || rC < rules.minDataPerGroup) break;
      const rH = H - lH;
      if (rH < minHess) break;
      if (group < rules.minDataPerGroup) continue;
      group = 0;
      const rG = G - lG;
      const gain = leafGain(lG, lH, l1, l2) + leafGain(rG, rH, l1, l2);
      if (gain <= minGainShift) continue;
      const g = gain - minGainShift + rules.minGainToSplit;
      if (g > bestGain) {
        bestGain = g;
        bestDir = dir;
        bestCount = i + 1;
        found = true;
        bestSums.set([lG, lH, lC, rG, rH, rC]);
      }
    }
  }
  if (!found) return;
  const bins = Array.from(
    bestDir === 1 ? used.subarray(0, bestCount) : used.subarray(used.length - bestCount),
  );
  bins.sort((a, b) => a - b);
  setCategorical(
    best,
    bestGain,
    feature,
    bins,
    bestSums[0],
    bestSums[1],
    bestSums[2],
    bestSums[3],
    bestSums[4],
    bestSums[5],
  );
}

function setCategorical(
  best: SplitCandidate,
  gain: number,
  feature: number,
  bins: number[],
  lG: number,
  lH: number,
  lC: number,
  rG: number,
  rH: number,
  rC: number,
): void {
  best.gain = gain;
  best.feature = feature;
  best.threshold = 0;
  best.isCategorical = true;
  best.defaultLeft = false;
  best.catBins = bins;
  best.leftG = lG;
  best.leftH = lH;
  best.leftC = lC;
  best.rightG = rG;
  best.rightH = rH;
  best.rightC = rC;
}

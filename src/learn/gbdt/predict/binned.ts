import type { Ensemble } from '../ensemble.js';

/**
 * The fast scorer: the ensemble rewritten so a tree walk is a fixed number of branch-free
 * steps over small integers, the way LightGBM and treelite score.
 *
 * - Inputs are binned once to the model's own thresholds: for a numeric feature with sorted
 *   distinct split thresholds c[0] < … < c[K-1], bin(v) = #{i : c[i] < v}, so
 *   `v <= c[t]` ⟺ `bin(v) <= t` exactly (no rounding: it is the same double comparison, done
 *   once per value instead of once per node), and NaN gets a bin of its own, K + 1. A
 *   categorical code becomes code + 1, with 0 for missing. Bins are uint16, one per feature.
 * - Every split, numeric or categorical, is then a set of bins: the bins that go right
 *   (numeric: t+1 … K, plus K + 1 when NaN goes right; categorical: the codes that do not go
 *   left, plus 0 when missing goes right), a bitset over the feature's bins. A step is one
 *   rule for every node — right = bit `bin` of the node's set — with no compare and no
 *   per-kind path. A numeric set depends only on (feature, threshold, NaN direction), so those
 *   are stored once and shared by every node that uses them; they stay in cache.
 * - Every tree is laid out as a perfect binary tree of the ensemble's depth D in heap order
 *   (children of i at 2i+1 and 2i+2). A leaf above depth D is pushed down through "always
 *   left" nodes (feature 0, the all-zero set), so every walk is exactly D steps: the loop's
 *   branch is predictable and the CPU overlaps the walks of consecutive rows instead of
 *   stalling on mispredicted splits.
 *
 * The split rule itself is defined once, in `goesLeft` (predict.ts); kernel.test.ts checks
 * this encoding against it. Raw scores are summed in the reference order
 * (baseScore, then trees 0, 1, …), so they equal the node-walking scorer's bit for bit.
 */
export interface BinnedEnsemble {
  nFeatures: number;
  nOutputs: number;
  nTrees: number;
  /** Depth of every (padded) tree. */
  depth: number;
  /** Per feature: sorted distinct thresholds (numeric) or null (categorical). */
  cuts: (Float64Array | null)[];
  /** Per feature: number of levels (categorical) or 0. */
  nLevels: Int32Array;
  /** Per tree × (2^D − 1) internal nodes, heap order: the feature the node reads. */
  feature: Uint16Array;
  /** Per internal node: the first word of its "goes right" set in rightBits (0: the all-zero set). */
  setStart: Int32Array;
  rightBits: Uint32Array;
  /** Per tree × 2^D leaves. */
  leafValue: Float64Array;
  treeOutput: Int32Array;
  baseScore: Float64Array;
}

/** Deeper ensembles would need 2^D nodes per tree; they are scored by the node walk instead. */
export const MAX_BINNED_DEPTH = 10;
const MAX_BIN = 0xffff;

/**
 * Builds the binned form, or null when the ensemble does not fit it (deeper than
 * MAX_BINNED_DEPTH, or a feature with more than 65,534 thresholds or 65,535 levels).
 */
export function binEnsemble(e: Ensemble, levelCounts: ArrayLike<number>): BinnedEnsemble | null {
  const nf = levelCounts.length;
  const nTrees = e.treeRoot.length;
  // Depth, and the thresholds each numeric feature uses.
  const thresholdSets: Set<number>[] = Array.from({ length: nf }, () => new Set());
  let depth = 0;
  const stack: number[] = [];
  for (let t = 0; t < nTrees; t++) {
    stack.push(e.treeRoot[t]!, 0);
    while (stack.length > 0) {
      const d = stack.pop()!;
      const n = stack.pop()!;
      const f = e.featureIndex[n]!;
      if (f < 0) {
        if (d > depth) depth = d;
        continue;
      }
      if (d >= MAX_BINNED_DEPTH) return null;
      if (e.isCategorical[n] === 0) thresholdSets[f]!.add(e.threshold[n]!);
      stack.push(e.left[n]!, d + 1, e.right[n]!, d + 1);
    }
  }
  const cuts: (Float64Array | null)[] = [];
  const nLevels = new Int32Array(nf);
  // The largest bin of any feature: numeric K + 1 (NaN), categorical its level count.
  let maxBin = 0;
  for (let f = 0; f < nf; f++) {
    if (levelCounts[f]! > 0) {
      nLevels[f] = levelCounts[f]!;
      cuts.push(null);
      maxBin = Math.max(maxBin, levelCounts[f]!);
    } else {
      const c = Float64Array.from(thresholdSets[f]!).sort();
      cuts.push(c);
      maxBin = Math.max(maxBin, c.length + 1);
    }
  }
  if (maxBin > MAX_BIN) return null;

  const nInternal = (1 << depth) - 1;
  const nLeafSlots = 1 << depth;
  const feature = new Uint16Array(nTrees * nInternal);
  const setStart = new Int32Array(nTrees * nInternal);
  const leafValue = new Float64Array(nTrees * nLeafSlots);
  // Words 0 .. maxBin/32 stay zero: the "always left" set of padding nodes, whatever the bin.
  const bits: number[] = new Array((maxBin >>> 5) + 1).fill(0);
  const addSet = (nBins: number, right: (bin: number) => boolean): number => {
    const start = bits.length;
    for (let w = 0; w < Math.ceil(nBins / 32); w++) bits.push(0);
    for (let b = 0; b < nBins; b++) {
      if (right(b)) bits[start + (b >>> 5)] = (bits[start + (b >>> 5)]! | (1 << (b & 31))) >>> 0;
    }
    return start;
  };
  const numericSets = new Map<string, number>();

  const place = (t: number, n: number, h: number, d: number): void => {
    const f = e.featureIndex[n]!;
    if (f < 0) {
      // Padding: walk "always left" down to depth D (padding nodes keep the defaults).
      while (d < depth) {
        h = 2 * h + 1;
        d++;
      }
      leafValue[t * nLeafSlots + h - nInternal] = e.leafValue[n]!;
      return;
    }
    const i = t * nInternal + h;
    const defaultLeft = e.defaultLeft[n] === 1;
    feature[i] = f;
    if (e.isCategorical[n] === 0) {
      const c = cuts[f]!;
      const th = lowerBound(c, e.threshold[n]!);
      const key = `${f} ${th} ${defaultLeft ? 1 : 0}`;
      let start = numericSets.get(key);
      if (start === undefined) {
        // Bins th+1 … K go right; bin K + 1 is NaN.
        start = addSet(c.length + 2, (b) => (b === c.length + 1 ? !defaultLeft : b > th));
        numericSets.set(key, start);
      }
      setStart[i] = start;
    } else {
      const levels = nLevels[f]!;
      const goesLeft = new Uint8Array(levels);
      for (let c = e.catStart[n]!; c < e.catStart[n]! + e.catCount[n]!; c++) goesLeft[e.catCodes[c]!] = 1;
      // Bin 0 is missing; bin c + 1 is code c.
      setStart[i] = addSet(levels + 1, (b) => (b === 0 ? !defaultLeft : goesLeft[b - 1] === 0));
    }
    place(t, e.left[n]!, 2 * h + 1, d + 1);
    place(t, e.right[n]!, 2 * h + 2, d + 1);
  };
  for (let t = 0; t < nTrees; t++) place(t, e.treeRoot[t]!, 0, 0);

  return {
    nFeatures: nf,
    nOutputs: e.nOutputs,
    nTrees,
    depth,
    cuts,
    nLevels,
    feature,
    setStart,
    rightBits: Uint32Array.from(bits),
    leafValue,
    treeOutput: Int32Array.from(e.treeOutput),
    baseScore: Float64Array.from(e.baseScore),
  };
}

/** #{i : cuts[i] < v} for a non-NaN v. */
function lowerBound(cuts: Float64Array, v: number): number {
  let lo = 0;
  let hi = cuts.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (cuts[mid]! < v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

import type { Ensemble } from '../ensemble.js';

/**
 * The fast scorer: the ensemble rewritten so a tree walk is a fixed number of branch-free
 * steps over small integers, the way LightGBM and treelite score.
 *
 * - Inputs are binned once to the model's own thresholds: for a numeric feature with sorted
 *   distinct split thresholds c[0] < … < c[K-1], bin(v) = #{i : c[i] < v}, so
 *   `v <= c[t]` ⟺ `bin(v) <= t` exactly (no rounding: it is the same double comparison, done
 *   once per value instead of once per node). A categorical code becomes code + 1, with 0 for
 *   missing. Bins are uint16.
 * - Every tree is laid out as a perfect binary tree of the ensemble's depth D in heap order
 *   (children of i at 2i+1 and 2i+2). A leaf above depth D is pushed down through "always
 *   left" nodes, so every walk is exactly D steps: the loop's branch is predictable and the
 *   CPU overlaps the walks of consecutive rows instead of stalling on mispredicted splits.
 * - A step computes `right` without a branch: `(threshold - bin) >>> 31` is 1 when bin >
 *   threshold (numeric), OR-ed with a bit from a "goes right" bitset (categorical; numeric
 *   and padding nodes point at an all-zero region, categorical nodes have threshold 0xffff).
 * - Missing numeric values: each feature has two slots in a binned row, one where NaN bins
 *   above every threshold (goes right) and one where it bins to 0 (goes left); a node reads
 *   the slot of its default direction.
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
  /** Slots per binned row: feature f's NaN-right slot is 2f, its NaN-left slot 2f + 1. */
  width: number;
  /** Per feature: sorted distinct thresholds (numeric) or null (categorical). */
  cuts: (Float64Array | null)[];
  /** Per feature: number of levels (categorical) or 0. */
  nLevels: Int32Array;
  /** Per tree × (2^D − 1) internal nodes, heap order. */
  slot: Uint16Array;
  threshold: Uint16Array;
  wordBase: Int32Array;
  rightBits: Uint32Array;
  /** Per tree × 2^D leaves. */
  leafValue: Float64Array;
  treeOutput: Int32Array;
  baseScore: Float64Array;
}

/** Deeper ensembles would need 2^D nodes per tree; they are scored by the node walk instead. */
export const MAX_BINNED_DEPTH = 10;
const MAX_BIN = 0xfffe;
const NEVER_RIGHT = 0xffff;

/**
 * Builds the binned form, or null when the ensemble does not fit it (deeper than
 * MAX_BINNED_DEPTH, or a feature with more than 65,534 thresholds or levels).
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
  let maxBin = 0;
  for (let f = 0; f < nf; f++) {
    if (levelCounts[f]! > 0) {
      nLevels[f] = levelCounts[f]!;
      cuts.push(null);
      maxBin = Math.max(maxBin, levelCounts[f]!);
    } else {
      const c = Float64Array.from(thresholdSets[f]!).sort();
      cuts.push(c);
      maxBin = Math.max(maxBin, c.length);
    }
  }
  if (maxBin > MAX_BIN) return null;

  const nInternal = (1 << depth) - 1;
  const nLeafSlots = 1 << depth;
  const slot = new Uint16Array(nTrees * nInternal);
  const threshold = new Uint16Array(nTrees * nInternal).fill(NEVER_RIGHT);
  const wordBase = new Int32Array(nTrees * nInternal);
  const leafValue = new Float64Array(nTrees * nLeafSlots);
  // Words 0 .. zeroWords-1 stay zero: numeric and padding nodes read there whatever the bin.
  const zeroWords = (maxBin >>> 5) + 1;
  const bits: number[] = new Array(zeroWords).fill(0);

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
    slot[i] = 2 * f + (defaultLeft ? 1 : 0);
    if (e.isCategorical[n] === 0) {
      threshold[i] = lowerBound(cuts[f]!, e.threshold[n]!);
    } else {
      const levels = nLevels[f]!;
      const words = Math.ceil((levels + 1) / 32);
      const start = bits.length;
      for (let w = 0; w < words; w++) bits.push(0);
      const goesLeft = new Uint8Array(levels);
      for (let c = e.catStart[n]!; c < e.catStart[n]! + e.catCount[n]!; c++) goesLeft[e.catCodes[c]!] = 1;
      // Bin 0 is missing; bin c + 1 is code c.
      for (let b = 0; b <= levels; b++) {
        const right = b === 0 ? !defaultLeft : goesLeft[b - 1] === 0;
        if (right) bits[start + (b >>> 5)] = (bits[start + (b >>> 5)]! | (1 << (b & 31))) >>> 0;
      }
      wordBase[i] = start;
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
    width: 2 * nf,
    cuts,
    nLevels,
    slot,
    threshold,
    wordBase,
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

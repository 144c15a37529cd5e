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
 * - Trees are laid out one of two ways, both walked a fixed number of steps with no
 *   data-dependent branch (the CPU then overlaps the walks of consecutive rows instead of
 *   stalling on mispredicted splits):
 *   - 'perfect' (ensembles up to MAX_PERFECT_DEPTH deep): every tree a perfect binary tree of
 *     the ensemble's depth D in heap order (children of i at 2i+1 and 2i+2), a leaf above
 *     depth D pushed down through "always left" nodes (feature 0, the all-zero set). Child
 *     indices are computed, not loaded, and the D steps are unrolled.
 *   - 'linked' (any depth: lossguide trees, imported models): the real nodes, each with the
 *     index of its left child (the right child is the next node), and every leaf a node whose
 *     child is itself with the all-zero set, so a walk of the tree's depth ends on its leaf
 *     whatever path it took. Size grows with the nodes, not 2^D.
 *
 * The split rule itself is defined once, in `goesLeft` (predict.ts); kernel.test.ts checks
 * this encoding against it. Raw scores are summed in the reference order
 * (baseScore, then trees 0, 1, …), so they equal the node-walking scorer's bit for bit.
 */
export type BinnedEnsemble = PerfectEnsemble | LinkedEnsemble;

interface BinnedCommon {
  nFeatures: number;
  nOutputs: number;
  nTrees: number;
  /** The deepest leaf's depth over all trees. */
  depth: number;
  /** Per feature: sorted distinct thresholds (numeric) or null (categorical). */
  cuts: (Float64Array | null)[];
  /** Per feature: number of levels (categorical) or 0. */
  nLevels: Int32Array;
  /** Per node slot: the feature the node reads (0 for padding and leaves). */
  feature: Uint16Array;
  /** Per node slot: the first word of its "goes right" set in rightBits (0: the all-zero set). */
  setStart: Int32Array;
  rightBits: Uint32Array;
  treeOutput: Int32Array;
  baseScore: Float64Array;
}

export interface PerfectEnsemble extends BinnedCommon {
  layout: 'perfect';
  /** Node slots: per tree × (2^depth − 1) internal nodes, heap order. Leaves: per tree × 2^depth. */
  leafValue: Float64Array;
}

export interface LinkedEnsemble extends BinnedCommon {
  layout: 'linked';
  /** Node slots: every node of every tree, a tree's nodes contiguous from treeRoot[t]. */
  treeRoot: Int32Array;
  /** Per tree: its deepest leaf's depth (the number of steps a walk takes). */
  treeDepth: Int32Array;
  /** Per node: the index of its left child (the right child is the next index); a leaf: its own. */
  child: Int32Array;
  /** Per node: the leaf value (0 for internal nodes). */
  leafValue: Float64Array;
}

/** Deeper ensembles would need 2^D node slots per tree; they take the linked layout. */
export const MAX_PERFECT_DEPTH = 10;
const MAX_BIN = 0xffff;

/**
 * Builds the binned form, or null when the ensemble does not fit it (a feature with more
 * than 65,534 thresholds or 65,535 levels). `layout` forces one layout (tests and benches
 * compare them); by default 'perfect' when the ensemble is at most MAX_PERFECT_DEPTH deep.
 */
export function binEnsemble(
  e: Ensemble,
  levelCounts: ArrayLike<number>,
  layout?: BinnedEnsemble['layout'],
): BinnedEnsemble | null {
  const nf = levelCounts.length;
  const nTrees = e.treeRoot.length;
  // Depths, and the thresholds each numeric feature uses.
  const thresholdSets: Set<number>[] = Array.from({ length: nf }, () => new Set());
  const treeDepth = new Int32Array(nTrees);
  const stack: number[] = [];
  for (let t = 0; t < nTrees; t++) {
    stack.push(e.treeRoot[t]!, 0);
    while (stack.length > 0) {
      const d = stack.pop()!;
      const n = stack.pop()!;
      const f = e.featureIndex[n]!;
      if (f < 0) {
        if (d > treeDepth[t]!) treeDepth[t] = d;
        continue;
      }
      if (e.isCategorical[n] === 0) thresholdSets[f]!.add(e.threshold[n]!);
      stack.push(e.left[n]!, d + 1, e.right[n]!, d + 1);
    }
  }
  const depth = treeDepth.reduce((a, b) => Math.max(a, b), 0);
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

  const sets = new SplitSets(e, cuts, nLevels, maxBin);
  const common = { nFeatures: nf, nOutputs: e.nOutputs, nTrees, depth, cuts, nLevels };
  const tail = () => ({
    rightBits: Uint32Array.from(sets.bits),
    treeOutput: Int32Array.from(e.treeOutput),
    baseScore: Float64Array.from(e.baseScore),
  });
  if ((layout ?? (depth <= MAX_PERFECT_DEPTH ? 'perfect' : 'linked')) === 'perfect') {
    const { feature, setStart, leafValue } = perfectTrees(e, sets, depth);
    return { layout: 'perfect', ...common, feature, setStart, leafValue, ...tail() };
  }
  const linked = linkedTrees(e, sets);
  return { layout: 'linked', ...common, ...linked, treeDepth, ...tail() };
}

/** The "goes right" bitsets, numeric ones shared by (feature, threshold, NaN direction). */
class SplitSets {
  /** Words 0 .. maxBin/32 stay zero: the "always left" set of padding nodes and leaves, whatever the bin. */
  readonly bits: number[];
  private readonly numeric = new Map<string, number>();

  constructor(
    private readonly e: Ensemble,
    private readonly cuts: (Float64Array | null)[],
    private readonly nLevels: Int32Array,
    maxBin: number,
  ) {
    this.bits = new Array((maxBin >>> 5) + 1).fill(0);
  }

  /** The first word of internal node n's set. */
  of(n: number): number {
    const e = this.e;
    const f = e.featureIndex[n]!;
    const defaultLeft = e.defaultLeft[n] === 1;
    if (e.isCategorical[n] === 0) {
      const c = this.cuts[f]!;
      const th = lowerBound(c, e.threshold[n]!);
      const key = `${f} ${th} ${defaultLeft ? 1 : 0}`;
      let start = this.numeric.get(key);
      if (start === undefined) {
        // Bins th+1 … K go right; bin K + 1 is NaN.
        start = this.add(c.length + 2, (b) => (b === c.length + 1 ? !defaultLeft : b > th));
        this.numeric.set(key, start);
      }
      return start;
    }
    const levels = this.nLevels[f]!;
    const goesLeft = new Uint8Array(levels);
    for (let c = e.catStart[n]!; c < e.catStart[n]! + e.catCount[n]!; c++) goesLeft[e.catCodes[c]!] = 1;
    // Bin 0 is missing; bin c + 1 is code c.
    return this.add(levels + 1, (b) => (b === 0 ? !defaultLeft : goesLeft[b - 1] === 0));
  }

  private add(nBins: number, right: (bin: number) => boolean): number {
    const bits = this.bits;
    const start = bits.length;
    for (let w = 0; w < Math.ceil(nBins / 32); w++) bits.push(0);
    for (let b = 0; b < nBins; b++) {
      if (right(b)) bits[start + (b >>> 5)] = (bits[start + (b >>> 5)]! | (1 << (b & 31))) >>> 0;
    }
    return start;
  }
}

function perfectTrees(e: Ensemble, sets: SplitSets, depth: number) {
  const nTrees = e.treeRoot.length;
  const nInternal = (1 << depth) - 1;
  const nLeafSlots = 1 << depth;
  const feature = new Uint16Array(nTrees * nInternal);
  const setStart = new Int32Array(nTrees * nInternal);
  const leafValue = new Float64Array(nTrees * nLeafSlots);
  const place = (t: number, n: number, h: number, d: number): void => {
    if (e.featureIndex[n]! < 0) {
      // Padding: walk "always left" down to depth D (padding nodes keep the defaults).
      while (d < depth) {
        h = 2 * h + 1;
        d++;
      }
      leafValue[t * nLeafSlots + h - nInternal] = e.leafValue[n]!;
      return;
    }
    const i = t * nInternal + h;
    feature[i] = e.featureIndex[n]!;
    setStart[i] = sets.of(n);
    place(t, e.left[n]!, 2 * h + 1, d + 1);
    place(t, e.right[n]!, 2 * h + 2, d + 1);
  };
  for (let t = 0; t < nTrees; t++) place(t, e.treeRoot[t]!, 0, 0);
  return { feature, setStart, leafValue };
}

function linkedTrees(e: Ensemble, sets: SplitSets) {
  const nTrees = e.treeRoot.length;
  // Every node of every tree once (trees do not share nodes), so the slot count is the node count.
  let nNodes = 0;
  const stack: number[] = [];
  for (let t = 0; t < nTrees; t++) {
    stack.push(e.treeRoot[t]!);
    while (stack.length > 0) {
      const n = stack.pop()!;
      nNodes++;
      if (e.featureIndex[n]! >= 0) stack.push(e.left[n]!, e.right[n]!);
    }
  }
  const feature = new Uint16Array(nNodes);
  const setStart = new Int32Array(nNodes);
  const child = new Int32Array(nNodes);
  const leafValue = new Float64Array(nNodes);
  const treeRoot = new Int32Array(nTrees);
  let next = 0;
  // Breadth first: siblings take adjacent slots, and the top levels every walk reads share cache lines.
  const queue: number[] = [];
  for (let t = 0; t < nTrees; t++) {
    treeRoot[t] = next;
    queue.length = 0;
    queue.push(e.treeRoot[t]!, next++);
    for (let q = 0; q < queue.length; q += 2) {
      const n = queue[q]!;
      const i = queue[q + 1]!;
      if (e.featureIndex[n]! < 0) {
        child[i] = i;
        leafValue[i] = e.leafValue[n]!;
        continue;
      }
      feature[i] = e.featureIndex[n]!;
      setStart[i] = sets.of(n);
      child[i] = next;
      queue.push(e.left[n]!, next++, e.right[n]!, next++);
    }
  }
  return { feature, setStart, child, leafValue, treeRoot };
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

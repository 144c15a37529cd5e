import type { BinnedMatrix } from './binning.js';
import type { FitPhaseSeconds } from './fit-phases.js';
import { BIN_DOUBLES, subtractHistogram } from './histogram.js';
import { findBestSplitForFeature, leafOutput, SplitCandidate, type SplitRules } from './split.js';
import type { TrainingPool } from './worker-pool.js';

/**
 * One tree as the trainer builds it, in bin space: node arrays indexed by node id (root 0),
 * plus for every internal node a 256-entry table saying which bins go left, so training,
 * out-of-bag and validation rows are routed by bins alone.
 */
export interface BinTree {
  nNodes: number;
  featureIndex: Int32Array;
  /** numeric: last bin that goes left (-1: only missing goes left). */
  thresholdBin: Int32Array;
  defaultLeft: Uint8Array;
  isCategorical: Uint8Array;
  left: Int32Array;
  right: Int32Array;
  /** Leaf value, already shrunk by the learning rate. */
  leafValue: Float64Array;
  cover: Float64Array;
  gain: Float64Array;
  /** categorical: bins that go left. */
  catBins: number[][];
  /** nNodes × 256: 1 when a row in that bin goes left at that node. */
  goLeft: Uint8Array;
  /** leaf id of each leaf node's row segment (see leafStart / leafCount), -1 for internal. */
  leafOf: Int32Array;
}

export interface GrowOptions extends SplitRules {
  numLeaves: number;
  maxDepth: number;
  learningRate: number;
}

/**
 * Leaf-wise (best-first) growth over the row-index partition `rows`: each leaf owns a
 * contiguous segment, split in place (stable, so rows stay in ascending order and the
 * histogram kernel reads memory mostly forwards). Each split builds the histogram of the
 * smaller child only; the larger child's is the parent's minus it. All buffers are allocated
 * once per training run.
 */
export class TreeGrower {
  readonly leafStart: Int32Array;
  readonly leafCount: Int32Array;
  private readonly leafSlot: Int32Array;
  private readonly leafDepth: Int32Array;
  private readonly leafNode: Int32Array;
  private readonly leafG: Float64Array;
  private readonly leafH: Float64Array;
  private readonly best: SplitCandidate[];
  private readonly histSize: number;
  nLeaves = 0;

  constructor(
    private readonly data: BinnedMatrix,
    private readonly hist: Float64Array,
    private readonly pool: TrainingPool,
    private readonly opts: GrowOptions,
    private readonly phases: FitPhaseSeconds,
  ) {
    const L = opts.numLeaves;
    this.leafStart = pool.leafStart;
    this.leafCount = pool.leafCount;
    this.leafSlot = new Int32Array(L);
    this.leafDepth = new Int32Array(L);
    this.leafNode = new Int32Array(L);
    this.leafG = new Float64Array(L);
    this.leafH = new Float64Array(L);
    this.best = Array.from({ length: L }, () => new SplitCandidate());
    this.histSize = BIN_DOUBLES * data.binOffset[data.nFeatures];
  }

  /** Histogram doubles needed for `numLeaves` leaves of this data. */
  static histDoubles(data: BinnedMatrix, numLeaves: number): number {
    return BIN_DOUBLES * data.binOffset[data.nFeatures] * numLeaves;
  }

  /**
   * Grows one tree over rows[0, nRows) with the gradients already in the pool's buffer.
   * `featureAllowed[f]` = 0 keeps feature f out of this tree.
   */
  grow(nRows: number, featureAllowed: Uint8Array): BinTree {
    const o = this.opts;
    const maxNodes = 2 * o.numLeaves - 1;
    const tree: BinTree = {
      nNodes: 1,
      featureIndex: new Int32Array(maxNodes).fill(-1),
      thresholdBin: new Int32Array(maxNodes),
      defaultLeft: new Uint8Array(maxNodes),
      isCategorical: new Uint8Array(maxNodes),
      left: new Int32Array(maxNodes).fill(-1),
      right: new Int32Array(maxNodes).fill(-1),
      leafValue: new Float64Array(maxNodes),
      cover: new Float64Array(maxNodes),
      gain: new Float64Array(maxNodes),
      catBins: [],
      goLeft: new Uint8Array(maxNodes * 256),
      leafOf: new Int32Array(maxNodes).fill(-1),
    };
    this.nLeaves = 1;
    this.leafStart[0] = 0;
    this.leafCount[0] = nRows;
    this.leafSlot[0] = 0;
    this.leafDepth[0] = 0;
    this.leafNode[0] = 0;
    let t0 = performance.now();
    this.pool.buildHistogram(0, nRows, 0);
    this.phases.histograms += (performance.now() - t0) / 1000;
    // The root's totals are any one feature's bin sums (every row sits in one bin of feature 0).
    let sumG = 0;
    let sumH = 0;
    for (let i = 0, e = BIN_DOUBLES * this.data.binOffset[1]; i < e; i += BIN_DOUBLES) {
      sumG += this.hist[i];
      sumH += this.hist[i + 1];
    }
    this.leafG[0] = sumG;
    this.leafH[0] = sumH;
    tree.cover[0] = sumH;
    t0 = performance.now();
    this.findBest(0, featureAllowed);
    this.phases.split_search += (performance.now() - t0) / 1000;

    while (this.nLeaves < o.numLeaves) {
      let l = -1;
      let g = 0;
      for (let i = 0; i < this.nLeaves; i++) {
        const c = this.best[i];
        if (c.feature >= 0 && (l < 0 || c.gain > g)) {
          l = i;
          g = c.gain;
        }
      }
      if (l < 0) break;
      this.split(l, tree, featureAllowed);
    }
    for (let i = 0; i < this.nLeaves; i++) {
      const n = this.leafNode[i];
      tree.leafValue[n] = leafOutput(this.leafG[i], this.leafH[i], o.lambdaL1, o.lambdaL2) * o.learningRate;
      tree.leafOf[n] = i;
    }
    return tree;
  }

  private canSplit(leaf: number): boolean {
    const o = this.opts;
    if (o.maxDepth > 0 && this.leafDepth[leaf] >= o.maxDepth) return false;
    return this.leafCount[leaf] >= 2 * o.minDataInLeaf && this.leafH[leaf] >= 2 * o.minSumHessianInLeaf;
  }

  private findBest(leaf: number, featureAllowed: Uint8Array): void {
    const best = this.best[leaf];
    best.reset();
    if (!this.canSplit(leaf)) return;
    const d = this.data;
    const base = this.leafSlot[leaf] * this.histSize;
    const G = this.leafG[leaf];
    const H = this.leafH[leaf];
    const C = this.leafCount[leaf];
    for (let f = 0; f < d.nFeatures; f++) {
      if (!featureAllowed[f]) continue;
      findBestSplitForFeature(
        this.hist,
        base + BIN_DOUBLES * d.binOffset[f],
        f,
        d.mappers[f],
        G,
        H,
        C,
        this.opts,
        best,
      );
    }
  }

  private split(l: number, tree: BinTree, featureAllowed: Uint8Array): void {
    const c = this.best[l];
    const d = this.data;
    const node = this.leafNode[l];
    const f = c.feature;
    tree.featureIndex[node] = f;
    tree.gain[node] = c.gain;
    tree.defaultLeft[node] = c.defaultLeft ? 1 : 0;
    tree.isCategorical[node] = c.isCategorical ? 1 : 0;
    tree.thresholdBin[node] = c.threshold;
    const table = tree.goLeft.subarray(node * 256, node * 256 + 256);
    const missingBin = d.mappers[f].missingBin;
    if (c.isCategorical) {
      for (const b of c.catBins) table[b] = 1;
      tree.catBins[node] = c.catBins;
    } else {
      for (let b = 0; b <= c.threshold; b++) table[b] = 1;
      table[missingBin] = c.defaultLeft ? 1 : 0;
    }
    const start = this.leafStart[l];
    const count = this.leafCount[l];
    let t0 = performance.now();
    const nLeft = this.pool.partition(start, count, f, table);
    const t1 = performance.now();
    this.phases.partition += (t1 - t0) / 1000;
    t0 = t1;

    const r = this.nLeaves++;
    const ln = tree.nNodes++;
    const rn = tree.nNodes++;
    tree.left[node] = ln;
    tree.right[node] = rn;
    tree.cover[ln] = c.leftH;
    tree.cover[rn] = c.rightH;
    const depth = this.leafDepth[l] + 1;
    this.leafStart[r] = start + nLeft;
    this.leafCount[r] = count - nLeft;
    this.leafCount[l] = nLeft;
    this.leafDepth[l] = depth;
    this.leafDepth[r] = depth;
    this.leafNode[l] = ln;
    this.leafNode[r] = rn;
    this.leafG[l] = c.leftG;
    this.leafH[l] = c.leftH;
    this.leafG[r] = c.rightG;
    this.leafH[r] = c.rightH;

    // Children that cannot split need no histogram, and then neither does their sibling's
    // subtraction; skip the work entirely when both are final.
    const leftSplittable = this.canSplit(l);
    const rightSplittable = this.canSplit(r);
    const parentSlot = this.leafSlot[l];
    const freeSlot = r;
    if (leftSplittable || rightSplittable) {
      const hs = this.histSize;
      if (nLeft <= count - nLeft) {
        // Left is smaller: build it in the free slot, parent slot becomes the right child.
        this.pool.buildHistogram(start, start + nLeft, freeSlot * hs);
        subtractHistogram(hs, this.hist, parentSlot * hs, freeSlot * hs);
        this.leafSlot[l] = freeSlot;
        this.leafSlot[r] = parentSlot;
      } else {
        this.pool.buildHistogram(start + nLeft, start + count, freeSlot * hs);
        subtractHistogram(hs, this.hist, parentSlot * hs, freeSlot * hs);
        this.leafSlot[l] = parentSlot;
        this.leafSlot[r] = freeSlot;
      }
    } else {
      this.leafSlot[r] = freeSlot;
    }
    const t2 = performance.now();
    this.phases.histograms += (t2 - t0) / 1000;
    this.findBest(l, featureAllowed);
    this.findBest(r, featureAllowed);
    this.phases.split_search += (performance.now() - t2) / 1000;
  }
}

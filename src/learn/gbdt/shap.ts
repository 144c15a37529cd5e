import type { CompiledEnsemble, ScoringColumn } from './predict.js';
import { BLOCK_ROWS, fillBlock, goesLeft } from './predict.js';

/**
 * Exact TreeSHAP (Lundberg, Erion & Lee 2018, "Consistent individualized feature attribution
 * for tree ensembles", Algorithm 2): per-row feature contributions in O(leaves × depth²) per
 * tree instead of enumerating feature subsets.
 *
 * The value of a feature subset S is the tree's conditional expectation: at a node splitting
 * on a feature in S the row follows its own branch, otherwise both branches are averaged,
 * weighted by `cover` (the training hessian that reached each child). Categorical nodes need
 * nothing special: the algorithm only asks which child the row takes (`goesLeft`, the same
 * rule the scorer uses, missing values included).
 *
 * Child weights are cover[child] / (cover[left] + cover[right]) rather than / cover[node], so
 * contributions sum to the raw score exactly (up to rounding) even if a trainer's covers are
 * not perfectly additive.
 *
 * Output layout, as XGBoost's pred_contribs: row-major nRows × nOutputs × (nFeatures + 1);
 * entry nFeatures of each (row, output) is the bias (the expected raw score, baseScore
 * included), so Σ contributions + bias = raw score.
 */

/** Per-ensemble tables SHAP needs, computed once per model. */
export interface ShapTables {
  /** cover-weighted mean leaf value under each node. */
  nodeMean: Float64Array;
  /** Weight of each child of a node: share of cover going left (right share = 1 − this). */
  leftShare: Float64Array;
  /** Expected raw score per output: baseScore + Σ over trees of the root's mean. */
  bias: Float64Array;
  maxDepth: number;
}

export function buildShapTables(c: CompiledEnsemble): ShapTables {
  const e = c.ensemble;
  const nNodes = e.featureIndex.length;
  const nodeMean = new Float64Array(nNodes);
  const leftShare = new Float64Array(nNodes);
  let maxDepth = 0;
  const visit = (node: number, depth: number): number => {
    if (depth > maxDepth) maxDepth = depth;
    if (e.featureIndex[node]! < 0) {
      nodeMean[node] = e.leafValue[node]!;
      return nodeMean[node]!;
    }
    const l = e.left[node]!;
    const r = e.right[node]!;
    const ml = visit(l, depth + 1);
    const mr = visit(r, depth + 1);
    const total = e.cover[l]! + e.cover[r]!;
    // A zero-cover split (only possible in hand-built trees) is weighted half and half.
    const share = total > 0 ? e.cover[l]! / total : 0.5;
    leftShare[node] = share;
    nodeMean[node] = share * ml + (1 - share) * mr;
    return nodeMean[node]!;
  };
  const bias = Float64Array.from(e.baseScore);
  for (let t = 0; t < c.nTrees; t++) {
    const root = e.treeRoot[t]!;
    bias[e.treeOutput[t]!]! += visit(root, 0);
  }
  return { nodeMean, leftShare, bias, maxDepth };
}

/** Scratch path storage for one recursion, sized for the deepest tree. */
class ShapPath {
  readonly feature: Int32Array;
  readonly zero: Float64Array;
  readonly one: Float64Array;
  readonly weight: Float64Array;
  constructor(maxDepth: number) {
    const size = ((maxDepth + 2) * (maxDepth + 3)) / 2 + 1;
    this.feature = new Int32Array(size);
    this.zero = new Float64Array(size);
    this.one = new Float64Array(size);
    this.weight = new Float64Array(size);
  }

  extend(off: number, depth: number, zeroFraction: number, oneFraction: number, feature: number): void {
    const { zero, one, weight } = this;
    this.feature[off + depth] = feature;
    zero[off + depth] = zeroFraction;
    one[off + depth] = oneFraction;
    weight[off + depth] = depth === 0 ? 1 : 0;
    for (let i = depth - 1; i >= 0; i--) {
      weight[off + i + 1]! += (oneFraction * weight[off + i]! * (i + 1)) / (depth + 1);
      weight[off + i] = (zeroFraction * weight[off + i]! * (depth - i)) / (depth + 1);
    }
  }

  unwind(off: number, depth: number, pathIndex: number): void {
    const { feature, zero, one, weight } = this;
    const oneFraction = one[off + pathIndex]!;
    const zeroFraction = zero[off + pathIndex]!;
    let nextOnePortion = weight[off + depth]!;
    for (let i = depth - 1; i >= 0; i--) {
      if (oneFraction !== 0) {
        const tmp = weight[off + i]!;
        weight[off + i] = (nextOnePortion * (depth + 1)) / ((i + 1) * oneFraction);
        nextOnePortion = tmp - (weight[off + i]! * zeroFraction * (depth - i)) / (depth + 1);
      } else {
        weight[off + i] = (weight[off + i]! * (depth + 1)) / (zeroFraction * (depth - i));
      }
    }
    for (let i = pathIndex; i < depth; i++) {
      feature[off + i] = feature[off + i + 1]!;
      zero[off + i] = zero[off + i + 1]!;
      one[off + i] = one[off + i + 1]!;
    }
  }

  /** Σ of the path weights with element pathIndex removed, without modifying the path. */
  unwoundSum(off: number, depth: number, pathIndex: number): number {
    const { zero, one, weight } = this;
    const oneFraction = one[off + pathIndex]!;
    const zeroFraction = zero[off + pathIndex]!;
    let nextOnePortion = weight[off + depth]!;
    let total = 0;
    for (let i = depth - 1; i >= 0; i--) {
      if (oneFraction !== 0) {
        const tmp = (nextOnePortion * (depth + 1)) / ((i + 1) * oneFraction);
        total += tmp;
        nextOnePortion = weight[off + i]! - (tmp * zeroFraction * (depth - i)) / (depth + 1);
      } else if (zeroFraction !== 0) {
        total += weight[off + i]! / zeroFraction / ((depth - i) / (depth + 1));
      }
    }
    return total;
  }

  copy(from: number, to: number, count: number): void {
    this.feature.copyWithin(to, from, from + count);
    this.zero.copyWithin(to, from, from + count);
    this.one.copyWithin(to, from, from + count);
    this.weight.copyWithin(to, from, from + count);
  }
}

/**
 * Adds one row's contributions for every tree into `phi` (nOutputs × (nFeatures + 1), bias
 * slots included). `x` holds the row at `base` in the scorer's dense layout.
 */
function shapRowInto(
  c: CompiledEnsemble,
  tables: ShapTables,
  path: ShapPath,
  x: Float64Array,
  base: number,
  phi: Float64Array,
  phiOff: number,
): void {
  const e = c.ensemble;
  const stride = c.nFeatures + 1;
  const { featureIndex, left, right, leafValue } = e;
  const { leftShare } = tables;
  let outBase = 0;

  const recurse = (
    node: number,
    depth: number,
    parentOff: number,
    parentZero: number,
    parentOne: number,
    parentFeature: number,
  ): void => {
    const off = parentOff + depth + 1;
    if (depth > 0) path.copy(parentOff, off, depth);
    path.extend(off, depth, parentZero, parentOne, parentFeature);
    const split = featureIndex[node]!;
    if (split < 0) {
      const value = leafValue[node]!;
      for (let i = 1; i <= depth; i++) {
        const w = path.unwoundSum(off, depth, i);
        phi[outBase + path.feature[off + i]!]! += w * (path.one[off + i]! - path.zero[off + i]!) * value;
      }
      return;
    }
    const wentLeft = goesLeft(c, node, x[base + split]!);
    const hot = wentLeft ? left[node]! : right[node]!;
    const cold = wentLeft ? right[node]! : left[node]!;
    const hotShare = wentLeft ? leftShare[node]! : 1 - leftShare[node]!;
    let incomingZero = 1;
    let incomingOne = 1;
    // A feature split on again further down: undo its earlier path element and merge.
    let pathIndex = 0;
    for (; pathIndex <= depth; pathIndex++) if (path.feature[off + pathIndex] === split) break;
    if (pathIndex !== depth + 1) {
      incomingZero = path.zero[off + pathIndex]!;
      incomingOne = path.one[off + pathIndex]!;
      path.unwind(off, depth, pathIndex);
      depth -= 1;
    }
    recurse(hot, depth + 1, off, hotShare * incomingZero, incomingOne, split);
    recurse(cold, depth + 1, off, (1 - hotShare) * incomingZero, 0, split);
  };

  for (let t = 0; t < c.nTrees; t++) {
    outBase = phiOff + e.treeOutput[t]! * stride;
    // The root's path element (feature -1) never matches a split feature.
    recurse(e.treeRoot[t]!, 0, -1, 1, 1, -1);
  }
  const k = e.nOutputs;
  for (let o = 0; o < k; o++) phi[phiOff + o * stride + c.nFeatures]! += tables.bias[o]!;
}

/** SHAP contributions for one dense row (model feature order); returns nOutputs × (nFeatures + 1). */
export function treeShapRow(c: CompiledEnsemble, tables: ShapTables, row: Float64Array): Float64Array {
  const phi = new Float64Array(c.ensemble.nOutputs * (c.nFeatures + 1));
  shapRowInto(c, tables, new ShapPath(tables.maxDepth), row, 0, phi, 0);
  return phi;
}

/** SHAP contributions for every row of the columns: nRows × nOutputs × (nFeatures + 1). */
export function treeShap(
  c: CompiledEnsemble,
  tables: ShapTables,
  columns: readonly ScoringColumn[],
  nRows: number,
): Float64Array {
  const nf = c.nFeatures;
  const rowSize = c.ensemble.nOutputs * (nf + 1);
  const phi = new Float64Array(nRows * rowSize);
  const path = new ShapPath(tables.maxDepth);
  const block = new Float64Array(Math.min(BLOCK_ROWS, Math.max(nRows, 1)) * nf);
  for (let r0 = 0; r0 < nRows; r0 += BLOCK_ROWS) {
    const r1 = Math.min(nRows, r0 + BLOCK_ROWS);
    fillBlock(columns, r0, r1, block);
    for (let r = r0; r < r1; r++) shapRowInto(c, tables, path, block, (r - r0) * nf, phi, r * rowSize);
  }
  return phi;
}

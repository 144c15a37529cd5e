import type { Ensemble } from './ensemble.js';

/**
 * Tight scoring loops over the flat `Ensemble` arrays (see ensemble.ts for the split rules).
 *
 * These are the reference scorers; GbdtModel scores through the faster kernel in predict/
 * whenever the ensemble fits it. Batch scoring here copies a block of rows into one dense row-major Float64Array (categorical
 * codes as numbers, missing code = -1) and walks every tree over the whole block before
 * moving to the next tree: a tree's nodes then stay in cache while the block's rows are
 * scored, and the inner loop reads a single monomorphic array whatever the column types.
 *
 * Every path (batch, single row, SHAP's expected value) sums a row's raw score in the same
 * order — baseScore[k] first, then trees 0, 1, … — so the results agree bit for bit.
 */

/** An ensemble with categorical sets turned into bitsets for O(1) membership tests. */
export interface CompiledEnsemble {
  ensemble: Ensemble;
  nFeatures: number;
  nTrees: number;
  /** Per node: first word of its category bitset in `catBits` (-1 for numeric nodes / leaves). */
  catBitStart: Int32Array;
  catBits: Uint32Array;
}

/**
 * Builds the bitsets. `levelCounts[f]` is the number of levels of categorical feature f (0 for
 * numeric features); scoring inputs must hold codes in [-1, levelCounts[f]).
 */
export function compileEnsemble(ensemble: Ensemble, levelCounts: ArrayLike<number>): CompiledEnsemble {
  const nNodes = ensemble.featureIndex.length;
  const catBitStart = new Int32Array(nNodes).fill(-1);
  let words = 0;
  for (let n = 0; n < nNodes; n++) {
    if (ensemble.featureIndex[n]! >= 0 && ensemble.isCategorical[n] === 1) {
      catBitStart[n] = words;
      words += Math.max(1, Math.ceil(levelCounts[ensemble.featureIndex[n]!]! / 32));
    }
  }
  const catBits = new Uint32Array(words);
  for (let n = 0; n < nNodes; n++) {
    const start = catBitStart[n]!;
    if (start < 0) continue;
    const from = ensemble.catStart[n]!;
    const to = from + ensemble.catCount[n]!;
    for (let i = from; i < to; i++) {
      const code = ensemble.catCodes[i]!;
      catBits[start + (code >>> 5)]! |= 1 << (code & 31);
    }
  }
  return {
    ensemble,
    nFeatures: levelCounts.length,
    nTrees: ensemble.treeRoot.length,
    catBitStart,
    catBits,
  };
}

/**
 * THE split rule: whether a row whose value for node `node`'s feature is `v` goes left.
 * Numeric: v <= threshold, NaN follows defaultLeft. Categorical: the code's bit in the node's
 * set; -1 (missing or unseen level) and NaN follow defaultLeft. Every other scorer is this
 * rule: findLeaf and TreeSHAP call it, and the fast kernel (predict/binned.ts, kernel.ts) is
 * an encoding of it that predict/kernel.test.ts checks against it, probe value by probe value
 * on single splits and row by row on random and trained ensembles.
 */
export function goesLeft(c: CompiledEnsemble, node: number, v: number): boolean {
  const e = c.ensemble;
  if (e.isCategorical[node] === 0) return v <= e.threshold[node]! || (v !== v && e.defaultLeft[node] === 1);
  if (v >= 0) {
    const code = v | 0;
    return ((c.catBits[c.catBitStart[node]! + (code >>> 5)]! >>> (code & 31)) & 1) === 1;
  }
  return e.defaultLeft[node] === 1;
}

/**
 * The leaf a row reaches in the tree rooted at `node`. `x` holds the row's feature values
 * starting at `base` (row-major, one entry per feature, categorical codes as numbers).
 */
export function findLeaf(c: CompiledEnsemble, node: number, x: Float64Array, base: number): number {
  const { featureIndex, left, right } = c.ensemble;
  for (;;) {
    const f = featureIndex[node]!;
    if (f < 0) return node;
    node = goesLeft(c, node, x[base + f]!) ? left[node]! : right[node]!;
  }
}

/**
 * One feature column as the scorer reads it. Categorical columns may carry `remap`, which turns
 * the matrix's codes into the model's codes (-1 for levels the model never saw).
 */
export type ScoringColumn =
  | { kind: 'numeric'; values: Float64Array | Float32Array }
  | { kind: 'categorical'; codes: Int32Array; remap?: Int32Array };

/** Rows per block: 1024 rows × a few dozen features keeps the block in L2 next to a tree. */
export const BLOCK_ROWS = 1024;

/** Copies rows [r0, r1) of the columns into `block` (row-major, nFeatures per row). */
export function fillBlock(
  columns: readonly ScoringColumn[],
  r0: number,
  r1: number,
  block: Float64Array,
): void {
  const nf = columns.length;
  for (let j = 0; j < nf; j++) {
    const col = columns[j]!;
    if (col.kind === 'numeric') {
      const values = col.values;
      for (let r = r0, o = j; r < r1; r++, o += nf) block[o] = values[r]!;
    } else if (col.remap) {
      const { codes, remap } = col;
      const nLevels = remap.length;
      for (let r = r0, o = j; r < r1; r++, o += nf) {
        const code = codes[r]!;
        block[o] = code >= 0 && code < nLevels ? remap[code]! : -1;
      }
    } else {
      const codes = col.codes;
      for (let r = r0, o = j; r < r1; r++, o += nf) block[o] = codes[r]!;
    }
  }
}

/**
 * Raw scores for every row by walking nodes: row-major nRows × nOutputs. `columns` are in the
 * model's feature order. The reference the fast kernel is tested against, and the scorer of
 * ensembles too deep for the binned form.
 */
export function predictRawColumns(
  c: CompiledEnsemble,
  columns: readonly ScoringColumn[],
  nRows: number,
): Float64Array {
  const e = c.ensemble;
  const k = e.nOutputs;
  const nf = c.nFeatures;
  const out = new Float64Array(nRows * k);
  const block = new Float64Array(Math.min(BLOCK_ROWS, Math.max(nRows, 1)) * nf);
  const { treeRoot, treeOutput, leafValue } = e;
  for (let r0 = 0; r0 < nRows; r0 += BLOCK_ROWS) {
    const r1 = Math.min(nRows, r0 + BLOCK_ROWS);
    fillBlock(columns, r0, r1, block);
    for (let r = r0; r < r1; r++) {
      for (let o = 0; o < k; o++) out[r * k + o] = e.baseScore[o]!;
    }
    for (let t = 0; t < c.nTrees; t++) {
      const root = treeRoot[t]!;
      const o = treeOutput[t]!;
      for (let r = r0, base = 0; r < r1; r++, base += nf) {
        const node = findLeaf(c, root, block, base);
        out[r * k + o]! += leafValue[node]!;
      }
    }
  }
  return out;
}

/**
 * Raw scores of one row given as a dense Float64Array in the model's feature order (categorical
 * codes as numbers, -1 missing); writes nOutputs values into `out`. No allocation, so a server
 * can score single requests without garbage.
 */
export function predictRawRow(c: CompiledEnsemble, row: Float64Array, out: Float64Array): void {
  const e = c.ensemble;
  const k = e.nOutputs;
  for (let o = 0; o < k; o++) out[o] = e.baseScore[o]!;
  const { treeRoot, treeOutput, leafValue } = e;
  for (let t = 0; t < c.nTrees; t++) {
    out[treeOutput[t]!]! += leafValue[findLeaf(c, treeRoot[t]!, row, 0)]!;
  }
}

/** Applies the link function in place: logistic for binary, softmax per row for multiclass. */
export function applyLink(
  raw: Float64Array,
  link: 'logistic' | 'softmax' | 'identity',
  k: number,
): Float64Array {
  if (link === 'logistic') {
    for (let i = 0; i < raw.length; i++) raw[i] = 1 / (1 + Math.exp(-raw[i]!));
  } else if (link === 'softmax') {
    for (let r = 0; r < raw.length; r += k) {
      let max = Number.NEGATIVE_INFINITY;
      for (let o = 0; o < k; o++) if (raw[r + o]! > max) max = raw[r + o]!;
      let sum = 0;
      for (let o = 0; o < k; o++) {
        const e = Math.exp(raw[r + o]! - max);
        raw[r + o] = e;
        sum += e;
      }
      for (let o = 0; o < k; o++) raw[r + o]! /= sum;
    }
  }
  return raw;
}

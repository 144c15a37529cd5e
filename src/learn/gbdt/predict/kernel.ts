import type { BinnedEnsemble } from './binned.js';

/**
 * The scoring kernel, generated per ensemble as JavaScript source: the tree depth, row width
 * and output count are baked in and the D steps of a walk are unrolled for LANES rows that
 * walk side by side. The source is self-contained (it closes over nothing but its parameter
 * object), so the worker threads of parallel.ts compile the very same text: one definition of
 * binning and scoring for the calling thread and the workers.
 *
 * Measured on the 200-tree, 255-leaf flights model (CPU time, one thread, 2-core box under
 * load 8–10; see BENCHMARKS.md): node walk 36–40k rows/s; binned perfect-tree walk, one row
 * at a time 49–56k; the same with 8 rows side by side 83–98k; generated and unrolled 4 / 8 /
 * 16 lanes 100–112k (the lanes count barely matters past 4; 8 is kept).
 *
 * One row has no neighbours to overlap with, but its trees are independent: `predictRow` walks
 * 8 trees side by side. `npx tsx bench/gbdt-kernel.ts` (2026-12-03, CPU time, load 5–8): one
 * padded tree at a time 13.3 µs a row; 8 trees side by side 5.1 µs. A walk of the real,
 * unpadded trees over raw double thresholds (no binning; children adjacent, one compare a
 * step) took 27.2 µs: its data-dependent branches mispredict, the padded walk has none.
 */
export const LANES = 8;
/** Rows binned and scored together: 512 rows × 2 slots × a few features stay in L1. */
export const KERNEL_BLOCK_ROWS = 512;

/** What the kernel source reads from its parameter object (all plain or shared typed arrays). */
export interface KernelData {
  /** Per internal node (tree-major, heap order): [(threshold << 16) | slot, wordBase]. */
  nodes: Int32Array;
  rightBits: Uint32Array;
  leafValue: Float64Array;
  treeOutput: Int32Array;
  baseScore: Float64Array;
  /** Numeric features' sorted thresholds, concatenated; feature f's are cuts[cutStart[f] .. cutStart[f+1]). */
  cuts: Float64Array;
  cutStart: Int32Array;
  /** Per feature: levels (categorical) or -1 (numeric). */
  nLevels: Int32Array;
}

/**
 * A kernel column: numeric values, or categorical codes already in the model's level table
 * (-1 or anything outside [0, levels) = missing).
 */
export type KernelColumn = Float64Array | Float32Array | Int32Array;

export interface ScoringKernel {
  /** Raw scores of rows [r0, r1) into out[(r − r0) · k …] (baseScore included). */
  predictRange(columns: readonly KernelColumn[], r0: number, r1: number, out: Float64Array): void;
  /** One dense row (model order; categorical codes as numbers, -1/NaN missing) → out[0 .. k). */
  predictRow(row: ArrayLike<number>, out: Float64Array): void;
}

export function kernelData(b: BinnedEnsemble): KernelData {
  const nInternal = (1 << b.depth) - 1;
  const nodes = new Int32Array(b.nTrees * nInternal * 2);
  for (let i = 0; i < b.nTrees * nInternal; i++) {
    nodes[2 * i] = (b.threshold[i]! << 16) | b.slot[i]!;
    nodes[2 * i + 1] = b.wordBase[i]!;
  }
  const cutStart = new Int32Array(b.nFeatures + 1);
  for (let f = 0; f < b.nFeatures; f++) cutStart[f + 1] = cutStart[f]! + (b.cuts[f]?.length ?? 0);
  const cuts = new Float64Array(cutStart[b.nFeatures]!);
  for (let f = 0; f < b.nFeatures; f++) if (b.cuts[f]) cuts.set(b.cuts[f]!, cutStart[f]!);
  return {
    nodes,
    rightBits: b.rightBits,
    leafValue: b.leafValue,
    treeOutput: b.treeOutput,
    baseScore: b.baseScore,
    cuts,
    cutStart,
    nLevels: Int32Array.from(b.nLevels, (n, f) => (b.cuts[f] ? -1 : n)),
  };
}

/** The kernel's source: `new Function('P', source)(data)` returns a ScoringKernel. */
export function kernelSource(b: BinnedEnsemble): string {
  const D = b.depth;
  const nInternal = (1 << D) - 1;
  const nLeafSlots = 1 << D;
  const w = b.width;
  const k = b.nOutputs;
  // One step of one lane: the split rule in binned form (see binned.ts).
  const step = (i: string, rowBase: string) =>
    `q = nb + 2 * ${i}; p = nodes[q]; bin = bins[${rowBase} + (p & 0xffff)]; ` +
    `${i} = 2 * ${i} + 1 + ((((p >>> 16) - bin) >>> 31) | ((bits[nodes[q + 1] + (bin >>> 5)] >>> (bin & 31)) & 1));`;
  const lanes = Array.from({ length: LANES }, (_, j) => j);
  let walk = '';
  for (let d = 0; d < D; d++) for (const j of lanes) walk += `      ${step(`i${j}`, `rb + ${j * w}`)}\n`;
  // The one-row walk: lane j is tree t + j, all reading the one binned row at bins[rb].
  const treeStep = (i: string, nb: string) =>
    `q = ${nb} + 2 * ${i}; p = nodes[q]; bin = bins[rb + (p & 0xffff)]; ` +
    `${i} = 2 * ${i} + 1 + ((((p >>> 16) - bin) >>> 31) | ((bits[nodes[q + 1] + (bin >>> 5)] >>> (bin & 31)) & 1));`;
  let treeWalk = '';
  for (let d = 0; d < D; d++) for (const j of lanes) treeWalk += `    ${treeStep(`i${j}`, `nb${j}`)}\n`;
  let rowTail = '';
  for (let d = 0; d < D; d++) rowTail += `    ${treeStep('i', 'nb')}\n`;
  return `'use strict';
const { nodes, rightBits: bits, leafValue: leaf, treeOutput, baseScore, cuts, cutStart, nLevels } = P;
const nTrees = treeOutput.length;
const nFeatures = nLevels.length;
const k = ${k};
const W = ${w};
const BLOCK = ${KERNEL_BLOCK_ROWS};
const block = new Uint16Array(BLOCK * W);
const rowBins = new Uint16Array(W);

// bin(v) = #{cuts < v}: v <= cut[t] exactly when bin(v) <= t. NaN: slot 2f above every
// threshold (goes right), slot 2f + 1 at 0 (goes left). Categorical: code + 1, 0 = missing.
function lowerBound(lo, hi, v) {
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (cuts[mid] < v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function binColumns(columns, r0, r1, out) {
  for (let f = 0; f < nFeatures; f++) {
    const col = columns[f];
    const levels = nLevels[f];
    let o = 2 * f;
    if (levels < 0) {
      const c0 = cutStart[f];
      const c1 = cutStart[f + 1];
      for (let r = r0; r < r1; r++, o += W) {
        const v = col[r];
        if (v !== v) {
          out[o] = c1 - c0;
          out[o + 1] = 0;
        } else {
          const bin = lowerBound(c0, c1, v) - c0;
          out[o] = bin;
          out[o + 1] = bin;
        }
      }
    } else {
      for (let r = r0; r < r1; r++, o += W) {
        const code = col[r];
        const bin = code >= 0 && code < levels ? code + 1 : 0;
        out[o] = bin;
        out[o + 1] = bin;
      }
    }
  }
}

function binRow(row, out) {
  for (let f = 0; f < nFeatures; f++) {
    const v = row[f];
    const levels = nLevels[f];
    if (levels < 0) {
      const c0 = cutStart[f];
      const c1 = cutStart[f + 1];
      if (v !== v) {
        out[2 * f] = c1 - c0;
        out[2 * f + 1] = 0;
      } else {
        const bin = lowerBound(c0, c1, v) - c0;
        out[2 * f] = bin;
        out[2 * f + 1] = bin;
      }
    } else {
      const bin = v >= 0 && v < levels && v === Math.floor(v) ? v + 1 : 0;
      out[2 * f] = bin;
      out[2 * f + 1] = bin;
    }
  }
}

// Adds every tree's leaf to out (row-major nRows × k), trees in order 0, 1, … as the reference.
// Rows go ${LANES} side by side per tree; the last nRows % ${LANES} rows each take the one-row walk.
function scoreBins(bins, nRows, out) {
  const full = nRows - (nRows % ${LANES});
  for (let t = 0; t < nTrees; t++) {
    const nb = t * ${2 * nInternal};
    const lb = t * ${nLeafSlots} - ${nInternal};
    const o = treeOutput[t];
    let p = 0;
    let bin = 0;
    let q = 0;
    for (let r = 0, rb = 0; r < full; r += ${LANES}, rb += ${LANES * w}) {
      ${lanes.map((j) => `let i${j} = 0;`).join(' ')}
${walk}      ${lanes.map((j) => `out[(r + ${j}) * k + o] += leaf[lb + i${j}];`).join('\n      ')}
    }
  }
  for (let r = full; r < nRows; r++) scoreRow(bins, r * W, out, r * k);
}

function predictRange(columns, r0, r1, out) {
  for (let s = r0; s < r1; s += BLOCK) {
    const e = Math.min(r1, s + BLOCK);
    binColumns(columns, s, e, block);
    const scores = out.subarray((s - r0) * k, (e - r0) * k);
    for (let r = 0; r < e - s; r++) for (let j = 0; j < k; j++) scores[r * k + j] = baseScore[j];
    scoreBins(block, e - s, scores);
  }
}

// One binned row (at bins[rb]): ${LANES} trees walk side by side (a single row has no other
// rows to overlap, but its trees are independent); leaves are added to out[ob ..] in tree
// order afterwards, as the reference does.
function scoreRow(bins, rb, out, ob) {
  let t = 0;
  let p = 0;
  let bin = 0;
  let q = 0;
  for (; t + ${LANES} <= nTrees; t += ${LANES}) {
    ${lanes.map((j) => `let i${j} = 0; const nb${j} = (t + ${j}) * ${2 * nInternal};`).join('\n    ')}
${treeWalk}    ${lanes.map((j) => `out[ob + treeOutput[t + ${j}]] += leaf[(t + ${j}) * ${nLeafSlots} - ${nInternal} + i${j}];`).join('\n    ')}
  }
  for (; t < nTrees; t++) {
    const nb = t * ${2 * nInternal};
    let i = 0;
${rowTail}    out[ob + treeOutput[t]] += leaf[t * ${nLeafSlots} - ${nInternal} + i];
  }
}

function predictRow(row, out) {
  binRow(row, rowBins);
  for (let j = 0; j < k; j++) out[j] = baseScore[j];
  scoreRow(rowBins, 0, out, 0);
}

return { predictRange, predictRow };
`;
}

export function compileKernel(source: string, data: KernelData): ScoringKernel {
  return new Function('P', source)(data) as ScoringKernel;
}

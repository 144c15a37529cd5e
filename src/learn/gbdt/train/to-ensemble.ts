import type { Ensemble } from '../ensemble.js';
import type { FeatureBinMapper } from './binning.js';
import type { BinTree } from './grow-tree.js';

/**
 * Bin-space trees → the flat Ensemble: numeric bin thresholds become the bin's upper value
 * bound (so "bin ≤ t" is "value ≤ threshold"), categorical bin sets become level codes.
 * Trees are laid out in training order: round-major, output-minor.
 */
export function toEnsemble(
  trees: BinTree[],
  K: number,
  baseScore: Float64Array,
  mappers: FeatureBinMapper[],
): Ensemble {
  let nNodes = 0;
  let nCat = 0;
  for (const t of trees) {
    nNodes += t.nNodes;
    for (let n = 0; n < t.nNodes; n++)
      if (t.featureIndex[n] >= 0 && t.isCategorical[n]) nCat += t.catBins[n].length;
  }
  const e: Ensemble = {
    nOutputs: K,
    baseScore: Float64Array.from(baseScore),
    treeRoot: new Int32Array(trees.length),
    treeOutput: new Int32Array(trees.length),
    featureIndex: new Int32Array(nNodes),
    threshold: new Float64Array(nNodes),
    defaultLeft: new Uint8Array(nNodes),
    isCategorical: new Uint8Array(nNodes),
    left: new Int32Array(nNodes).fill(-1),
    right: new Int32Array(nNodes).fill(-1),
    leafValue: new Float64Array(nNodes),
    cover: new Float64Array(nNodes),
    gain: new Float64Array(nNodes),
    catStart: new Int32Array(nNodes),
    catCount: new Int32Array(nNodes),
    catCodes: new Int32Array(nCat),
  };
  let off = 0;
  let catOff = 0;
  trees.forEach((t, ti) => {
    e.treeRoot[ti] = off;
    e.treeOutput[ti] = ti % K;
    for (let n = 0; n < t.nNodes; n++) {
      const g = off + n;
      const f = t.featureIndex[n];
      e.featureIndex[g] = f;
      e.cover[g] = t.cover[n];
      if (f < 0) {
        e.leafValue[g] = t.leafValue[n];
        continue;
      }
      e.left[g] = off + t.left[n];
      e.right[g] = off + t.right[n];
      e.gain[g] = t.gain[n];
      e.defaultLeft[g] = t.defaultLeft[n];
      if (t.isCategorical[n]) {
        e.isCategorical[g] = 1;
        const codes = t.catBins[n].map((b) => mappers[f].binToCode[b]).sort((a, b) => a - b);
        e.catStart[g] = catOff;
        e.catCount[g] = codes.length;
        e.catCodes.set(codes, catOff);
        catOff += codes.length;
      } else {
        const tb = t.thresholdBin[n];
        e.threshold[g] = tb < 0 ? Number.NEGATIVE_INFINITY : mappers[f].upper[tb];
      }
    }
    off += t.nNodes;
  });
  return e;
}

/**
 * The trained GBDT as flat typed arrays: no per-node JS objects at scoring time. Every array
 * indexed by node has one entry per node of every tree; trees are laid out one after another
 * and `treeRoot[t]` is the index of tree t's root.
 *
 * Split rule at an internal node n (featureIndex[n] >= 0):
 * - numeric feature: go left when value <= threshold[n]; NaN goes left when defaultLeft[n] = 1.
 * - categorical feature (isCategorical[n] = 1): go left when the code is one of
 *   catCodes[catStart[n] .. catStart[n] + catCount[n]); missing (-1) and unseen codes go left
 *   when defaultLeft[n] = 1.
 * A leaf has featureIndex[n] = -1 and its output in leafValue[n] (already scaled by the
 * learning rate). `cover[n]` is the sum of hessians of training rows reaching n (TreeSHAP
 * needs it) and `gain[n]` the split gain (feature importance).
 *
 * Raw score of row r for output k = baseScore[k] + Σ over trees t with treeOutput[t] = k of
 * the leaf value r reaches in t.
 */
export interface Ensemble {
  /** Number of outputs: 1 (binary, regression) or K (multiclass). */
  nOutputs: number;
  baseScore: Float64Array;
  treeRoot: Int32Array;
  treeOutput: Int32Array;
  featureIndex: Int32Array;
  threshold: Float64Array;
  defaultLeft: Uint8Array;
  isCategorical: Uint8Array;
  left: Int32Array;
  right: Int32Array;
  leafValue: Float64Array;
  cover: Float64Array;
  gain: Float64Array;
  catStart: Int32Array;
  catCount: Int32Array;
  catCodes: Int32Array;
}

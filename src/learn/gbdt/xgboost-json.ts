import { float32AtOrBelow } from '../float32.js';
import type { GbdtModel } from './model.js';

/**
 * Writes a GbdtModel as an XGBoost 1.7 JSON model (`Booster.load_model('m.json')`), so the same
 * trees can be scored by XGBoost: the prediction benchmark times XGBoost on kiln's own model,
 * and tests check kiln's TreeSHAP against XGBoost's pred_contribs on it.
 *
 * Input for XGBoost: the same columns in model order, categorical features as codes into the
 * model's level tables with feature_type 'c', and missing values (numeric or categorical) as
 * NaN (XGBoost rejects negative category codes).
 *
 * Translation:
 * - numeric: kiln goes left on x <= t, XGBoost on x < s (float32). s = the float32 just above
 *   the largest float32 <= t gives the same side for every float32 x.
 * - categorical: XGBoost sends the listed categories right, so the list is the complement of
 *   kiln's left set.
 * - base score: XGBoost applies base_score through the objective (logit for binary), which
 *   would round differently; instead base_score is neutral (0.5 for binary = margin 0, 0 for
 *   the others) and kiln's baseScore[k] is added to every leaf of the first tree of output k.
 *   SHAP contributions are unchanged by this; only the per-tree share of the bias moves.
 */
export function toXgboostJson(model: GbdtModel): string {
  const e = model.ensemble;
  const features = model.info.features;
  const nFeatures = features.length;
  const baseAdded = new Uint8Array(e.nOutputs);
  const trees: unknown[] = [];
  for (let t = 0; t < e.treeRoot.length; t++) {
    const output = e.treeOutput[t]!;
    const shift = baseAdded[output] ? 0 : e.baseScore[output]!;
    baseAdded[output] = 1;
    // Renumber breadth-first: XGBoost's predictor finds the right child as left child + 1, so
    // siblings must be adjacent (and the root is node 0).
    const order = [e.treeRoot[t]!];
    for (let i = 0; i < order.length; i++) {
      const n = order[i]!;
      if (e.featureIndex[n]! >= 0) order.push(e.left[n]!, e.right[n]!);
    }
    const local = new Map(order.map((n, i) => [n, i]));
    const m = order.length;
    const tree = {
      base_weights: new Array<number>(m).fill(0),
      categories: [] as number[],
      categories_nodes: [] as number[],
      categories_segments: [] as number[],
      categories_sizes: [] as number[],
      default_left: new Array<number>(m).fill(0),
      id: t,
      left_children: new Array<number>(m).fill(-1),
      loss_changes: new Array<number>(m).fill(0),
      parents: new Array<number>(m).fill(2147483647),
      right_children: new Array<number>(m).fill(-1),
      split_conditions: new Array<number>(m).fill(0),
      split_indices: new Array<number>(m).fill(0),
      split_type: new Array<number>(m).fill(0),
      sum_hessian: new Array<number>(m).fill(0),
      tree_param: {
        num_deleted: '0',
        num_feature: String(nFeatures),
        num_nodes: String(m),
        size_leaf_vector: '0',
      },
    };
    order.forEach((n, i) => {
      tree.sum_hessian[i] = e.cover[n]!;
      const f = e.featureIndex[n]!;
      if (f < 0) {
        tree.split_conditions[i] = e.leafValue[n]! + shift;
        tree.base_weights[i] = e.leafValue[n]! + shift;
        return;
      }
      const l = local.get(e.left[n]!)!;
      const r = local.get(e.right[n]!)!;
      tree.left_children[i] = l;
      tree.right_children[i] = r;
      tree.parents[l] = i;
      tree.parents[r] = i;
      tree.split_indices[i] = f;
      tree.default_left[i] = e.defaultLeft[n]!;
      tree.loss_changes[i] = e.gain[n]!;
      if (e.isCategorical[n] === 0) {
        tree.split_conditions[i] = nextFloat32Up(float32AtOrBelow(e.threshold[n]!));
        return;
      }
      tree.split_type[i] = 1;
      tree.split_conditions[i] = Number.NaN;
      const nLevels = features[f]!.levels!.length;
      const left = new Uint8Array(nLevels);
      for (let j = e.catStart[n]!; j < e.catStart[n]! + e.catCount[n]!; j++) left[e.catCodes[j]!] = 1;
      tree.categories_nodes.push(i);
      tree.categories_segments.push(tree.categories.length);
      let size = 0;
      for (let code = 0; code < nLevels; code++) {
        if (!left[code]) {
          tree.categories.push(code);
          size++;
        }
      }
      tree.categories_sizes.push(size);
    });
    trees.push(tree);
  }
  const k = e.nOutputs;
  const objective =
    model.task === 'binary'
      ? { name: 'binary:logistic', reg_loss_param: { scale_pos_weight: '1' } }
      : model.task === 'multiclass'
        ? { name: 'multi:softprob', softmax_multiclass_param: { num_class: String(k) } }
        : { name: 'reg:squarederror', reg_loss_param: { scale_pos_weight: '1' } };
  const json = {
    learner: {
      attributes: {},
      feature_names: features.map((f) => f.name),
      feature_types: features.map((f) => (f.kind === 'categorical' ? 'c' : 'float')),
      gradient_booster: {
        model: {
          gbtree_model_param: {
            num_parallel_tree: '1',
            num_trees: String(trees.length),
            size_leaf_vector: '0',
          },
          tree_info: Array.from(e.treeOutput),
          trees,
        },
        name: 'gbtree',
      },
      learner_model_param: {
        base_score: model.task === 'binary' ? '5E-1' : '0E0',
        boost_from_average: '0',
        num_class: model.task === 'multiclass' ? String(k) : '0',
        num_feature: String(nFeatures),
        num_target: '1',
      },
      objective,
    },
    version: [1, 7, 4],
  };
  // XGBoost's reader is typed: float fields must be written as floats (0.0, not 0) and NaN as
  // the NaN literal, neither of which JSON.stringify does; mark them and rewrite.
  return JSON.stringify(json, (key, value) =>
    FLOAT_FIELDS.has(key) ? (value as number[]).map((v) => `__F__${formatFloat(v)}`) : value,
  ).replace(/"__F__([^"]*)"/g, '$1');
}

const FLOAT_FIELDS = new Set(['base_weights', 'loss_changes', 'split_conditions', 'sum_hessian']);

function formatFloat(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (!Number.isFinite(v)) return v > 0 ? '3.4028234663852886e38' : '-3.4028234663852886e38';
  const s = String(v);
  return /[.e]/.test(s) ? s : `${s}.0`;
}

function nextFloat32Up(f: number): number {
  const buf = new Float32Array([f]);
  const bits = new Int32Array(buf.buffer);
  if (f === 0) bits[0] = 1;
  else if (f > 0) bits[0]! += 1;
  else bits[0]! -= 1;
  return buf[0]!;
}

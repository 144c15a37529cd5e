import { KilnError } from '../../errors.js';
import { float32AtOrBelow } from '../float32.js';
import type { GbdtModel } from '../gbdt/model.js';
import {
  attr,
  encodeOnnxModel,
  floatTensor,
  type OnnxNode,
  type OnnxValueInfo,
  onnxNode,
  TensorType,
  tensorValueInfo,
} from './proto.js';

/**
 * Exports a GbdtModel to an ONNX model built on the `ai.onnx.ml` tree-ensemble operators.
 *
 * Input: one float tensor `input` of shape [N, F], columns in the model's feature order
 * (`model.featureNames`). Numeric features are their values (NaN = missing). Categorical
 * features are their integer codes into the model's level table, as floats; a missing value
 * or a level the model never saw must be passed as -1 (NaN is treated the same way).
 * The level tables are stored in the model's metadata (`kiln.features`) so a caller can encode
 * rows without kiln.
 *
 * Outputs:
 * - binary / multiclass: `label` int64 [N] (class index; names in metadata `kiln.classes`)
 *   and `probabilities` float [N, K] (K = 2 for binary: [1 − p, p], p as kiln's predict).
 * - regression: `variable` float [N, 1].
 *
 * Two encodings, chosen with `mlOpset`:
 *
 * - 3 (default): TreeEnsembleClassifier / TreeEnsembleRegressor (ai.onnx.ml opset 1–3), which
 *   every ONNX runtime that has the ML operators can run. These operators have no set
 *   membership test, so each categorical split "code ∈ S" becomes a chain of BRANCH_EQ nodes
 *   that all share the same true child (x == s1 ? L : x == s2 ? L : … : R). The chain tests
 *   whichever of S and its complement is smaller (with the branches swapped), and -1 joins the
 *   chain on the side the missing value goes. onnxruntime accepts shared children (the layout
 *   onnxmltools writes for LightGBM's categorical splits).
 * - 5: the single TreeEnsemble operator (ai.onnx.ml opset 5, ONNX 1.16) with BRANCH_MEMBER
 *   nodes testing the whole set at once, followed by standard operators for the base score
 *   and the link. onnxruntime 1.30 runs it (checked by tree-ensemble.test.ts); older runtimes
 *   and most other ONNX consumers do not, hence it is opt-in.
 *
 * Numeric splits: kiln goes left when value <= threshold (a double); the operators compare in
 * float32. The threshold is written as the largest float32 not above it, which makes
 * `x <= t` give the same answer as kiln for every float32 input x. NaN follows the learned
 * direction through nodes_missing_value_tracks_true (true branch = left).
 *
 * Numbers: leaf values are stored as float32 and summed by onnxruntime in float32, so scores
 * match kiln's (float64) to about 1e-6 relative for typical ensembles; rows whose float64
 * feature values do not survive a float32 round trip can land on the other side of a split.
 */
export interface GbdtOnnxOptions {
  /** 3 (default, TreeEnsembleClassifier/Regressor) or 5 (TreeEnsemble with BRANCH_MEMBER). */
  mlOpset?: 3 | 5;
  /** Graph name; defaults to 'kiln_gbdt'. */
  graphName?: string;
  /** Free-form metadata added to the model's metadata_props. */
  metadata?: Record<string, string>;
}

/** ONNX-level node of one tree before it is written in either encoding. */
type FlatNode =
  | { kind: 'leaf'; weight: number }
  | {
      kind: 'split';
      feature: number;
      mode: 'BRANCH_LEQ' | 'BRANCH_EQ' | 'BRANCH_MEMBER';
      value: number;
      members?: number[];
      tracksTrue: boolean;
      trueId: number;
      falseId: number;
    };

interface FlatTree {
  output: number;
  nodes: FlatNode[];
}

function flattenTrees(model: GbdtModel, mlOpset: 3 | 5): FlatTree[] {
  const e = model.ensemble;
  const features = model.info.features;
  const trees: FlatTree[] = [];
  for (let t = 0; t < e.treeRoot.length; t++) {
    const nodes: FlatNode[] = [];
    const emit = (n: number): number => {
      const f = e.featureIndex[n]!;
      if (f < 0) {
        nodes.push({ kind: 'leaf', weight: e.leafValue[n]! });
        return nodes.length - 1;
      }
      const missingLeft = e.defaultLeft[n] === 1;
      if (e.isCategorical[n] === 0) {
        const id = nodes.length;
        nodes.push({
          kind: 'split',
          feature: f,
          mode: 'BRANCH_LEQ',
          value: float32AtOrBelow(e.threshold[n]!),
          tracksTrue: missingLeft,
          trueId: -1,
          falseId: -1,
        });
        const trueId = emit(e.left[n]!);
        const falseId = emit(e.right[n]!);
        Object.assign(nodes[id]!, { trueId, falseId });
        return id;
      }
      const nLevels = features[f]!.levels!.length;
      const inSet = new Uint8Array(nLevels);
      const start = e.catStart[n]!;
      for (let i = start; i < start + e.catCount[n]!; i++) inSet[e.catCodes[i]!] = 1;
      const set: number[] = [];
      const complement: number[] = [];
      for (let code = 0; code < nLevels; code++) (inSet[code] ? set : complement).push(code);
      // Test membership of the smaller side; -1 (missing) joins the side it goes to.
      const testLeftSide = mlOpset === 5 || set.length <= complement.length;
      const members = testLeftSide ? set : complement;
      if (missingLeft === testLeftSide) members.push(-1);
      const memberChild = testLeftSide ? e.left[n]! : e.right[n]!;
      const otherChild = testLeftSide ? e.right[n]! : e.left[n]!;
      if (members.length === 0) return emit(otherChild); // nothing is ever a member
      const nanToMembers = missingLeft === testLeftSide;
      if (mlOpset === 5) {
        const id = nodes.length;
        nodes.push({
          kind: 'split',
          feature: f,
          mode: 'BRANCH_MEMBER',
          value: Number.NaN,
          members,
          tracksTrue: nanToMembers,
          trueId: -1,
          falseId: -1,
        });
        const trueId = emit(memberChild);
        const falseId = emit(otherChild);
        Object.assign(nodes[id]!, { trueId, falseId });
        return id;
      }
      const first = nodes.length;
      for (const code of members) {
        nodes.push({
          kind: 'split',
          feature: f,
          mode: 'BRANCH_EQ',
          value: code,
          tracksTrue: nanToMembers,
          trueId: -1,
          falseId: -1,
        });
      }
      const trueId = emit(memberChild);
      const falseId = emit(otherChild);
      for (let i = 0; i < members.length; i++) {
        const isLast = i === members.length - 1;
        Object.assign(nodes[first + i]!, { trueId, falseId: isLast ? falseId : first + i + 1 });
      }
      return first;
    };
    emit(e.treeRoot[t]!);
    trees.push({ output: e.treeOutput[t]!, nodes });
  }
  return trees;
}

/** Attributes shared by TreeEnsembleClassifier and TreeEnsembleRegressor (opset 3). */
function opset3Attributes(trees: FlatTree[], binary: boolean, leafPrefix: 'class' | 'target') {
  const treeIds: number[] = [];
  const nodeIds: number[] = [];
  const featureIds: number[] = [];
  const modes: string[] = [];
  const values: number[] = [];
  const trueIds: number[] = [];
  const falseIds: number[] = [];
  const tracksTrue: number[] = [];
  const leafTree: number[] = [];
  const leafNode: number[] = [];
  const leafOutput: number[] = [];
  const leafWeight: number[] = [];
  trees.forEach((tree, t) => {
    tree.nodes.forEach((node, id) => {
      treeIds.push(t);
      nodeIds.push(id);
      if (node.kind === 'leaf') {
        featureIds.push(0);
        modes.push('LEAF');
        values.push(0);
        trueIds.push(0);
        falseIds.push(0);
        tracksTrue.push(0);
        leafTree.push(t);
        leafNode.push(id);
        // Binary classifiers accumulate into class 0 and onnxruntime expands [1 − p, p].
        leafOutput.push(binary ? 0 : tree.output);
        leafWeight.push(node.weight);
      } else {
        featureIds.push(node.feature);
        modes.push(node.mode);
        values.push(node.value);
        trueIds.push(node.trueId);
        falseIds.push(node.falseId);
        tracksTrue.push(node.tracksTrue ? 1 : 0);
      }
    });
  });
  return [
    attr.ints('nodes_treeids', treeIds),
    attr.ints('nodes_nodeids', nodeIds),
    attr.ints('nodes_featureids', featureIds),
    attr.strings('nodes_modes', modes),
    attr.floats('nodes_values', values),
    attr.ints('nodes_truenodeids', trueIds),
    attr.ints('nodes_falsenodeids', falseIds),
    attr.ints('nodes_missing_value_tracks_true', tracksTrue),
    attr.ints(`${leafPrefix}_treeids`, leafTree),
    attr.ints(`${leafPrefix}_nodeids`, leafNode),
    attr.ints(`${leafPrefix}_ids`, leafOutput),
    attr.floats(`${leafPrefix}_weights`, leafWeight),
  ];
}

const MODE_CODES_V5 = { BRANCH_LEQ: 0, BRANCH_EQ: 4, BRANCH_MEMBER: 6 } as const;

/** The TreeEnsemble (opset 5) node computing raw tree sums, one column per output. */
function opset5Node(trees: FlatTree[], nOutputs: number, output: string): OnnxNode {
  const featureIds: number[] = [];
  const modes: number[] = [];
  const splits: number[] = [];
  const trueIds: number[] = [];
  const trueLeafs: number[] = [];
  const falseIds: number[] = [];
  const falseLeafs: number[] = [];
  const tracksTrue: number[] = [];
  const membersAt: (number[] | undefined)[] = [];
  const roots: number[] = [];
  const leafTargets: number[] = [];
  const leafWeights: number[] = [];
  for (const tree of trees) {
    // Internal nodes and leaves live in separate arrays; map each tree-local id to its slot.
    const slot = new Int32Array(tree.nodes.length);
    for (let id = 0; id < tree.nodes.length; id++) {
      const node = tree.nodes[id]!;
      if (node.kind === 'leaf') {
        slot[id] = leafWeights.length;
        leafTargets.push(tree.output);
        leafWeights.push(node.weight);
      } else {
        slot[id] = featureIds.length;
        featureIds.push(-1); // filled below, once every slot is known
      }
    }
    const root = tree.nodes[0]!;
    if (root.kind === 'leaf') {
      // A tree needs a root node: one whose branches both lead to the leaf.
      roots.push(featureIds.length);
      featureIds.push(0);
      modes.push(MODE_CODES_V5.BRANCH_LEQ);
      splits.push(0);
      trueIds.push(slot[0]!);
      trueLeafs.push(1);
      falseIds.push(slot[0]!);
      falseLeafs.push(1);
      tracksTrue.push(0);
      continue;
    }
    roots.push(slot[0]!);
    for (let id = 0; id < tree.nodes.length; id++) {
      const node = tree.nodes[id]!;
      if (node.kind === 'leaf') continue;
      const at = slot[id]!;
      featureIds[at] = node.feature;
      modes[at] = MODE_CODES_V5[node.mode];
      splits[at] = node.value;
      trueIds[at] = slot[node.trueId]!;
      trueLeafs[at] = tree.nodes[node.trueId]!.kind === 'leaf' ? 1 : 0;
      falseIds[at] = slot[node.falseId]!;
      falseLeafs[at] = tree.nodes[node.falseId]!.kind === 'leaf' ? 1 : 0;
      tracksTrue[at] = node.tracksTrue ? 1 : 0;
      membersAt[at] = node.members;
    }
  }
  // Member sets in the order their nodes appear, separated by NaN.
  const membership: number[] = [];
  for (let at = 0; at < modes.length; at++) {
    const members = membersAt[at];
    if (modes[at] !== MODE_CODES_V5.BRANCH_MEMBER || !members) continue;
    if (membership.length > 0) membership.push(Number.NaN);
    for (const m of members) membership.push(m);
  }
  const attributes = [
    attr.int('n_targets', nOutputs),
    attr.int('aggregate_function', 1),
    attr.int('post_transform', 0),
    attr.ints('tree_roots', roots),
    attr.tensor('nodes_modes', {
      name: '',
      dataType: TensorType.UINT8,
      dims: [modes.length],
      raw: Uint8Array.from(modes),
    }),
    attr.ints('nodes_featureids', featureIds),
    attr.tensor('nodes_splits', floatTensor('', [splits.length], splits)),
    attr.ints('nodes_truenodeids', trueIds),
    attr.ints('nodes_trueleafs', trueLeafs),
    attr.ints('nodes_falsenodeids', falseIds),
    attr.ints('nodes_falseleafs', falseLeafs),
    attr.ints('nodes_missing_value_tracks_true', tracksTrue),
    attr.ints('leaf_targetids', leafTargets),
    attr.tensor('leaf_weights', floatTensor('', [leafWeights.length], leafWeights)),
  ];
  if (membership.length > 0) {
    attributes.push(attr.tensor('membership_values', floatTensor('', [membership.length], membership)));
  }
  return onnxNode('TreeEnsemble', ['input'], [output], attributes, { domain: 'ai.onnx.ml', name: 'trees' });
}

/** Serialises `model` to the bytes of an .onnx file (see the comment above for the contract). */
export function exportGbdtToOnnx(model: GbdtModel, options: GbdtOnnxOptions = {}): Uint8Array {
  const mlOpset = options.mlOpset ?? 3;
  if (mlOpset !== 3 && mlOpset !== 5) {
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      `onnx export: mlOpset must be 3 or 5, got ${String(mlOpset)}`,
    );
  }
  const e = model.ensemble;
  const k = e.nOutputs;
  const nFeatures = model.featureNames.length;
  const trees = flattenTrees(model, mlOpset);
  const isClassifier = model.task === 'binary' || model.task === 'multiclass';
  const nClasses = model.task === 'binary' ? 2 : k;
  const nodes: OnnxNode[] = [];
  const initializers = [];
  let outputs: OnnxValueInfo[];

  if (mlOpset === 3) {
    if (isClassifier) {
      nodes.push(
        onnxNode(
          'TreeEnsembleClassifier',
          ['input'],
          ['label', 'probabilities'],
          [
            attr.ints(
              'classlabels_int64s',
              Array.from({ length: nClasses }, (_, i) => i),
            ),
            attr.string('post_transform', model.task === 'binary' ? 'LOGISTIC' : 'SOFTMAX'),
            attr.floats('base_values', e.baseScore),
            ...opset3Attributes(trees, model.task === 'binary', 'class'),
          ],
          { domain: 'ai.onnx.ml', name: 'trees' },
        ),
      );
    } else {
      nodes.push(
        onnxNode(
          'TreeEnsembleRegressor',
          ['input'],
          ['variable'],
          [
            attr.int('n_targets', 1),
            attr.string('aggregate_function', 'SUM'),
            attr.string('post_transform', 'NONE'),
            attr.floats('base_values', e.baseScore),
            ...opset3Attributes(trees, false, 'target'),
          ],
          { domain: 'ai.onnx.ml', name: 'trees' },
        ),
      );
    }
  } else {
    // TreeEnsemble has no base score or classifier outputs: add them with standard operators.
    nodes.push(opset5Node(trees, k, 'tree_sum'));
    initializers.push(floatTensor('base_score', [k], e.baseScore));
    const margin = isClassifier ? 'margin' : 'variable';
    nodes.push(onnxNode('Add', ['tree_sum', 'base_score'], [margin], [], { name: 'add_base_score' }));
    if (model.task === 'binary') {
      initializers.push(floatTensor('one', [1], [1]));
      nodes.push(onnxNode('Sigmoid', ['margin'], ['p1'], [], { name: 'link' }));
      nodes.push(onnxNode('Sub', ['one', 'p1'], ['p0'], [], { name: 'complement' }));
      nodes.push(
        onnxNode('Concat', ['p0', 'p1'], ['probabilities'], [attr.int('axis', 1)], { name: 'both_classes' }),
      );
    } else if (model.task === 'multiclass') {
      nodes.push(
        onnxNode('Softmax', ['margin'], ['probabilities'], [attr.int('axis', -1)], { name: 'link' }),
      );
    }
    if (isClassifier) {
      nodes.push(
        onnxNode('ArgMax', ['probabilities'], ['label'], [attr.int('axis', 1), attr.int('keepdims', 0)], {
          name: 'label',
        }),
      );
    }
  }

  if (isClassifier) {
    outputs = [
      tensorValueInfo('label', TensorType.INT64, ['N']),
      tensorValueInfo('probabilities', TensorType.FLOAT, ['N', nClasses]),
    ];
  } else {
    outputs = [tensorValueInfo('variable', TensorType.FLOAT, ['N', 1])];
  }

  return encodeOnnxModel({
    irVersion: mlOpset === 5 ? 10 : 8,
    opsetImports: [
      { domain: '', version: mlOpset === 5 ? 21 : 17 },
      { domain: 'ai.onnx.ml', version: mlOpset },
    ],
    producerName: 'kiln',
    producerVersion: '0.1.0',
    docString:
      'kiln GBDT. Input: float [N, F] in the order of metadata kiln.features; categorical features as ' +
      'integer codes into their level table (-1 = missing or unseen level); numeric NaN = missing.',
    metadata: {
      'kiln.learner': model.learner,
      'kiln.task': model.task,
      'kiln.objective': model.info.objective,
      'kiln.features': JSON.stringify(model.info.features),
      ...(model.info.classes ? { 'kiln.classes': JSON.stringify(model.info.classes) } : {}),
      ...options.metadata,
    },
    graph: {
      name: options.graphName ?? 'kiln_gbdt',
      inputs: [tensorValueInfo('input', TensorType.FLOAT, ['N', nFeatures])],
      outputs,
      initializers,
      nodes,
    },
  });
}

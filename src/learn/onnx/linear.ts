import { KilnError } from '../../errors.js';
import { LinearModel } from '../linear/model.js';
import { OTHER_LEVEL } from '../preprocess/columns.js';
import { PipelineModel } from '../preprocess/pipeline.js';
import type { TransformState, UnseenPolicy } from '../preprocess/types.js';
import type { Model } from '../types.js';
import {
  attr,
  doubleTensor,
  encodeOnnxModel,
  int64Tensor,
  type OnnxNode,
  type OnnxTensor,
  type OnnxValueInfo,
  onnxNode,
  TensorType,
  tensorValueInfo,
} from './proto.js';

/**
 * Exports a LinearModel, alone or at the end of a PipelineModel, to ONNX, preprocessing
 * included, so the graph takes raw rows.
 *
 * Inputs: one tensor per raw input column, shape [N, 1], named after the column: numeric
 * columns as double (NaN = missing), categorical columns as string ('' = missing).
 * Outputs: binary / multiclass → `label` int64 [N] and `probabilities` double [N, K]
 * (K = 2 for binary: [1 − p, p]); regression → `variable` double [N, 1].
 *
 * Everything is computed in double, so outputs equal kiln's predictions to rounding (~1e-15).
 * Steps map to standard operators (IsNaN/Where for imputation, Sub/Div for scaling, MatMul for
 * numeric coefficients) and categorical columns to one ai.onnx.ml LabelEncoder (string → slot)
 * plus a Gather from a table of per-slot values (a coefficient, a target mean, an ordinal
 * code). Every step's level mapping is composed ahead of time, so a raw string goes straight to
 * its final value. Limits: the 'hash' step is not exported (no standard murmur3 operator), nor
 * one-hot with `expand: true`; one-hot / ordinal 'error' policies cannot raise inside a graph
 * and act as 'ignore' (unseen level → no indicator / NaN).
 */
export interface LinearOnnxOptions {
  graphName?: string;
  metadata?: Record<string, string>;
}

/** A categorical value as it flows through the steps: a level, missing (null), or an unseen raw string. */
const UNSEEN = Symbol('unseen');
type Level = string | null | typeof UNSEEN;

type Column =
  | { kind: 'numeric'; tensor: string }
  | {
      kind: 'categorical';
      input: string;
      /** Raw strings the fitted steps know → their current level. */
      known: Map<string, Level>;
      missing: Level;
      unseen: Level;
    };

class GraphBuilder {
  nodes: OnnxNode[] = [];
  initializers: OnnxTensor[] = [];
  private n = 0;
  fresh(base: string): string {
    return `${base.replace(/[^A-Za-z0-9_]/g, '_')}_${this.n++}`;
  }
  constant(base: string, dims: number[], values: ArrayLike<number>): string {
    const name = this.fresh(base);
    this.initializers.push(doubleTensor(name, dims, values));
    return name;
  }
  int64(base: string, dims: number[], values: ArrayLike<number>): string {
    const name = this.fresh(base);
    this.initializers.push(int64Tensor(name, dims, values));
    return name;
  }
  op(
    type: string,
    inputs: string[],
    attributes: ReturnType<typeof attr.int>[] = [],
    domain?: string,
  ): string {
    const out = this.fresh(type.toLowerCase());
    this.nodes.push(onnxNode(type, inputs, [out], attributes, domain ? { domain } : {}));
    return out;
  }
}

function unsupported(why: string): KilnError {
  return new KilnError('INVALID_PARAMETER_VALUE', `ONNX export of linear model: ${why}`);
}

function applyPolicy(policy: UnseenPolicy): Level {
  return policy === 'other' ? OTHER_LEVEL : null;
}

/** Maps every raw string (and missing / unseen) of a categorical column through a level map. */
function mapLevels(col: Extract<Column, { kind: 'categorical' }>, f: (l: Level) => Level): void {
  for (const [k, v] of col.known) col.known.set(k, f(v));
  col.missing = f(col.missing);
  col.unseen = f(col.unseen);
}

/**
 * string input → LabelEncoder slot → Gather from a [slots, width] double table whose rows are
 * value(level) for every known raw string, then missing ('' input), then unseen (default slot).
 */
function categoricalLookup(
  g: GraphBuilder,
  col: Extract<Column, { kind: 'categorical' }>,
  width: number,
  value: (l: Level) => number[],
): string {
  const keys = [...col.known.keys()].filter((k) => k !== '');
  const rows = keys.map((k) => value(col.known.get(k)!));
  keys.push('');
  rows.push(value(col.missing));
  const unseenSlot = rows.length;
  rows.push(value(col.unseen));
  const slot = g.op(
    'LabelEncoder',
    [col.input],
    [
      attr.strings('keys_strings', keys),
      attr.ints(
        'values_int64s',
        keys.map((_, i) => i),
      ),
      attr.int('default_int64', unseenSlot),
    ],
    'ai.onnx.ml',
  );
  const table = g.constant('table', [rows.length, width], rows.flat());
  const gathered = g.op('Gather', [table, slot], [attr.int('axis', 0)]);
  return g.op('Reshape', [gathered, g.int64('shape', [2], [-1, width])]);
}

function applyStep(g: GraphBuilder, columns: Map<string, Column>, state: TransformState): void {
  const get = (name: string) => {
    const c = columns.get(name);
    if (!c) throw unsupported(`step '${state.kind}' refers to column '${name}', which is not an input`);
    return c;
  };
  switch (state.kind) {
    case 'impute':
      for (const fill of state.fills as { name: string; kind: string; value?: number; level?: string }[]) {
        const c = get(fill.name);
        if (c.kind === 'numeric') {
          const nan = g.op('IsNaN', [c.tensor]);
          c.tensor = g.op('Where', [nan, g.constant('fill', [1], [fill.value!]), c.tensor]);
        } else {
          mapLevels(c, (l) => (l === null ? fill.level! : l));
        }
      }
      return;
    case 'standard-scale':
    case 'robust-scale':
      for (const s of state.columns as { name: string; center: number; scale: number }[]) {
        const c = get(s.name);
        if (c.kind !== 'numeric') throw unsupported(`scaling step on categorical column '${s.name}'`);
        const centred = g.op('Sub', [c.tensor, g.constant('center', [1], [s.center])]);
        c.tensor = g.op('Div', [centred, g.constant('scale', [1], [s.scale])]);
      }
      return;
    case 'one-hot': {
      if (state.expand)
        throw unsupported('one-hot with expand: true is not exportable; use the default (expand: false)');
      const policy = state.unseen as UnseenPolicy;
      for (const fit of state.columns as { name: string; levels: string[]; merged: string[] }[]) {
        const c = get(fit.name);
        if (c.kind !== 'categorical') throw unsupported(`one-hot step on numeric column '${fit.name}'`);
        const levels = new Set(fit.levels);
        const merged = new Set(fit.merged);
        mapLevels(c, (l) =>
          l === null
            ? null
            : typeof l === 'string' && levels.has(l)
              ? l
              : typeof l === 'string' && merged.has(l)
                ? OTHER_LEVEL
                : applyPolicy(policy),
        );
      }
      return;
    }
    case 'ordinal': {
      const policy = state.unseen as UnseenPolicy;
      for (const fit of state.columns as { name: string; levels: string[] }[]) {
        const c = get(fit.name);
        if (c.kind !== 'categorical') throw unsupported(`ordinal step on numeric column '${fit.name}'`);
        const index = new Map(fit.levels.map((l, i) => [l, i]));
        const other = index.get(OTHER_LEVEL);
        const code = (l: Level): number => {
          if (l === null) return Number.NaN;
          const i = typeof l === 'string' ? index.get(l) : undefined;
          if (i !== undefined) return i;
          return policy === 'other' && other !== undefined ? other : Number.NaN;
        };
        columns.set(fit.name, { kind: 'numeric', tensor: categoricalLookup(g, c, 1, (l) => [code(l)]) });
      }
      return;
    }
    case 'target-encode': {
      const prior = state.prior as number;
      for (const fit of state.columns as { name: string; levels: string[]; values: number[] }[]) {
        const c = get(fit.name);
        if (c.kind !== 'categorical') throw unsupported(`target-encode step on numeric column '${fit.name}'`);
        const index = new Map(fit.levels.map((l, i) => [l, fit.values[i]]));
        columns.set(fit.name, {
          kind: 'numeric',
          tensor: categoricalLookup(g, c, 1, (l) => [
            typeof l === 'string' ? (index.get(l) ?? prior) : prior,
          ]),
        });
      }
      return;
    }
    default:
      throw unsupported(`preprocessing step '${state.kind}' has no ONNX form`);
  }
}

export function exportLinearToOnnx(model: Model, options: LinearOnnxOptions = {}): Uint8Array {
  let linear: LinearModel;
  let steps: TransformState[] = [];
  let inputs: { name: string; kind: 'numeric' | 'categorical' }[];
  if (model instanceof PipelineModel) {
    if (!(model.estimator instanceof LinearModel)) {
      throw unsupported(`the pipeline's estimator is a ${model.estimator.learner} model, not linear`);
    }
    linear = model.estimator;
    steps = model.steps.map((s) => s.state());
    inputs = model.inputColumns;
  } else if (model instanceof LinearModel) {
    linear = model;
    inputs = linear.layout.map((c) => ({ name: c.name, kind: c.kind }));
  } else {
    throw unsupported(`a ${model.learner} model is not a linear model or a pipeline ending in one`);
  }
  const g = new GraphBuilder();
  const columns = new Map<string, Column>();
  const graphInputs: OnnxValueInfo[] = [];
  for (const c of inputs) {
    if (c.kind === 'numeric') {
      columns.set(c.name, { kind: 'numeric', tensor: c.name });
      graphInputs.push(tensorValueInfo(c.name, TensorType.DOUBLE, ['N', 1]));
    } else {
      columns.set(c.name, {
        kind: 'categorical',
        input: c.name,
        known: new Map(),
        missing: null,
        unseen: UNSEEN,
      });
      graphInputs.push(tensorValueInfo(c.name, TensorType.STRING, ['N', 1]));
    }
  }
  // Every raw string any step or the model names gets its own slot, starting as itself; a step
  // that does not list it then maps it as the unseen level it is for that step.
  for (const state of steps) {
    for (const fit of (state.columns as
      | { name: string; levels?: string[]; merged?: string[] }[]
      | undefined) ?? []) {
      const c = columns.get(fit.name);
      if (c?.kind !== 'categorical') continue;
      for (const l of [...(fit.levels ?? []), ...(fit.merged ?? [])]) if (!c.known.has(l)) c.known.set(l, l);
    }
    if (state.kind === 'hash') throw unsupported("the 'hash' step has no standard ONNX operator");
  }
  for (const spec of linear.layout) {
    const c = columns.get(spec.name);
    if (c?.kind === 'categorical') for (const l of spec.levels ?? []) if (!c.known.has(l)) c.known.set(l, l);
  }
  for (const state of steps) applyStep(g, columns, state);

  const K = linear.nOutputs;
  const stride = linear.nCoef + 1;
  const terms: string[] = [];
  const numericSpecs = linear.layout.filter((s) => s.kind === 'numeric');
  if (numericSpecs.length) {
    const tensors = numericSpecs.map((s) => {
      const c = columns.get(s.name);
      if (c?.kind !== 'numeric')
        throw unsupported(`numeric model feature '${s.name}' is not numeric after preprocessing`);
      return c.tensor;
    });
    const x = tensors.length === 1 ? tensors[0] : g.op('Concat', tensors, [attr.int('axis', 1)]);
    const w: number[] = [];
    for (const s of numericSpecs) for (let k = 0; k < K; k++) w.push(linear.weights[k * stride + s.offset]);
    terms.push(g.op('MatMul', [x, g.constant('coef', [numericSpecs.length, K], w)]));
  }
  for (const s of linear.layout.filter((l) => l.kind === 'categorical')) {
    const c = columns.get(s.name);
    if (c?.kind !== 'categorical')
      throw unsupported(`categorical model feature '${s.name}' is not categorical after preprocessing`);
    const index = new Map(s.levels!.map((l, i) => [l, i]));
    terms.push(
      categoricalLookup(g, c, K, (l) => {
        const i = typeof l === 'string' ? index.get(l) : undefined;
        return Array.from({ length: K }, (_, k) =>
          i === undefined ? 0 : linear.weights[k * stride + s.offset + i],
        );
      }),
    );
  }
  let margin = g.constant('intercept', [K], linear.intercepts());
  for (const t of terms) margin = g.op('Add', [t, margin]);
  if (terms.length === 0) throw unsupported('the model has no features');

  const outputs: OnnxValueInfo[] = [];
  const rename = (from: string, to: string) => {
    g.nodes.push(onnxNode('Identity', [from], [to]));
  };
  if (linear.task === 'regression') {
    rename(margin, 'variable');
    outputs.push(tensorValueInfo('variable', TensorType.DOUBLE, ['N', 1]));
  } else {
    let probs: string;
    if (linear.task === 'binary') {
      const p = g.op('Sigmoid', [margin]);
      const q = g.op('Sub', [g.constant('one', [1], [1]), p]);
      probs = g.op('Concat', [q, p], [attr.int('axis', 1)]);
    } else {
      probs = g.op('Softmax', [margin], [attr.int('axis', 1)]);
    }
    rename(probs, 'probabilities');
    const label = g.op('ArgMax', [probs], [attr.int('axis', 1), attr.int('keepdims', 0)]);
    rename(label, 'label');
    outputs.push(tensorValueInfo('label', TensorType.INT64, ['N']));
    outputs.push(
      tensorValueInfo('probabilities', TensorType.DOUBLE, ['N', linear.task === 'binary' ? 2 : K]),
    );
  }
  return encodeOnnxModel({
    irVersion: 8,
    opsetImports: [
      { domain: '', version: 17 },
      { domain: 'ai.onnx.ml', version: 2 },
    ],
    producerName: 'kiln',
    graph: {
      name: options.graphName ?? 'kiln_linear',
      nodes: g.nodes,
      inputs: graphInputs,
      outputs,
      initializers: g.initializers,
    },
    metadata: {
      'kiln.learner': model.learner,
      'kiln.task': linear.task,
      'kiln.inputs': JSON.stringify(inputs),
      ...(linear.classes ? { 'kiln.classes': JSON.stringify(linear.classes) } : {}),
      ...options.metadata,
    },
  });
}

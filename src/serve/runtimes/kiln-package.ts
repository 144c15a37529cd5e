import type { FeatureMatrix } from '../../data/index.js';
import { KilnError } from '../../errors.js';
import type { ModelSignature } from '../../learn/index.js';
import { LinearModel, type Model, PipelineModel } from '../../learn/index.js';
import { compileRowEncoder, concatMatrices, type RowEncoder } from '../encode-rows.js';
import type {
  InferOptions,
  InputTensor,
  ModelInput,
  ModelRuntime,
  OutputTensor,
  PreparedBatch,
  RuntimeMetadata,
  TensorMetadata,
} from '../types.js';

/**
 * Serves a kiln model package: raw rows → the signature's derived features and level tables
 * (encode-rows.ts) → the model's own `predict` (preprocessing inside a PipelineModel, the fast
 * GBDT scorer inside GbdtModel). Scoring is synchronous and fast for trees, so batching is off
 * by default: merging requests would only add the wait.
 *
 * Outputs: `predictions` (FP64: probability of the positive class, one probability per class,
 * the value, or the anomaly score), `label` (BYTES, the most probable class) for classifiers,
 * and `contributions` when explain is asked for: per row and output, one value per model
 * feature plus the bias (TreeSHAP in log-odds for trees; coefficient × value for linear models),
 * feature names in the tensor's `features` parameter.
 */
export class KilnPackageRuntime implements ModelRuntime {
  readonly metadata: RuntimeMetadata;
  readonly task: string;
  readonly classes?: string[];
  readonly batchingByDefault = false;
  private readonly encoder: RowEncoder;
  private readonly nOutputs: number;

  constructor(
    readonly model: Model,
    readonly signature: ModelSignature,
  ) {
    this.task = signature.output.task;
    if (signature.output.classes) this.classes = signature.output.classes;
    this.nOutputs = model.nOutputs;
    const numericMissingOk = scoresMissingNumbers(model);
    this.encoder = compileRowEncoder(signature, (name) => {
      const input = signature.inputs.find((i) => i.name === name);
      return input?.type === 'categorical' || numericMissingOk(name);
    });
    const kindOfRaw = new Map<string, 'numeric' | 'categorical'>();
    for (const i of signature.inputs) if (!i.expr) kindOfRaw.set(i.name, i.type);
    const inputs: TensorMetadata[] = this.encoder.rawColumns.map((name) => ({
      name,
      datatype: kindOfRaw.get(name) === 'numeric' ? 'FP64' : 'BYTES',
      shape: [-1],
    }));
    const outputs: TensorMetadata[] = [
      { name: 'predictions', datatype: 'FP64', shape: this.nOutputs > 1 ? [-1, this.nOutputs] : [-1] },
    ];
    if (this.classes) outputs.push({ name: 'label', datatype: 'BYTES', shape: [-1] });
    this.metadata = {
      platform: `kiln_${signature.learner}`,
      inputs,
      outputs,
      rawColumns: this.encoder.rawColumns,
    };
  }

  prepare(input: ModelInput, limits: { maxRows: number }): PreparedBatch {
    const { nRows, columns } = input.kind === 'columns' ? input : columnsOfTensors(input.tensors);
    if (nRows > limits.maxRows) {
      throw new KilnError(
        'INVALID_PARAMETER_VALUE',
        `the request has ${nRows} rows; this server takes at most ${limits.maxRows} per request`,
      );
    }
    const { matrix, warnings } = this.encoder.encode(nRows, columns);
    return { nRows, warnings, payload: matrix };
  }

  concat(batches: PreparedBatch[]): PreparedBatch {
    if (batches.length === 1) return batches[0]!;
    let offset = 0;
    const warnings = [];
    for (const b of batches) {
      for (const w of b.warnings) warnings.push({ ...w, row: w.row + offset });
      offset += b.nRows;
    }
    return {
      nRows: offset,
      warnings,
      payload: concatMatrices(batches.map((b) => b.payload as FeatureMatrix)),
    };
  }

  run(batch: PreparedBatch, options: InferOptions): OutputTensor[] {
    const x = batch.payload as FeatureMatrix;
    const wanted = options.outputs;
    const out: OutputTensor[] = [];
    const want = (name: string) => !wanted || wanted.includes(name);
    let predictions: Float64Array | undefined;
    if (want('predictions') || want('label')) predictions = this.model.predict(x);
    const shape = this.nOutputs > 1 ? [x.nRows, this.nOutputs] : [x.nRows];
    if (predictions && want('predictions'))
      out.push({ name: 'predictions', datatype: 'FP64', shape, data: predictions });
    if (predictions && this.classes && want('label')) {
      out.push({
        name: 'label',
        datatype: 'BYTES',
        shape: [x.nRows],
        data: labelsOf(predictions, this.nOutputs, this.classes),
      });
    }
    if (options.explain || wanted?.includes('contributions')) out.push(this.contributions(x));
    for (const name of wanted ?? []) {
      if (!['predictions', 'label', 'contributions'].includes(name) || (name === 'label' && !this.classes)) {
        throw new KilnError(
          'INVALID_PARAMETER_VALUE',
          `output '${name}' is not an output of this model (outputs: ${this.metadata.outputs.map((o) => o.name).join(', ')}, contributions)`,
        );
      }
    }
    return out;
  }

  split(outputs: OutputTensor[], rowCounts: number[]): OutputTensor[][] {
    return splitRows(outputs, rowCounts);
  }

  async warm(): Promise<void> {
    // One row of all-missing values through the whole path: compiles the scorer's closures.
    const columns = new Map<string, unknown[]>(this.encoder.rawColumns.map((c) => [c, [null]]));
    try {
      const batch = this.prepare({ kind: 'columns', nRows: 1, columns }, { maxRows: 1 });
      this.run(batch, {});
    } catch {
      // A model that refuses missing values still warms on its first request; loading succeeded.
    }
  }

  async close(): Promise<void> {}

  private contributions(x: FeatureMatrix): OutputTensor {
    const { names, values, perOutput } = explainRows(this.model, x);
    const width = names.length + 1;
    const shape = this.nOutputs > 1 ? [x.nRows, this.nOutputs, width] : [x.nRows, width];
    if (perOutput !== this.nOutputs) throw new KilnError('INTERNAL_ERROR', 'explain: output count mismatch');
    return {
      name: 'contributions',
      datatype: 'FP64',
      shape,
      data: values,
      parameters: { features: [...names, 'bias'].join(',') },
    };
  }
}

/** Whether the model scores a NaN in this numeric input: trees do (learned direction); linear needs an imputer. */
function scoresMissingNumbers(model: Model): (name: string) => boolean {
  if (model instanceof PipelineModel) {
    const inner = scoresMissingNumbers(model.estimator);
    const imputed = new Set<string>();
    for (const step of model.steps) {
      const state = step.state();
      if (state.kind === 'impute') for (const f of state.fills as { name: string }[]) imputed.add(f.name);
    }
    return (name) => imputed.has(name) || inner(name);
  }
  if (model.learner === 'linear') return () => false;
  return () => true;
}

interface Explanation {
  /** Feature names (the model's inputs); values hold one more column, the bias. */
  names: string[];
  values: Float64Array;
  perOutput: number;
}

interface ShapCapable {
  shap(x: FeatureMatrix): { nOutputs: number; featureNames: readonly string[]; values: Float64Array };
}

/** Per-feature contributions to the raw score (log-odds for classifiers), bias last; they sum to predictRaw. */
function explainRows(model: Model, x: FeatureMatrix): Explanation {
  if (model instanceof PipelineModel) {
    const inner = explainRows(model.estimator, model.transform(x));
    // Expanded one-hot indicators ('column=level') fold back onto their input column.
    const inputs = model.featureNames as string[];
    const index = new Map(inputs.map((n, i) => [n, i]));
    const target = inner.names.map(
      (n) => index.get(n) ?? index.get(n.slice(0, Math.max(0, n.indexOf('=')))) ?? -1,
    );
    if (target.every((t, i) => t === i) && inner.names.length === inputs.length)
      return { ...inner, names: inputs };
    const wIn = inner.names.length + 1;
    const wOut = inputs.length + 1;
    const blocks = inner.values.length / wIn;
    const values = new Float64Array(blocks * wOut);
    for (let b = 0; b < blocks; b++) {
      for (let j = 0; j < inner.names.length; j++) {
        const t = target[j]!;
        if (t >= 0) values[b * wOut + t]! += inner.values[b * wIn + j]!;
        else values[b * wOut + inputs.length]! += inner.values[b * wIn + j]!;
      }
      values[b * wOut + inputs.length]! += inner.values[b * wIn + inner.names.length]!;
    }
    return { names: inputs, values, perOutput: inner.perOutput };
  }
  if ('shap' in model && typeof (model as unknown as ShapCapable).shap === 'function') {
    const s = (model as unknown as ShapCapable).shap(x);
    return { names: [...s.featureNames], values: s.values, perOutput: s.nOutputs };
  }
  if (model instanceof LinearModel) return explainLinear(model, x);
  throw new KilnError(
    'INVALID_PARAMETER_VALUE',
    `explain: the ${model.learner} model has no per-feature contributions`,
  );
}

function explainLinear(model: LinearModel, x: FeatureMatrix): Explanation {
  const names = model.layout.map((c) => c.name);
  const k = model.nOutputs;
  const width = names.length + 1;
  const stride = model.nCoef + 1;
  const values = new Float64Array(x.nRows * k * width);
  const byName = new Map(x.columns.map((c) => [c.name, c]));
  const intercepts = model.intercepts();
  model.layout.forEach((spec, j) => {
    const col = byName.get(spec.name);
    if (!col) throw new KilnError('INVALID_PARAMETER_VALUE', `explain: input has no column '${spec.name}'`);
    let levelMap: Int32Array | undefined;
    if (col.kind === 'categorical') {
      const fitted = new Map(spec.levels!.map((l, i) => [l, i]));
      levelMap = Int32Array.from(col.levels, (l) => fitted.get(l) ?? -1);
    }
    for (let i = 0; i < x.nRows; i++) {
      for (let o = 0; o < k; o++) {
        let c = 0;
        if (col.kind === 'numeric') c = model.weights[o * stride + spec.offset]! * col.values[i]!;
        else {
          const code = col.codes[i]! < 0 ? -1 : levelMap![col.codes[i]!]!;
          if (code >= 0) c = model.weights[o * stride + spec.offset + code]!;
        }
        values[(i * k + o) * width + j] = c;
      }
    }
  });
  for (let i = 0; i < x.nRows; i++)
    for (let o = 0; o < k; o++) values[(i * k + o) * width + names.length] = intercepts[o]!;
  return { names, values, perOutput: k };
}

function labelsOf(predictions: Float64Array, k: number, classes: string[]): string[] {
  const n = predictions.length / k;
  const out = new Array<string>(n);
  for (let i = 0; i < n; i++) {
    if (k === 1) out[i] = classes[predictions[i]! >= 0.5 ? 1 : 0]!;
    else {
      let best = 0;
      for (let c = 1; c < k; c++) if (predictions[i * k + c]! > predictions[i * k + best]!) best = c;
      out[i] = classes[best]!;
    }
  }
  return out;
}

/** OIP tensors as named columns: each tensor one column, shape [N] or [N, 1]. */
export function columnsOfTensors(tensors: InputTensor[]): {
  nRows: number;
  columns: Map<string, ArrayLike<unknown>>;
} {
  const columns = new Map<string, ArrayLike<unknown>>();
  let nRows: number | undefined;
  for (const t of tensors) {
    const rows = t.shape[0] ?? 0;
    const width = t.shape.slice(1).reduce((a, b) => a * b, 1);
    if (width !== 1) {
      throw new KilnError(
        'INVALID_PARAMETER_VALUE',
        `input '${t.name}': shape [${t.shape.join(', ')}]; this model takes one tensor per column, shape [N] or [N, 1]`,
      );
    }
    if (nRows !== undefined && rows !== nRows) {
      throw new KilnError(
        'INVALID_PARAMETER_VALUE',
        `input '${t.name}': ${rows} rows, but '${tensors[0]!.name}' has ${nRows}; every input needs the same number of rows`,
      );
    }
    nRows = rows;
    if (t.datatype !== 'BYTES' && t.datatype !== 'BOOL') {
      for (let i = 0; i < t.data.length; i++) {
        const v = t.data[i];
        if (v !== null && typeof v !== 'number') {
          throw new KilnError(
            'INVALID_PARAMETER_VALUE',
            `input '${t.name}', row ${i}: datatype ${t.datatype} needs numbers, got ${typeof v}`,
          );
        }
      }
    }
    columns.set(t.name, t.data);
  }
  return { nRows: nRows ?? 0, columns };
}

/** Splits each tensor along its first dimension by row counts. */
export function splitRows(outputs: OutputTensor[], rowCounts: number[]): OutputTensor[][] {
  if (rowCounts.length === 1) return [outputs];
  const result: OutputTensor[][] = rowCounts.map(() => []);
  for (const t of outputs) {
    const per = t.shape.slice(1).reduce((a, b) => a * b, 1);
    let at = 0;
    rowCounts.forEach((n, r) => {
      const data = (t.data as Float64Array).slice(at * per, (at + n) * per);
      result[r]!.push({ ...t, shape: [n, ...t.shape.slice(1)], data });
      at += n;
    });
  }
  return result;
}

import * as ort from 'onnxruntime-node';
import { KilnError } from '../../errors.js';
import type {
  InferOptions,
  InputTensor,
  ModelInput,
  ModelRuntime,
  OutputTensor,
  PreparedBatch,
  RuntimeMetadata,
  TensorDatatype,
  TensorMetadata,
} from '../types.js';
import { splitRows } from './kiln-package.js';

/**
 * Serves an ONNX model through onnxruntime-node: OIP tensors in, the session's outputs out, as
 * Triton's onnxruntime backend does. Models exported by kiln (`kiln.features` metadata: names,
 * kinds and level tables) also take rows by column (MLflow /invocations, or one OIP tensor per
 * column), encoded the way the export documents: one float per feature, categorical as its
 * level code, -1 for missing or unseen.
 *
 * session.run is asynchronous and runs on onnxruntime's own threads, and its per-call overhead
 * is large next to a tree walk, so batching is on by default here.
 */
type OrtType =
  | 'float32'
  | 'float64'
  | 'int32'
  | 'int64'
  | 'bool'
  | 'string'
  | 'uint8'
  | 'int8'
  | 'int16'
  | 'uint16';

const ORT_TO_OIP: Record<string, TensorDatatype> = {
  float32: 'FP32',
  float64: 'FP64',
  float16: 'FP16',
  int8: 'INT8',
  int16: 'INT16',
  int32: 'INT32',
  int64: 'INT64',
  uint8: 'UINT8',
  uint16: 'UINT16',
  uint32: 'UINT32',
  uint64: 'UINT64',
  bool: 'BOOL',
  string: 'BYTES',
};

interface KilnFeature {
  name: string;
  kind: 'numeric' | 'categorical';
  levels?: string[];
}

interface OnnxInputInfo {
  name: string;
  type: OrtType;
  shape: (number | string)[];
}

/** Per input name: the flat values and the shape, laid out as the session takes them. */
type Feeds = Map<string, { data: ArrayLike<unknown>; shape: number[] }>;

export class OnnxRuntime implements ModelRuntime {
  readonly metadata: RuntimeMetadata;
  readonly batchingByDefault = true;
  readonly task?: string;
  readonly classes?: string[];
  private readonly inputs: OnnxInputInfo[];
  private readonly features?: KilnFeature[];
  private readonly levelIndex?: (Map<string, number> | null)[];

  private constructor(
    private readonly session: ort.InferenceSession,
    features: KilnFeature[] | undefined,
    classes?: string[],
  ) {
    this.inputs = session.inputMetadata.map((m, i) => ({
      name: session.inputNames[i]!,
      type: (m.isTensor ? m.type : 'float32') as OrtType,
      shape: m.isTensor ? [...m.shape] : [],
    }));
    if (features && this.inputs.length === 1) {
      this.features = features;
      this.levelIndex = features.map((f) => (f.levels ? new Map(f.levels.map((l, j) => [l, j])) : null));
    }
    if (classes) this.classes = classes;
    const toMeta = (name: string, m: ort.InferenceSession.ValueMetadata): TensorMetadata => ({
      name,
      datatype: m.isTensor ? (ORT_TO_OIP[m.type] ?? 'BYTES') : 'BYTES',
      shape: m.isTensor ? m.shape.map((d) => (typeof d === 'number' ? d : -1)) : [-1],
    });
    this.metadata = {
      platform: 'onnxruntime_onnx',
      inputs: session.inputMetadata.map((m, i) => toMeta(session.inputNames[i]!, m)),
      outputs: session.outputMetadata.map((m, i) => toMeta(session.outputNames[i]!, m)),
      ...(this.features ? { rawColumns: this.features.map((f) => f.name) } : {}),
    };
  }

  static async create(bytes: Uint8Array): Promise<OnnxRuntime> {
    let session: ort.InferenceSession;
    try {
      session = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 1, interOpNumThreads: 1 });
    } catch (e) {
      throw new KilnError(
        'INVALID_PARAMETER_VALUE',
        `onnx model: onnxruntime cannot load it (${(e as Error).message})`,
      );
    }
    // kiln's exporter writes the feature table into the model's metadata (see learn/onnx).
    const meta = await readKilnMetadata(bytes);
    return new OnnxRuntime(session, meta.features, meta.classes);
  }

  prepare(input: ModelInput, limits: { maxRows: number }): PreparedBatch {
    const feeds: Feeds = new Map();
    let nRows: number;
    if (
      input.kind === 'columns' ||
      (this.features && !input.tensors.some((t) => t.name === this.inputs[0]!.name))
    ) {
      if (!this.features) {
        throw new KilnError(
          'INVALID_PARAMETER_VALUE',
          `this ONNX model takes tensors (${this.inputs.map((i) => i.name).join(', ')}), not named columns`,
        );
      }
      const columns =
        input.kind === 'columns'
          ? input
          : {
              nRows: input.tensors[0]?.shape[0] ?? 0,
              columns: new Map(input.tensors.map((t) => [t.name, t.data])),
            };
      nRows = columns.nRows;
      checkRows(nRows, limits.maxRows);
      feeds.set(this.inputs[0]!.name, {
        data: this.encodeColumns(columns.nRows, columns.columns),
        shape: [nRows, this.features.length],
      });
    } else {
      const byName = new Map(input.tensors.map((t) => [t.name, t]));
      for (const t of input.tensors) {
        if (!this.inputs.some((i) => i.name === t.name)) {
          throw new KilnError(
            'INVALID_PARAMETER_VALUE',
            `input '${t.name}' is not an input of the model (inputs: ${this.inputs.map((i) => i.name).join(', ')})`,
          );
        }
      }
      nRows = -1;
      for (const info of this.inputs) {
        const t = byName.get(info.name);
        if (!t) throw new KilnError('INVALID_PARAMETER_VALUE', `input '${info.name}' is missing`);
        checkTensor(t, info);
        if (nRows >= 0 && t.shape[0] !== nRows) {
          throw new KilnError(
            'INVALID_PARAMETER_VALUE',
            `input '${t.name}': ${t.shape[0]} rows, other inputs have ${nRows}`,
          );
        }
        nRows = t.shape[0]!;
        feeds.set(info.name, { data: t.data, shape: t.shape });
      }
      checkRows(nRows, limits.maxRows);
    }
    return { nRows, warnings: [], payload: feeds };
  }

  concat(batches: PreparedBatch[]): PreparedBatch {
    if (batches.length === 1) return batches[0]!;
    const feeds: Feeds = new Map();
    let nRows = 0;
    for (const b of batches) nRows += b.nRows;
    for (const info of this.inputs) {
      const parts = batches.map((b) => (b.payload as Feeds).get(info.name)!);
      const per = parts[0]!.shape.slice(1).reduce((a, c) => a * c, 1);
      const data: unknown[] = new Array(nRows * per);
      let at = 0;
      for (const p of parts) for (let i = 0; i < p.data.length; i++) data[at++] = p.data[i];
      feeds.set(info.name, { data, shape: [nRows, ...parts[0]!.shape.slice(1)] });
    }
    return { nRows, warnings: [], payload: feeds };
  }

  async run(batch: PreparedBatch, options: InferOptions): Promise<OutputTensor[]> {
    if (options.explain) {
      throw new KilnError(
        'INVALID_PARAMETER_VALUE',
        'explain: ONNX models have no per-feature contributions in kiln',
      );
    }
    const wanted = options.outputs ?? this.session.outputNames;
    for (const name of wanted) {
      if (!this.session.outputNames.includes(name)) {
        throw new KilnError(
          'INVALID_PARAMETER_VALUE',
          `output '${name}' is not an output of this model (outputs: ${this.session.outputNames.join(', ')})`,
        );
      }
    }
    const feeds: Record<string, ort.Tensor> = {};
    for (const info of this.inputs) {
      const f = (batch.payload as Feeds).get(info.name)!;
      feeds[info.name] = toOrtTensor(info.type, f.data, f.shape);
    }
    let results: ort.InferenceSession.ReturnType;
    try {
      results = await this.session.run(feeds, [...wanted]);
    } catch (e) {
      throw new KilnError(
        'INVALID_PARAMETER_VALUE',
        `onnxruntime refused the input: ${(e as Error).message.split('\n')[0]}`,
      );
    }
    return wanted.map((name) => {
      const t = results[name]!;
      const data =
        t.type === 'int64' || t.type === 'uint64'
          ? Array.from(t.data as BigInt64Array, (v) => Number(v))
          : t.type === 'string' || t.type === 'bool'
            ? Array.from(t.data as ArrayLike<string | boolean>)
            : Float64Array.from(t.data as Float32Array);
      return {
        name,
        datatype: ORT_TO_OIP[t.type] ?? 'BYTES',
        shape: t.dims.map(Number),
        data: data as ArrayLike<number>,
      } as OutputTensor;
    });
  }

  split(outputs: OutputTensor[], rowCounts: number[]): OutputTensor[][] {
    return splitRows(outputs, rowCounts);
  }

  async warm(): Promise<void> {
    if (this.features) {
      const columns = new Map(this.features.map((f) => [f.name, [null]]));
      await this.run(this.prepare({ kind: 'columns', nRows: 1, columns }, { maxRows: 1 }), {}).catch(
        () => undefined,
      );
    }
  }

  async close(): Promise<void> {
    await this.session.release();
  }

  private encodeColumns(nRows: number, columns: Map<string, ArrayLike<unknown>>): Float32Array {
    const features = this.features!;
    const names = new Set(features.map((f) => f.name));
    for (const key of columns.keys()) {
      if (!names.has(key)) {
        throw new KilnError(
          'INVALID_PARAMETER_VALUE',
          `input column '${key}' is not an input of the model (inputs: ${features.map((f) => f.name).join(', ')})`,
        );
      }
    }
    const out = new Float32Array(nRows * features.length);
    features.forEach((f, j) => {
      const values = columns.get(f.name);
      if (!values) {
        throw new KilnError(
          'INVALID_PARAMETER_VALUE',
          `input column '${f.name}' is missing (the model needs: ${features.map((x) => x.name).join(', ')})`,
        );
      }
      const index = this.levelIndex![j];
      for (let i = 0; i < nRows; i++) {
        const v = values[i];
        let x: number;
        if (index) x = v === null || v === undefined ? -1 : (index.get(String(v)) ?? -1);
        else if (v === null || v === undefined) x = Number.NaN;
        else if (typeof v === 'number') x = v;
        else if (typeof v === 'boolean') x = v ? 1 : 0;
        else {
          throw new KilnError(
            'INVALID_PARAMETER_VALUE',
            `row ${i}, field '${f.name}': expected a number, got ${typeof v} '${String(v).slice(0, 40)}'`,
          );
        }
        out[i * features.length + j] = x;
      }
    });
    return out;
  }
}

function checkRows(nRows: number, maxRows: number): void {
  if (nRows > maxRows) {
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      `the request has ${nRows} rows; this server takes at most ${maxRows} per request`,
    );
  }
}

function checkTensor(t: InputTensor, info: OnnxInputInfo): void {
  const want = ORT_TO_OIP[info.type];
  if (want && t.datatype !== want) {
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      `input '${t.name}': datatype ${t.datatype}, the model takes ${want}`,
    );
  }
  if (t.shape.length !== info.shape.length && info.shape.length > 0) {
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      `input '${t.name}': shape [${t.shape.join(', ')}] has ${t.shape.length} dimensions, the model takes [${info.shape.join(', ')}]`,
    );
  }
  info.shape.forEach((d, k) => {
    if (typeof d === 'number' && d >= 0 && k > 0 && t.shape[k] !== d) {
      throw new KilnError(
        'INVALID_PARAMETER_VALUE',
        `input '${t.name}': dimension ${k} is ${t.shape[k]}, the model takes ${d} (shape [${info.shape.join(', ')}])`,
      );
    }
  });
}

function toOrtTensor(type: OrtType, data: ArrayLike<unknown>, shape: number[]): ort.Tensor {
  const n = data.length;
  switch (type) {
    case 'float32':
      return new ort.Tensor(
        'float32',
        data instanceof Float32Array ? data : Float32Array.from(data as ArrayLike<number>, nanOfNull),
        shape,
      );
    case 'float64':
      return new ort.Tensor('float64', Float64Array.from(data as ArrayLike<number>, nanOfNull), shape);
    case 'int32':
      return new ort.Tensor('int32', Int32Array.from(data as ArrayLike<number>), shape);
    case 'int64':
      return new ort.Tensor(
        'int64',
        BigInt64Array.from({ length: n }, (_, i) => BigInt(Math.trunc(Number(data[i])))),
        shape,
      );
    case 'bool':
      return new ort.Tensor(
        'bool',
        Uint8Array.from({ length: n }, (_, i) => (data[i] ? 1 : 0)),
        shape,
      );
    case 'string':
      return new ort.Tensor(
        'string',
        Array.from({ length: n }, (_, i) => String(data[i] ?? '')),
        shape,
      );
    default:
      throw new KilnError(
        'INVALID_PARAMETER_VALUE',
        `onnx input type ${type} is not supported by kiln serve`,
      );
  }
}

function nanOfNull(v: unknown): number {
  return v === null || v === undefined ? Number.NaN : (v as number);
}

/** metadata_props of an ONNX ModelProto (field 14: StringStringEntryProto {key 1, value 2}). */
async function readKilnMetadata(
  bytes: Uint8Array,
): Promise<{ features?: KilnFeature[]; classes?: string[] }> {
  const props = new Map<string, string>();
  let pos = 0;
  const varint = (): number => {
    let result = 0;
    let shift = 0;
    for (;;) {
      const b = bytes[pos++]!;
      result += (b & 0x7f) * 2 ** shift;
      if (b < 0x80) return result;
      shift += 7;
    }
  };
  const decoder = new TextDecoder();
  try {
    while (pos < bytes.length) {
      const key = varint();
      const field = Math.floor(key / 8);
      const wire = key & 7;
      if (wire === 0) varint();
      else if (wire === 1) pos += 8;
      else if (wire === 5) pos += 4;
      else if (wire === 2) {
        const len = varint();
        if (field === 14) {
          const end = pos + len;
          let k = '';
          let v = '';
          while (pos < end) {
            const tag = varint();
            const l = varint();
            const text = decoder.decode(bytes.subarray(pos, pos + l));
            pos += l;
            if (tag >> 3 === 1) k = text;
            else if (tag >> 3 === 2) v = text;
          }
          props.set(k, v);
        } else pos += len;
      } else break;
    }
  } catch {
    return {};
  }
  const parse = <T>(key: string): T | undefined => {
    try {
      const v = props.get(key);
      return v === undefined ? undefined : (JSON.parse(v) as T);
    } catch {
      return undefined;
    }
  };
  const features = parse<KilnFeature[]>('kiln.features');
  const classes = parse<string[]>('kiln.classes');
  return { ...(features ? { features } : {}), ...(classes ? { classes } : {}) };
}

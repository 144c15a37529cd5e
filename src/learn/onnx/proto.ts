/**
 * A minimal protobuf writer for ONNX models: just the messages an exporter needs
 * (ModelProto, GraphProto, NodeProto, AttributeProto, TensorProto, ValueInfoProto,
 * OperatorSetIdProto, StringStringEntryProto), hand-written so kiln carries no protobuf
 * dependency. Field numbers follow onnx/onnx.proto3 (ONNX 1.16).
 *
 * Usage: describe the graph with plain objects, built with the small constructors below, and
 * call `encodeOnnxModel`:
 *
 *   const bytes = encodeOnnxModel({
 *     irVersion: 8,
 *     opsetImports: [{ domain: '', version: 17 }],
 *     graph: {
 *       name: 'add_one',
 *       inputs: [tensorValueInfo('x', TensorType.FLOAT, ['N', 3])],
 *       outputs: [tensorValueInfo('y', TensorType.FLOAT, ['N', 3])],
 *       initializers: [floatTensor('one', [1], [1])],
 *       nodes: [onnxNode('Add', ['x', 'one'], ['y'])],
 *     },
 *   });
 *
 * Only writing is supported: kiln reads ONNX models through onnxruntime.
 */

/** TensorProto.DataType values. */
export const TensorType = {
  FLOAT: 1,
  UINT8: 2,
  INT8: 3,
  UINT16: 4,
  INT16: 5,
  INT32: 6,
  INT64: 7,
  STRING: 8,
  BOOL: 9,
  FLOAT16: 10,
  DOUBLE: 11,
  UINT32: 12,
  UINT64: 13,
} as const;
export type TensorTypeCode = (typeof TensorType)[keyof typeof TensorType];

/** AttributeProto.AttributeType values. */
const AttributeType = {
  FLOAT: 1,
  INT: 2,
  STRING: 3,
  TENSOR: 4,
  GRAPH: 5,
  FLOATS: 6,
  INTS: 7,
  STRINGS: 8,
} as const;

/**
 * A tensor's content. Numeric tensors are written as little-endian `raw_data`; the typed
 * array must match `dataType` (Float32Array for FLOAT, Float64Array for DOUBLE,
 * BigInt64Array for INT64, Int32Array for INT32, Uint8Array for UINT8/BOOL …).
 * STRING tensors take `strings`.
 */
export interface OnnxTensor {
  name: string;
  dataType: TensorTypeCode;
  dims: readonly number[];
  raw?: ArrayBufferView;
  strings?: readonly string[];
  docString?: string;
}

export type OnnxAttribute =
  | { name: string; type: 'float'; value: number }
  | { name: string; type: 'int'; value: number }
  | { name: string; type: 'string'; value: string }
  | { name: string; type: 'tensor'; value: OnnxTensor }
  | { name: string; type: 'graph'; value: OnnxGraph }
  | { name: string; type: 'floats'; value: ArrayLike<number> }
  | { name: string; type: 'ints'; value: ArrayLike<number> }
  | { name: string; type: 'strings'; value: readonly string[] };

export interface OnnxNode {
  opType: string;
  /** '' (default) for the standard ai.onnx domain, 'ai.onnx.ml' for ML operators. */
  domain?: string;
  name?: string;
  inputs: readonly string[];
  outputs: readonly string[];
  attributes?: readonly OnnxAttribute[];
  docString?: string;
}

/** One dimension: a fixed size, a symbolic name (e.g. 'N' for the batch), or null (unknown). */
export type OnnxDim = number | string | null;

/** A graph input/output/value_info; only tensor types, which is all kiln's exporters need. */
export interface OnnxValueInfo {
  name: string;
  elemType: TensorTypeCode;
  /** undefined = rank unknown. */
  shape?: readonly OnnxDim[];
  docString?: string;
}

export interface OnnxGraph {
  name: string;
  nodes: readonly OnnxNode[];
  inputs: readonly OnnxValueInfo[];
  outputs: readonly OnnxValueInfo[];
  initializers?: readonly OnnxTensor[];
  valueInfo?: readonly OnnxValueInfo[];
  docString?: string;
}

export interface OnnxOpsetImport {
  /** '' for ai.onnx. */
  domain: string;
  version: number;
}

export interface OnnxModel {
  /** ONNX IR version: 8 for opset ≤ 18, 9 for ai.onnx.ml 4, 10 for ai.onnx.ml 5. */
  irVersion: number;
  opsetImports: readonly OnnxOpsetImport[];
  graph: OnnxGraph;
  producerName?: string;
  producerVersion?: string;
  domain?: string;
  modelVersion?: number;
  docString?: string;
  /** Free-form key/value pairs (feature names, class labels …), readable by any ONNX tool. */
  metadata?: Record<string, string>;
}

// ---------------------------------------------------------------------------------------
// Constructors, so exporters read as a list of nodes rather than nested object literals.

export function onnxNode(
  opType: string,
  inputs: readonly string[],
  outputs: readonly string[],
  attributes: readonly OnnxAttribute[] = [],
  options: { domain?: string; name?: string; docString?: string } = {},
): OnnxNode {
  return { opType, inputs, outputs, attributes, ...options };
}

export function tensorValueInfo(
  name: string,
  elemType: TensorTypeCode,
  shape?: readonly OnnxDim[],
): OnnxValueInfo {
  return { name, elemType, shape };
}

export const attr = {
  float: (name: string, value: number): OnnxAttribute => ({ name, type: 'float', value }),
  int: (name: string, value: number): OnnxAttribute => ({ name, type: 'int', value }),
  string: (name: string, value: string): OnnxAttribute => ({ name, type: 'string', value }),
  tensor: (name: string, value: OnnxTensor): OnnxAttribute => ({ name, type: 'tensor', value }),
  graph: (name: string, value: OnnxGraph): OnnxAttribute => ({ name, type: 'graph', value }),
  floats: (name: string, value: ArrayLike<number>): OnnxAttribute => ({ name, type: 'floats', value }),
  ints: (name: string, value: ArrayLike<number>): OnnxAttribute => ({ name, type: 'ints', value }),
  strings: (name: string, value: readonly string[]): OnnxAttribute => ({ name, type: 'strings', value }),
};

export function floatTensor(name: string, dims: readonly number[], data: ArrayLike<number>): OnnxTensor {
  return { name, dataType: TensorType.FLOAT, dims, raw: Float32Array.from(data) };
}

export function doubleTensor(name: string, dims: readonly number[], data: ArrayLike<number>): OnnxTensor {
  return { name, dataType: TensorType.DOUBLE, dims, raw: Float64Array.from(data) };
}

export function int64Tensor(name: string, dims: readonly number[], data: ArrayLike<number>): OnnxTensor {
  const raw = new BigInt64Array(data.length);
  for (let i = 0; i < data.length; i++) raw[i] = BigInt(data[i]!);
  return { name, dataType: TensorType.INT64, dims, raw };
}

export function int32Tensor(name: string, dims: readonly number[], data: ArrayLike<number>): OnnxTensor {
  return { name, dataType: TensorType.INT32, dims, raw: Int32Array.from(data) };
}

export function stringTensor(name: string, dims: readonly number[], data: readonly string[]): OnnxTensor {
  return { name, dataType: TensorType.STRING, dims, strings: data };
}

// ---------------------------------------------------------------------------------------
// Wire format.

const WIRE_VARINT = 0;
const WIRE_I64 = 1;
const WIRE_LEN = 2;
const WIRE_I32 = 5;

const utf8 = new TextEncoder();

/** Appends protobuf fields to a growable byte buffer. */
class ProtoWriter {
  private buf = new Uint8Array(256);
  private view = new DataView(this.buf.buffer);
  private pos = 0;

  private ensure(extra: number): void {
    if (this.pos + extra <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + extra) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  /** A non-negative or negative integer as a varint (negatives take 10 bytes, as int64 requires). */
  varint(value: number): void {
    if (!Number.isInteger(value)) throw new RangeError(`protobuf varint must be an integer, got ${value}`);
    this.ensure(10);
    if (value >= 0 && value < 0x80000000) {
      let v = value;
      while (v >= 0x80) {
        this.buf[this.pos++] = (v & 0x7f) | 0x80;
        v >>>= 7;
      }
      this.buf[this.pos++] = v;
      return;
    }
    let v = BigInt.asUintN(64, BigInt(value));
    while (v >= 0x80n) {
      this.buf[this.pos++] = Number(v & 0x7fn) | 0x80;
      v >>= 7n;
    }
    this.buf[this.pos++] = Number(v);
  }

  tag(field: number, wire: number): void {
    this.varint(field * 8 + wire);
  }

  bytes(data: Uint8Array): void {
    this.varint(data.length);
    this.ensure(data.length);
    this.buf.set(data, this.pos);
    this.pos += data.length;
  }

  // Field writers (proto3: default values are skipped unless the field is repeated).
  intField(field: number, value: number | undefined): void {
    if (value === undefined || value === 0) return;
    this.tag(field, WIRE_VARINT);
    this.varint(value);
  }

  stringField(field: number, value: string | undefined): void {
    if (value === undefined || value === '') return;
    this.tag(field, WIRE_LEN);
    this.bytes(utf8.encode(value));
  }

  /** Always written, even when empty (repeated entries and required-by-ONNX names). */
  stringAlways(field: number, value: string): void {
    this.tag(field, WIRE_LEN);
    this.bytes(utf8.encode(value));
  }

  bytesField(field: number, value: Uint8Array): void {
    this.tag(field, WIRE_LEN);
    this.bytes(value);
  }

  message(field: number, encode: (w: ProtoWriter) => void): void {
    const inner = new ProtoWriter();
    encode(inner);
    this.bytesField(field, inner.finish());
  }

  floatField(field: number, value: number): void {
    this.tag(field, WIRE_I32);
    this.ensure(4);
    this.view.setFloat32(this.pos, value, true);
    this.pos += 4;
  }

  packedFloats(field: number, values: ArrayLike<number>): void {
    if (values.length === 0) return;
    this.tag(field, WIRE_LEN);
    this.varint(values.length * 4);
    this.ensure(values.length * 4);
    for (let i = 0; i < values.length; i++) {
      this.view.setFloat32(this.pos, values[i]!, true);
      this.pos += 4;
    }
  }

  packedVarints(field: number, values: ArrayLike<number>): void {
    if (values.length === 0) return;
    const inner = new ProtoWriter();
    for (let i = 0; i < values.length; i++) inner.varint(values[i]!);
    this.bytesField(field, inner.finish());
  }

  doubleField(field: number, value: number): void {
    this.tag(field, WIRE_I64);
    this.ensure(8);
    this.view.setFloat64(this.pos, value, true);
    this.pos += 8;
  }

  finish(): Uint8Array {
    return this.buf.slice(0, this.pos);
  }
}

function writeTensor(w: ProtoWriter, t: OnnxTensor): void {
  w.packedVarints(1, t.dims);
  w.intField(2, t.dataType);
  w.stringField(8, t.name);
  if (t.dataType === TensorType.STRING) {
    for (const s of t.strings ?? []) w.stringAlways(6, s);
  } else if (t.raw) {
    // raw_data is little-endian by the ONNX spec; every platform Node runs on is little-endian.
    w.bytesField(9, new Uint8Array(t.raw.buffer, t.raw.byteOffset, t.raw.byteLength));
  }
  w.stringField(12, t.docString);
}

function writeAttribute(w: ProtoWriter, a: OnnxAttribute): void {
  w.stringAlways(1, a.name);
  switch (a.type) {
    case 'float':
      w.floatField(2, a.value);
      w.intField(20, AttributeType.FLOAT);
      break;
    case 'int':
      w.tag(3, WIRE_VARINT);
      w.varint(a.value);
      w.intField(20, AttributeType.INT);
      break;
    case 'string':
      w.bytesField(4, utf8.encode(a.value));
      w.intField(20, AttributeType.STRING);
      break;
    case 'tensor':
      w.message(5, (m) => writeTensor(m, a.value));
      w.intField(20, AttributeType.TENSOR);
      break;
    case 'graph':
      w.message(6, (m) => writeGraph(m, a.value));
      w.intField(20, AttributeType.GRAPH);
      break;
    case 'floats':
      w.packedFloats(7, a.value);
      w.intField(20, AttributeType.FLOATS);
      break;
    case 'ints':
      w.packedVarints(8, a.value);
      w.intField(20, AttributeType.INTS);
      break;
    case 'strings':
      for (const s of a.value) w.stringAlways(9, s);
      w.intField(20, AttributeType.STRINGS);
      break;
  }
}

function writeNode(w: ProtoWriter, n: OnnxNode): void {
  for (const i of n.inputs) w.stringAlways(1, i);
  for (const o of n.outputs) w.stringAlways(2, o);
  w.stringField(3, n.name);
  w.stringAlways(4, n.opType);
  for (const a of n.attributes ?? []) w.message(5, (m) => writeAttribute(m, a));
  w.stringField(6, n.docString);
  w.stringField(7, n.domain);
}

function writeValueInfo(w: ProtoWriter, v: OnnxValueInfo): void {
  w.stringAlways(1, v.name);
  // TypeProto { tensor_type (1): TypeProto.Tensor { elem_type (1), shape (2) } }
  w.message(2, (type) =>
    type.message(1, (tensor) => {
      tensor.intField(1, v.elemType);
      if (v.shape) {
        const shape = v.shape;
        tensor.message(2, (s) => {
          for (const d of shape) {
            // TensorShapeProto.Dimension { dim_value (1) | dim_param (2) }
            s.message(1, (dim) => {
              if (typeof d === 'number') {
                dim.tag(1, WIRE_VARINT);
                dim.varint(d);
              } else if (typeof d === 'string') {
                dim.stringAlways(2, d);
              }
            });
          }
        });
      }
    }),
  );
  w.stringField(3, v.docString);
}

function writeGraph(w: ProtoWriter, g: OnnxGraph): void {
  for (const n of g.nodes) w.message(1, (m) => writeNode(m, n));
  w.stringField(2, g.name);
  for (const t of g.initializers ?? []) w.message(5, (m) => writeTensor(m, t));
  w.stringField(10, g.docString);
  for (const v of g.inputs) w.message(11, (m) => writeValueInfo(m, v));
  for (const v of g.outputs) w.message(12, (m) => writeValueInfo(m, v));
  for (const v of g.valueInfo ?? []) w.message(13, (m) => writeValueInfo(m, v));
}

/** Serialises a model to the bytes of an .onnx file (an ONNX ModelProto). */
export function encodeOnnxModel(model: OnnxModel): Uint8Array {
  const w = new ProtoWriter();
  w.intField(1, model.irVersion);
  w.stringField(2, model.producerName);
  w.stringField(3, model.producerVersion);
  w.stringField(4, model.domain);
  w.intField(5, model.modelVersion);
  w.stringField(6, model.docString);
  w.message(7, (m) => writeGraph(m, model.graph));
  for (const op of model.opsetImports) {
    w.message(8, (m) => {
      m.stringField(1, op.domain);
      m.tag(2, WIRE_VARINT);
      m.varint(op.version);
    });
  }
  for (const [key, value] of Object.entries(model.metadata ?? {})) {
    w.message(14, (m) => {
      m.stringAlways(1, key);
      m.stringAlways(2, value);
    });
  }
  return w.finish();
}

import { KilnError } from '../errors.js';

/**
 * kiln's model container: one binary blob per model, typed-array buffers stored raw (8-byte
 * aligned so they can be viewed without copying), plus a JSON header for everything small.
 *
 * Layout (little-endian):
 *   magic "KILNMDL1" (8 bytes) | u32 header length | header JSON (utf-8) | pad to 8 | buffers…
 * The header is { format: 1, learner, meta, buffers: [{ name, dtype, offset, length }] } where
 * offset is relative to the first buffer byte and length counts elements.
 */
const MAGIC = 'KILNMDL1';
export const MODEL_FORMAT_VERSION = 1;

export type TypedArray =
  | Float64Array
  | Float32Array
  | Int32Array
  | Uint32Array
  | Int16Array
  | Uint16Array
  | Int8Array
  | Uint8Array;

const DTYPES = {
  f64: Float64Array,
  f32: Float32Array,
  i32: Int32Array,
  u32: Uint32Array,
  i16: Int16Array,
  u16: Uint16Array,
  i8: Int8Array,
  u8: Uint8Array,
} as const;
type DType = keyof typeof DTYPES;

function dtypeOf(a: TypedArray): DType {
  for (const [name, ctor] of Object.entries(DTYPES)) {
    if (a instanceof ctor) return name as DType;
  }
  throw new KilnError('INVALID_PARAMETER_VALUE', 'model buffer is not a supported typed array');
}

export interface ModelContainer {
  learner: string;
  meta: unknown;
  buffers: Record<string, TypedArray>;
}

export function encodeModel(model: ModelContainer): Uint8Array {
  const entries: { name: string; dtype: DType; offset: number; length: number }[] = [];
  let offset = 0;
  for (const [name, arr] of Object.entries(model.buffers)) {
    const dtype = dtypeOf(arr);
    entries.push({ name, dtype, offset, length: arr.length });
    offset += align8(arr.byteLength);
  }
  const header = new TextEncoder().encode(
    JSON.stringify({
      format: MODEL_FORMAT_VERSION,
      learner: model.learner,
      meta: model.meta,
      buffers: entries,
    }),
  );
  const headStart = 12;
  const bufStart = align8(headStart + header.length);
  const out = new Uint8Array(bufStart + offset);
  out.set(new TextEncoder().encode(MAGIC), 0);
  new DataView(out.buffer).setUint32(8, header.length, true);
  out.set(header, headStart);
  for (const e of entries) {
    const arr = model.buffers[e.name]!;
    out.set(new Uint8Array(arr.buffer, arr.byteOffset, arr.byteLength), bufStart + e.offset);
  }
  return out;
}

export function decodeModel(bytes: Uint8Array): ModelContainer {
  const fail = (why: string) => new KilnError('INVALID_PARAMETER_VALUE', `not a kiln model file: ${why}`);
  if (bytes.length < 12 || new TextDecoder().decode(bytes.subarray(0, 8)) !== MAGIC) {
    throw fail('missing KILNMDL1 magic bytes');
  }
  const headerLen = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(8, true);
  if (12 + headerLen > bytes.length) throw fail('header runs past the end of the file');
  let header: {
    format: number;
    learner: string;
    meta: unknown;
    buffers: { name: string; dtype: DType; offset: number; length: number }[];
  };
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(12, 12 + headerLen)));
  } catch {
    throw fail('header is not valid JSON');
  }
  if (header.format !== MODEL_FORMAT_VERSION) {
    throw fail(`format version ${header.format} is not supported (this kiln reads ${MODEL_FORMAT_VERSION})`);
  }
  const bufStart = align8(12 + headerLen);
  // Copy into a fresh aligned buffer so typed views are valid whatever the source alignment.
  const body = bytes.slice(bufStart);
  const buffers: Record<string, TypedArray> = {};
  for (const e of header.buffers) {
    const ctor = DTYPES[e.dtype];
    if (!ctor) throw fail(`buffer '${e.name}' has unknown dtype '${e.dtype}'`);
    const end = e.offset + e.length * ctor.BYTES_PER_ELEMENT;
    if (end > body.length) throw fail(`buffer '${e.name}' runs past the end of the file`);
    buffers[e.name] = new ctor(body.buffer, body.byteOffset + e.offset, e.length);
  }
  return { learner: header.learner, meta: header.meta, buffers };
}

function align8(n: number): number {
  return (n + 7) & ~7;
}

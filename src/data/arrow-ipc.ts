import { KilnError } from '../errors.js';

/**
 * A reader for Arrow IPC files and streams (the `.arrow` / `.feather` v2 / `.arrows` formats),
 * written here because DuckDB's arrow extension is not bundled and cannot be downloaded. It
 * covers the flat column types data files use — signed and unsigned integers, float32/64, bool,
 * utf8 / large utf8, date, timestamp — plus dictionary-encoded columns; anything else (nested
 * types, decimals, compressed bodies, big-endian files) is refused with an error naming the file
 * and column. Flatbuffers are read directly: a table starts with an offset to its vtable, whose
 * entries give each field's position.
 */
export type ArrowColumnType =
  | { kind: 'int'; bits: 8 | 16 | 32 | 64; signed: boolean }
  | { kind: 'float'; bits: 32 | 64 }
  | { kind: 'bool' }
  | { kind: 'utf8'; large: boolean }
  | { kind: 'date'; unit: 'day' | 'millisecond' }
  | {
      kind: 'timestamp';
      unit: 'second' | 'millisecond' | 'microsecond' | 'nanosecond';
      timezone: string | null;
    };

export interface ArrowField {
  name: string;
  type: ArrowColumnType;
  /** For a dictionary-encoded field: dictionary id and index type. */
  dictionary?: { id: number; index: ArrowColumnType };
}

/** One decoded column of one record batch; `valid[i]` false = null. */
export interface ArrowColumnBatch {
  length: number;
  valid: (i: number) => boolean;
  /** The value at i as a JS value (number, bigint, boolean, string); epoch units for dates/timestamps. */
  value: (i: number) => number | bigint | boolean | string;
}

export interface ArrowTable {
  fields: ArrowField[];
  batches: { length: number; columns: ArrowColumnBatch[] }[];
}

class Flat {
  constructor(
    readonly view: DataView,
    readonly base: number,
  ) {}
  u8(p: number) {
    return this.view.getUint8(p);
  }
  i16(p: number) {
    return this.view.getInt16(p, true);
  }
  i32(p: number) {
    return this.view.getInt32(p, true);
  }
  u32(p: number) {
    return this.view.getUint32(p, true);
  }
  i64(p: number) {
    return Number(this.view.getBigInt64(p, true));
  }
  /** Position of field `index` in table `t`, or 0 when absent. */
  field(t: number, index: number): number {
    const vt = t - this.i32(t);
    const vtSize = this.view.getUint16(vt, true);
    const entry = 4 + 2 * index;
    if (entry >= vtSize) return 0;
    const off = this.view.getUint16(vt + entry, true);
    return off === 0 ? 0 : t + off;
  }
  indirect(p: number): number {
    return p + this.u32(p);
  }
  table(t: number, index: number): number {
    const p = this.field(t, index);
    return p === 0 ? 0 : this.indirect(p);
  }
  string(t: number, index: number): string | null {
    const p = this.field(t, index);
    if (p === 0) return null;
    const s = this.indirect(p);
    const len = this.u32(s);
    return Buffer.from(this.view.buffer, this.view.byteOffset + s + 4, len).toString('utf8');
  }
  /** Start and length of a vector field. */
  vector(t: number, index: number): { start: number; length: number } {
    const p = this.field(t, index);
    if (p === 0) return { start: 0, length: 0 };
    const v = this.indirect(p);
    return { start: v + 4, length: this.u32(v) };
  }
  scalarI16(t: number, index: number, fallback: number): number {
    const p = this.field(t, index);
    return p === 0 ? fallback : this.i16(p);
  }
  scalarI32(t: number, index: number, fallback: number): number {
    const p = this.field(t, index);
    return p === 0 ? fallback : this.i32(p);
  }
  scalarU8(t: number, index: number, fallback: number): number {
    const p = this.field(t, index);
    return p === 0 ? fallback : this.u8(p);
  }
  scalarI64(t: number, index: number, fallback: number): number {
    const p = this.field(t, index);
    return p === 0 ? fallback : this.i64(p);
  }
}

const TIME_UNITS = ['second', 'millisecond', 'microsecond', 'nanosecond'] as const;

function fail(file: string, what: string): never {
  throw new KilnError('INVALID_PARAMETER_VALUE', `${file}: ${what}`);
}

function readType(fb: Flat, typeTag: number, t: number, file: string, column: string): ArrowColumnType {
  switch (typeTag) {
    case 2: {
      const bits = fb.scalarI32(t, 0, 0);
      if (![8, 16, 32, 64].includes(bits))
        fail(file, `column '${column}': integer width ${bits} is not supported`);
      return { kind: 'int', bits: bits as 8 | 16 | 32 | 64, signed: fb.scalarU8(t, 1, 0) === 1 };
    }
    case 3: {
      const precision = fb.scalarI16(t, 0, 0);
      if (precision === 0) fail(file, `column '${column}': half-precision floats are not supported`);
      return { kind: 'float', bits: precision === 1 ? 32 : 64 };
    }
    case 5:
      return { kind: 'utf8', large: false };
    case 20:
      return { kind: 'utf8', large: true };
    case 6:
      return { kind: 'bool' };
    case 8:
      return { kind: 'date', unit: fb.scalarI16(t, 0, 1) === 0 ? 'day' : 'millisecond' };
    case 10:
      return {
        kind: 'timestamp',
        unit: TIME_UNITS[fb.scalarI16(t, 0, 0)] ?? 'second',
        timezone: fb.string(t, 1),
      };
    default:
      return fail(
        file,
        `column '${column}': Arrow type #${typeTag} is not supported (flat numbers, bool, utf8, date and timestamp are)`,
      );
  }
}

function readSchema(fb: Flat, schema: number, file: string): ArrowField[] {
  if (fb.scalarI16(schema, 0, 0) !== 0) fail(file, 'big-endian Arrow files are not supported');
  const { start, length } = fb.vector(schema, 1);
  const fields: ArrowField[] = [];
  for (let i = 0; i < length; i++) {
    const f = fb.indirect(start + 4 * i);
    const name = fb.string(f, 0) ?? `column${i}`;
    const children = fb.vector(f, 5);
    if (children.length > 0) fail(file, `column '${name}': nested Arrow types are not supported`);
    const type = readType(fb, fb.scalarU8(f, 2, 0), fb.table(f, 3), file, name);
    const dict = fb.table(f, 4);
    const field: ArrowField = { name, type };
    if (dict !== 0) {
      const indexTable = fb.table(dict, 1);
      const index: ArrowColumnType =
        indexTable === 0 ? { kind: 'int', bits: 32, signed: true } : readType(fb, 2, indexTable, file, name);
      field.dictionary = { id: fb.scalarI64(dict, 0, 0), index };
    }
    fields.push(field);
  }
  return fields;
}

interface BufferRef {
  offset: number;
  length: number;
}

function decodeColumn(
  type: ArrowColumnType,
  length: number,
  nullCount: number,
  buffers: BufferRef[],
  body: Uint8Array,
): ArrowColumnBatch {
  const slice = (b: BufferRef) => body.subarray(b.offset, b.offset + b.length);
  const validity = nullCount > 0 && buffers[0].length > 0 ? slice(buffers[0]) : null;
  const valid = validity ? (i: number) => ((validity[i >> 3] >> (i & 7)) & 1) === 1 : () => true;
  const aligned = (b: BufferRef, width: number) => {
    const bytes = slice(b);
    return bytes.byteOffset % width === 0 ? bytes : bytes.slice();
  };
  const data = buffers[1];
  switch (type.kind) {
    case 'bool': {
      const bits = slice(data);
      return { length, valid, value: (i) => ((bits[i >> 3] >> (i & 7)) & 1) === 1 };
    }
    case 'float': {
      const b = aligned(data, type.bits / 8);
      const arr =
        type.bits === 32
          ? new Float32Array(b.buffer, b.byteOffset, length)
          : new Float64Array(b.buffer, b.byteOffset, length);
      return { length, valid, value: (i) => arr[i] };
    }
    case 'int':
    case 'date':
    case 'timestamp': {
      const bits =
        type.kind === 'int' ? type.bits : type.kind === 'date' ? (type.unit === 'day' ? 32 : 64) : 64;
      const signed = type.kind === 'int' ? type.signed : true;
      const b = aligned(data, bits / 8);
      const arr =
        bits === 8
          ? signed
            ? new Int8Array(b.buffer, b.byteOffset, length)
            : new Uint8Array(b.buffer, b.byteOffset, length)
          : bits === 16
            ? signed
              ? new Int16Array(b.buffer, b.byteOffset, length)
              : new Uint16Array(b.buffer, b.byteOffset, length)
            : bits === 32
              ? signed
                ? new Int32Array(b.buffer, b.byteOffset, length)
                : new Uint32Array(b.buffer, b.byteOffset, length)
              : signed
                ? new BigInt64Array(b.buffer, b.byteOffset, length)
                : new BigUint64Array(b.buffer, b.byteOffset, length);
      return { length, valid, value: (i) => arr[i] };
    }
    case 'utf8': {
      const offsetsBytes = aligned(buffers[1], type.large ? 8 : 4);
      const offsets = type.large
        ? new BigInt64Array(offsetsBytes.buffer, offsetsBytes.byteOffset, length + 1)
        : new Int32Array(offsetsBytes.buffer, offsetsBytes.byteOffset, length + 1);
      const chars = slice(buffers[2]);
      return {
        length,
        valid,
        value: (i) =>
          Buffer.from(
            chars.buffer,
            chars.byteOffset + Number(offsets[i]),
            Number(offsets[i + 1]) - Number(offsets[i]),
          ).toString('utf8'),
      };
    }
  }
}

function buffersPerType(type: ArrowColumnType): number {
  return type.kind === 'utf8' ? 3 : 2;
}

/** Parses a whole Arrow IPC file or stream held in memory. */
export function readArrowIpc(bytes: Uint8Array, file: string): ArrowTable {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = Buffer.from(bytes.subarray(0, 6)).toString('latin1');
  let pos = magic === 'ARROW1' ? 8 : 0;
  let fields: ArrowField[] | undefined;
  const dictionaries = new Map<number, ArrowColumnBatch>();
  const batches: ArrowTable['batches'] = [];
  while (pos + 4 <= bytes.length) {
    let size = view.getInt32(pos, true);
    pos += 4;
    if (size === -1) {
      if (pos + 4 > bytes.length) break;
      size = view.getInt32(pos, true);
      pos += 4;
    }
    if (size === 0) break; // end of stream
    if (size < 0 || pos + size > bytes.length) fail(file, 'not a valid Arrow IPC file (bad message length)');
    const fb = new Flat(view, pos);
    const message = pos + view.getUint32(pos, true);
    const headerType = fb.scalarU8(message, 1, 0);
    const header = fb.table(message, 2);
    const bodyLength = fb.scalarI64(message, 3, 0);
    pos += size;
    const body = bytes.subarray(pos, pos + bodyLength);
    pos += bodyLength;
    if (headerType === 1) {
      fields = readSchema(fb, header, file);
      continue;
    }
    if (!fields) fail(file, 'not a valid Arrow IPC file (no schema before the data)');
    if (headerType === 2) {
      const id = fb.scalarI64(header, 0, 0);
      const batch = fb.table(header, 1);
      const field = fields.find((f) => f.dictionary?.id === id);
      if (!field) fail(file, `dictionary ${id} belongs to no column`);
      const [column] = readBatch(
        fb,
        batch,
        [{ name: field.name, type: field.type }],
        body,
        file,
        new Map(),
      ).columns;
      dictionaries.set(id, column);
      continue;
    }
    if (headerType === 3) batches.push(readBatch(fb, header, fields, body, file, dictionaries));
  }
  if (!fields) fail(file, 'not a valid Arrow IPC file (no schema found)');
  return { fields, batches };
}

function readBatch(
  fb: Flat,
  batch: number,
  fields: ArrowField[],
  body: Uint8Array,
  file: string,
  dictionaries: Map<number, ArrowColumnBatch>,
): { length: number; columns: ArrowColumnBatch[] } {
  if (fb.table(batch, 3) !== 0) fail(file, 'compressed Arrow record batches are not supported');
  const length = fb.scalarI64(batch, 0, 0);
  const nodes = fb.vector(batch, 1);
  const buffers = fb.vector(batch, 2);
  let node = 0;
  let buffer = 0;
  const columns = fields.map((field) => {
    const nodeAt = nodes.start + 16 * node++;
    const n = fb.i64(nodeAt);
    const nulls = fb.i64(nodeAt + 8);
    const type = field.dictionary ? field.dictionary.index : field.type;
    const refs: BufferRef[] = [];
    for (let k = 0; k < buffersPerType(type); k++) {
      const at = buffers.start + 16 * buffer++;
      refs.push({ offset: fb.i64(at), length: fb.i64(at + 8) });
    }
    const column = decodeColumn(type, n, nulls, refs, body);
    if (!field.dictionary) return column;
    const dict = dictionaries.get(field.dictionary.id);
    if (!dict) fail(file, `column '${field.name}': its dictionary is missing`);
    return { length: n, valid: column.valid, value: (i: number) => dict.value(Number(column.value(i))) };
  });
  return { length, columns };
}

/** The DuckDB type a field is read as. */
export function duckTypeOfArrow(type: ArrowColumnType): string {
  switch (type.kind) {
    case 'int':
      return type.bits === 64 && !type.signed
        ? 'UBIGINT'
        : type.bits <= 16 || (type.bits === 32 && type.signed)
          ? 'INTEGER'
          : 'BIGINT';
    case 'float':
      return type.bits === 32 ? 'FLOAT' : 'DOUBLE';
    case 'bool':
      return 'BOOLEAN';
    case 'utf8':
      return 'VARCHAR';
    case 'date':
      return 'DATE';
    case 'timestamp':
      return 'TIMESTAMP';
  }
}

const UNIT_PER_MS = { second: 1e-3, millisecond: 1, microsecond: 1e3, nanosecond: 1e6 };

/** A JSON literal for one value, in the form DuckDB's read_json parses into `duckTypeOfArrow`. */
export function jsonLiteral(type: ArrowColumnType, v: number | bigint | boolean | string): string {
  switch (type.kind) {
    case 'float':
      return Number.isFinite(v as number) ? String(v) : `"${String(v)}"`;
    case 'int':
      return String(v);
    case 'bool':
      return v ? 'true' : 'false';
    case 'utf8':
      return JSON.stringify(v);
    case 'date': {
      const ms = type.unit === 'day' ? Number(v) * 86_400_000 : Number(v);
      return `"${new Date(ms).toISOString().slice(0, 10)}"`;
    }
    case 'timestamp': {
      // Microsecond precision survives via the fractional part; nanoseconds are truncated.
      const big = BigInt(v as bigint);
      const perMs = UNIT_PER_MS[type.unit];
      const ms = type.unit === 'second' ? Number(big) * 1000 : Number(big / BigInt(perMs));
      const micros =
        type.unit === 'microsecond'
          ? Number(big % 1000n)
          : type.unit === 'nanosecond'
            ? Number((big / 1000n) % 1000n)
            : 0;
      const iso = new Date(ms).toISOString().replace('Z', '');
      return `"${micros > 0 ? `${iso}${String(micros).padStart(3, '0')}` : iso}"`;
    }
  }
}

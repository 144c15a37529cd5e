import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readArrowIpc } from './arrow-ipc.js';
import { readRows, sqlString, withDuck } from './duckdb.js';
import { prepareDataset } from './prepare.js';

/**
 * A tiny Arrow IPC *writer*, only for these tests: no Arrow writer is installed on this machine,
 * and vega-datasets' flights-200k.arrow only has integer and float columns. It lays flatbuffers
 * out top-down (vtable, table, then children, so every offset points forward), which the
 * format allows.
 */
type Scalar = { k: 'u8' | 'bool' | 'i16' | 'i32' | 'i64'; v: number };
type Obj =
  | { t: 'table'; fields: (Scalar | Obj | undefined)[] }
  | { t: 'string'; v: string }
  | { t: 'tables'; items: Obj[] }
  | { t: 'structs'; bytes: Buffer; count: number };
const u8 = (v: number): Scalar => ({ k: 'u8', v });
const bool = (v: boolean): Scalar => ({ k: 'bool', v: v ? 1 : 0 });
const i16 = (v: number): Scalar => ({ k: 'i16', v });
const i32 = (v: number): Scalar => ({ k: 'i32', v });
const i64 = (v: number): Scalar => ({ k: 'i64', v });
const table = (...fields: (Scalar | Obj | undefined)[]): Obj => ({ t: 'table', fields });
const str = (v: string): Obj => ({ t: 'string', v });

function encodeFlatbuffer(root: Obj): Buffer {
  const out: number[] = [];
  const align = (n: number) => {
    while (out.length % n) out.push(0);
  };
  const put = (bytes: Buffer) => {
    for (const b of bytes) out.push(b);
  };
  const patch = (at: number, value: number) => {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(value);
    for (let i = 0; i < 4; i++) out[at + i] = b[i];
  };
  const size = (s: Scalar) => (s.k === 'i64' ? 8 : s.k === 'i32' ? 4 : s.k === 'i16' ? 2 : 1);
  const write = (o: Obj): number => {
    if (o.t === 'string') {
      align(4);
      const at = out.length;
      const b = Buffer.from(o.v, 'utf8');
      const len = Buffer.alloc(4);
      len.writeUInt32LE(b.length);
      put(len);
      put(b);
      out.push(0);
      return at;
    }
    if (o.t === 'structs') {
      align(8);
      out.push(0, 0, 0, 0); // keeps the elements 8-aligned after the 4-byte length
      const at = out.length;
      const len = Buffer.alloc(4);
      len.writeUInt32LE(o.count);
      put(len);
      put(o.bytes);
      return at;
    }
    if (o.t === 'tables') {
      align(4);
      const at = out.length;
      const len = Buffer.alloc(4);
      len.writeUInt32LE(o.items.length);
      put(len);
      const slots = o.items.map(() => {
        const s = out.length;
        out.push(0, 0, 0, 0);
        return s;
      });
      o.items.forEach((item, i) => {
        patch(slots[i], write(item) - slots[i]);
      });
      return at;
    }
    // Table: inline layout of the fields first, to size the vtable.
    let offset = 4;
    const positions = o.fields.map((f) => {
      if (!f) return 0;
      const w = 'k' in f ? size(f) : 4;
      offset = Math.ceil(offset / w) * w;
      const p = offset;
      offset += w;
      return p;
    });
    const tableSize = Math.ceil(offset / 8) * 8;
    align(2);
    const vtable = Buffer.alloc(4 + 2 * o.fields.length);
    vtable.writeUInt16LE(vtable.length, 0);
    vtable.writeUInt16LE(tableSize, 2);
    positions.forEach((p, i) => {
      vtable.writeUInt16LE(p, 4 + 2 * i);
    });
    const vtAt = out.length;
    put(vtable);
    align(8);
    const at = out.length;
    const body = Buffer.alloc(tableSize);
    body.writeInt32LE(at - vtAt, 0);
    o.fields.forEach((f, i) => {
      if (!f || !('k' in f)) return;
      const p = positions[i];
      if (f.k === 'i64') body.writeBigInt64LE(BigInt(f.v), p);
      else if (f.k === 'i32') body.writeInt32LE(f.v, p);
      else if (f.k === 'i16') body.writeInt16LE(f.v, p);
      else body.writeUInt8(f.v, p);
    });
    put(body);
    o.fields.forEach((f, i) => {
      if (f && !('k' in f)) patch(at + positions[i], write(f) - (at + positions[i]));
    });
    return at;
  };
  out.push(0, 0, 0, 0, 0, 0, 0, 0); // root offset, then padding so tables start 8-aligned
  patch(0, write(root));
  return Buffer.from(out);
}

interface Column {
  type: Obj;
  typeTag: number;
  dictionary?: { id: number };
  nullCount: number;
  buffers: Buffer[];
}

function pad8(b: Buffer): Buffer {
  return Buffer.concat([b, Buffer.alloc((8 - (b.length % 8)) % 8)]);
}

function message(headerType: number, header: Obj, body: Buffer[]): Buffer {
  const padded = body.map(pad8);
  const bodyLength = padded.reduce((s, b) => s + b.length, 0);
  const fb = pad8(encodeFlatbuffer(table(i16(4), u8(headerType), header, i64(bodyLength))));
  const prefix = Buffer.alloc(8);
  prefix.writeInt32LE(-1, 0);
  prefix.writeInt32LE(fb.length, 4);
  return Buffer.concat([prefix, fb, ...padded]);
}

function recordBatch(
  length: number,
  columns: { length: number; nullCount: number; buffers: Buffer[] }[],
): [Obj, Buffer[]] {
  const nodes = Buffer.alloc(16 * columns.length);
  columns.forEach((c, i) => {
    nodes.writeBigInt64LE(BigInt(c.length), 16 * i);
    nodes.writeBigInt64LE(BigInt(c.nullCount), 16 * i + 8);
  });
  const all = columns.flatMap((c) => c.buffers);
  const refs = Buffer.alloc(16 * all.length);
  let offset = 0;
  all.forEach((b, i) => {
    refs.writeBigInt64LE(BigInt(offset), 16 * i);
    refs.writeBigInt64LE(BigInt(b.length), 16 * i + 8);
    offset += pad8(b).length;
  });
  return [
    table(
      i64(length),
      { t: 'structs', bytes: nodes, count: columns.length },
      { t: 'structs', bytes: refs, count: all.length },
    ),
    all,
  ];
}

function validity(values: unknown[]): Buffer {
  const b = Buffer.alloc(Math.ceil(values.length / 8));
  values.forEach((v, i) => {
    if (v !== null) b[i >> 3] |= 1 << (i & 7);
  });
  return b;
}

function utf8Buffers(values: (string | null)[]): Buffer[] {
  const offsets = Buffer.alloc(4 * (values.length + 1));
  const chunks: Buffer[] = [];
  let at = 0;
  values.forEach((v, i) => {
    const b = Buffer.from(v ?? '', 'utf8');
    chunks.push(b);
    at += b.length;
    offsets.writeInt32LE(at, 4 * (i + 1));
  });
  return [validity(values), offsets, Buffer.concat(chunks)];
}

const dir = mkdtempSync(path.join(os.tmpdir(), 'kiln-arrow-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** name (utf8, with a null), ok (bool), at (timestamp µs, UTC), day (date32), city (dictionary utf8), n (int64). */
function sampleArrowFile(): Buffer {
  const names = ['ada', null, 'grace', 'ünïcode'];
  const ok = [true, false, null, true];
  const at = [Date.UTC(2001, 0, 1, 13, 45, 7) * 1000 + 123, 0, Date.UTC(2024, 1, 29) * 1000, null];
  const day = [0, 11_000, null, 19_782];
  const cityCodes = [1, 0, 1, null];
  const n = [1, -2, 9_007_199_254_740_993n, null];
  const fields: Column[] = [];
  const field = (name: string, c: Column) =>
    table(
      str(name),
      bool(true),
      u8(c.typeTag),
      c.type,
      c.dictionary ? table(i64(c.dictionary.id), table(i32(32), bool(true))) : undefined,
    );
  const okBits = Buffer.alloc(1);
  ok.forEach((v, i) => {
    if (v) okBits[0] |= 1 << i;
  });
  const at64 = Buffer.alloc(32);
  at.forEach((v, i) => {
    at64.writeBigInt64LE(BigInt(v ?? 0), 8 * i);
  });
  const day32 = Buffer.alloc(16);
  day.forEach((v, i) => {
    day32.writeInt32LE(v ?? 0, 4 * i);
  });
  const codes = Buffer.alloc(16);
  cityCodes.forEach((v, i) => {
    codes.writeInt32LE(v ?? 0, 4 * i);
  });
  const n64 = Buffer.alloc(32);
  n.forEach((v, i) => {
    n64.writeBigInt64LE(BigInt(v ?? 0), 8 * i);
  });
  fields.push(
    { type: table(), typeTag: 5, nullCount: 1, buffers: utf8Buffers(names) },
    { type: table(), typeTag: 6, nullCount: 1, buffers: [validity(ok), okBits] },
    { type: table(i16(2), str('UTC')), typeTag: 10, nullCount: 1, buffers: [validity(at), at64] },
    { type: table(i16(0)), typeTag: 8, nullCount: 1, buffers: [validity(day), day32] },
    { type: table(), typeTag: 5, dictionary: { id: 7 }, nullCount: 1, buffers: [validity(cityCodes), codes] },
    { type: table(i32(64), bool(true)), typeTag: 2, nullCount: 1, buffers: [validity(n), n64] },
  );
  const names6 = ['name', 'ok', 'at', 'day', 'city', 'n'];
  const schema = table(i16(0), { t: 'tables', items: fields.map((c, i) => field(names6[i], c)) });
  const dictValues = ['Lyon', 'Oslo'];
  const [dictBatch, dictBody] = recordBatch(2, [
    { length: 2, nullCount: 0, buffers: utf8Buffers(dictValues) },
  ]);
  const [batch, body] = recordBatch(
    4,
    fields.map((c) => ({ length: 4, nullCount: c.nullCount, buffers: c.buffers })),
  );
  const eos = Buffer.alloc(8);
  eos.writeInt32LE(-1, 0);
  return Buffer.concat([
    Buffer.from('ARROW1\0\0', 'latin1'),
    message(1, schema, []),
    message(2, table(i64(7), dictBatch), dictBody),
    message(3, batch, body),
    eos,
  ]);
}

describe('Arrow IPC reader', () => {
  it('decodes utf8, bool, timestamp, date, dictionary and int64 columns with nulls', () => {
    const t = readArrowIpc(sampleArrowFile(), 'sample.arrow');
    expect(t.fields.map((f) => [f.name, f.type.kind])).toEqual([
      ['name', 'utf8'],
      ['ok', 'bool'],
      ['at', 'timestamp'],
      ['day', 'date'],
      ['city', 'utf8'],
      ['n', 'int'],
    ]);
    const [batch] = t.batches;
    const get = (c: number) =>
      Array.from({ length: 4 }, (_, i) => (batch.columns[c].valid(i) ? batch.columns[c].value(i) : null));
    expect(get(0)).toEqual(['ada', null, 'grace', 'ünïcode']);
    expect(get(1)).toEqual([true, false, null, true]);
    expect(get(4)).toEqual(['Oslo', 'Lyon', 'Oslo', null]);
    expect(get(5)).toEqual([1n, -2n, 9_007_199_254_740_993n, null]);
  });

  it('ingests the same values through DuckDB', async () => {
    const file = path.join(dir, 'sample.arrow');
    writeFileSync(file, sampleArrowFile());
    const p = await prepareDataset(file, { outPath: path.join(dir, 'sample.parquet') });
    expect(p.schema.columns.map((c) => [c.name, c.type])).toEqual([
      ['name', 'categorical'],
      ['ok', 'boolean'],
      ['at', 'datetime'],
      ['day', 'datetime'],
      ['city', 'categorical'],
      ['n', 'integer'],
    ]);
    const rows = await withDuck((conn) =>
      readRows(
        conn,
        `SELECT name, ok, strftime("at", '%Y-%m-%d %H:%M:%S.%f') AS "at", strftime("day", '%Y-%m-%d') AS "day", city, CAST(n AS VARCHAR) AS n
           FROM read_parquet(${sqlString(p.parquetPath)})`,
        'x',
      ),
    );
    expect(rows).toEqual([
      { name: 'ada', ok: true, at: '2001-01-01 13:45:07.000123', day: '1970-01-01', city: 'Oslo', n: '1' },
      { name: null, ok: false, at: '1970-01-01 00:00:00.000000', day: '2000-02-13', city: 'Lyon', n: '-2' },
      {
        name: 'grace',
        ok: null,
        at: '2024-02-29 00:00:00.000000',
        day: null,
        city: 'Oslo',
        n: '9007199254740993',
      },
      { name: 'ünïcode', ok: true, at: null, day: '2024-02-29', city: null, n: null },
    ]);
  });
});

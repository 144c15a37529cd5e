import { copyFileSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KilnError } from '../errors.js';
import { readRows, runSql, sqlString, withDuck } from './duckdb.js';
import { prepareDataset } from './prepare.js';
import { parseDataSpec } from './spec.js';

const FLIGHTS = path.resolve('node_modules/vega-datasets/data/flights-3m.parquet');
let dir: string;
let n = 0;
const out = () => path.join(dir, `out-${n++}.parquet`);

async function rowsOf(file: string): Promise<Record<string, unknown>[]> {
  return withDuck((conn) => readRows(conn, `SELECT * FROM read_parquet(${sqlString(file)})`, file));
}

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'kiln-prepare-'));
  await withDuck(async (conn) => {
    const slice = `(SELECT * FROM read_parquet(${sqlString(FLIGHTS)}) LIMIT 2000)`;
    await runSql(
      conn,
      `COPY ${slice} TO ${sqlString(path.join(dir, 'flights.parquet'))} (FORMAT parquet)`,
      'fixture',
    );
    await runSql(
      conn,
      `COPY ${slice} TO ${sqlString(path.join(dir, 'flights.csv'))} (FORMAT csv, HEADER)`,
      'fixture',
    );
    await runSql(
      conn,
      `COPY ${slice} TO ${sqlString(path.join(dir, 'flights.ndjson'))} (FORMAT json)`,
      'fixture',
    );
    await runSql(
      conn,
      `COPY ${slice} TO ${sqlString(path.join(dir, 'flights.json'))} (FORMAT json, ARRAY true)`,
      'fixture',
    );
    await runSql(
      conn,
      `COPY (SELECT * FROM ${slice} LIMIT 1000) TO ${sqlString(path.join(dir, 'part-1.csv'))} (FORMAT csv, HEADER)`,
      'fixture',
    );
    await runSql(
      conn,
      `COPY (SELECT * FROM ${slice} OFFSET 1000) TO ${sqlString(path.join(dir, 'part-2.csv'))} (FORMAT csv, HEADER)`,
      'fixture',
    );
  });
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('prepareDataset: formats round-trip', () => {
  it('reads Parquet, CSV, JSON, NDJSON and a CSV glob to the same normalised rows and schema', async () => {
    const reference = await prepareDataset(path.join(dir, 'flights.parquet'), { outPath: out() });
    expect(reference.rows).toBe(2000);
    expect(reference.schema.columns.map((c) => [c.name, c.type])).toEqual([
      ['date', 'datetime'],
      ['delay', 'integer'],
      ['distance', 'integer'],
      ['origin', 'categorical'],
      ['destination', 'categorical'],
    ]);
    const refRows = await rowsOf(reference.parquetPath);
    const source = await withDuck((conn) =>
      readRows(conn, `SELECT * FROM read_parquet(${sqlString(FLIGHTS)}) LIMIT 2000`, 'source'),
    );
    expect(refRows).toEqual(source);
    for (const file of ['flights.csv', 'flights.json', 'flights.ndjson', 'part-*.csv']) {
      const p = await prepareDataset(path.join(dir, file), { outPath: out() });
      expect(p.schema, file).toEqual(reference.schema);
      expect(await rowsOf(p.parquetPath), file).toEqual(refRows);
      // Same rows, same schema → same normalised bytes → same content address, whatever the format.
      expect(p.hash, file).toBe(reference.hash);
    }
    const glob = await prepareDataset(path.join(dir, 'part-*.csv'), { outPath: out() });
    expect(glob.source.files.map((f) => path.basename(f))).toEqual(['part-1.csv', 'part-2.csv']);
  });

  it('reads Arrow IPC (flights-200k.arrow) to the same rows as its JSON twin', async () => {
    const data = path.resolve('node_modules/vega-datasets/data');
    const arrow = await prepareDataset(path.join(data, 'flights-200k.arrow'), { outPath: out() });
    const json = await prepareDataset(path.join(data, 'flights-200k.json'), { outPath: out() });
    expect(arrow.rows).toBe(200_000);
    expect(arrow.schema).toEqual(json.schema);
    const [diff] = await withDuck((conn) =>
      readRows(
        conn,
        `SELECT count(*) FILTER (WHERE a.delay IS DISTINCT FROM j.delay OR a.distance IS DISTINCT FROM j.distance) AS mismatched,
                max(abs(a.time - j.time)) AS worst, count(*) AS n
           FROM (SELECT row_number() OVER () AS r, * FROM read_parquet(${sqlString(arrow.parquetPath)})) a
           JOIN (SELECT row_number() OVER () AS r, * FROM read_parquet(${sqlString(json.parquetPath)})) j USING (r)`,
        'compare',
      ),
    );
    expect(Number(diff.n)).toBe(200_000);
    expect(Number(diff.mismatched)).toBe(0);
    // The Arrow file stores time as float32; the JSON as decimal text.
    expect(Number(diff.worst)).toBeLessThan(1e-5);
  });

  it('reads CSV options: delimiter, quoting, null strings, no header', async () => {
    const file = path.join(dir, 'semi.csv');
    writeFileSync(file, 'id;name;score\n1;"a; quoted";1.5\n2;NA;\n3;"say ""hi""";NA\n');
    const p = await prepareDataset(file, {
      outPath: out(),
      spec: { source: { csv: { header: true, delimiter: ';', nulls: ['NA', ''] } } },
    });
    const rows = await rowsOf(p.parquetPath);
    expect(rows.map((r) => [Number(r.id), r.name, r.score])).toEqual([
      [1, 'a; quoted', 1.5],
      [2, null, null],
      [3, 'say "hi"', null],
    ]);
    const noHeader = path.join(dir, 'nohead.csv');
    writeFileSync(noHeader, '1,x\n2,y\n');
    const q = await prepareDataset(noHeader, {
      outPath: out(),
      spec: { source: { csv: { header: false } } },
    });
    expect(q.rows).toBe(2);
    expect(q.schema.columns).toHaveLength(2);
  });

  it('gives the same hash for the same bytes twice and a different one for different data or schema', async () => {
    const copy = path.join(dir, 'copy.parquet');
    copyFileSync(path.join(dir, 'flights.parquet'), copy);
    const a = await prepareDataset(path.join(dir, 'flights.parquet'), { outPath: out() });
    const b = await prepareDataset(copy, { outPath: out() });
    const c = await prepareDataset(path.join(dir, 'part-1.csv'), { outPath: out() });
    const d = await prepareDataset(copy, {
      outPath: out(),
      spec: { columns: { delay: { type: 'numeric' } } },
    });
    expect(b.hash).toBe(a.hash);
    expect(a.hash).toMatch(/^[0-9a-f]{64}$/);
    expect(c.hash).not.toBe(a.hash);
    expect(d.hash).not.toBe(a.hash);
  });

  it('applies type overrides, fixed levels, derived features, select and drop', async () => {
    const p = await prepareDataset(path.join(dir, 'flights.parquet'), {
      outPath: out(),
      spec: {
        columns: { distance: { type: 'numeric' }, origin: { type: 'text' } },
        features: {
          hour: 'hour(date)',
          late: 'delay > 15',
          band: { expr: 'distance // 1000', type: 'categorical' },
        },
        drop: ['destination'],
      },
    }).catch((e) => e);
    // `//` is outside the serving subset, so the spec is refused with its place named.
    expect(p).toBeInstanceOf(KilnError);
    expect((p as KilnError).message).toMatch(/features.band: '\/\/' is not allowed/);

    const q = await prepareDataset(path.join(dir, 'flights.parquet'), {
      outPath: out(),
      spec: {
        columns: { distance: { type: 'numeric' }, origin: { type: 'text' } },
        features: {
          hour: 'hour(date)',
          late: 'delay > 15',
          band: { expr: 'floor(distance / 1000)', type: 'categorical' },
        },
        drop: ['destination'],
      },
    });
    expect(q.schema.columns.map((c) => [c.name, c.type])).toEqual([
      ['date', 'datetime'],
      ['delay', 'integer'],
      ['distance', 'numeric'],
      ['origin', 'text'],
      ['hour', 'integer'],
      ['late', 'boolean'],
      ['band', 'categorical'],
    ]);
    const bands = await withDuck((conn) =>
      readRows(
        conn,
        `SELECT DISTINCT CAST(floor(distance / 1000) AS VARCHAR) AS b FROM (SELECT * FROM read_parquet(${sqlString(FLIGHTS)}) LIMIT 2000) ORDER BY b`,
        'x',
      ),
    );
    expect(q.schema.columns.find((c) => c.name === 'band')!.levels).toEqual(bands.map((r) => r.b));
    const rows = await rowsOf(q.parquetPath);
    const exact = await withDuck((conn) =>
      readRows(
        conn,
        `SELECT hour(date) AS hour, delay > 15 AS late FROM read_parquet(${sqlString(FLIGHTS)}) LIMIT 2000`,
        'x',
      ),
    );
    expect(rows.map((r) => [Number(r.hour), r.late])).toEqual(exact.map((r) => [Number(r.hour), r.late]));
    const sel = await prepareDataset(path.join(dir, 'flights.parquet'), {
      outPath: out(),
      spec: { features: { hour: 'hour(date)' }, select: ['hour', 'origin'] },
    });
    expect(sel.schema.columns.map((c) => c.name)).toEqual(['hour', 'origin']);
  });
});

describe('prepareDataset: bad input names file, row and column', () => {
  const attempt = (file: string, spec?: Parameters<typeof prepareDataset>[1]['spec']) =>
    prepareDataset(file, { outPath: path.join(dir, 'never.parquet'), spec, specPlace: 'data.yaml' }).then(
      () => {
        throw new Error('expected a KilnError');
      },
      (e: unknown) => {
        expect(e).toBeInstanceOf(KilnError);
        expect(existsSync(path.join(dir, 'never.parquet'))).toBe(false);
        return (e as KilnError).message;
      },
    );

  it('missing file', async () => {
    expect(await attempt(path.join(dir, 'nope.csv'))).toMatch(/nope\.csv: file does not exist/);
    expect(await attempt(path.join(dir, 'nothing-*.csv'))).toMatch(/nothing-\*\.csv: no file matches/);
  });

  it('unreadable format', async () => {
    const junk = path.join(dir, 'junk.parquet');
    writeFileSync(junk, 'this is not parquet at all');
    expect(await attempt(junk)).toMatch(/junk\.parquet/);
    const unknown = path.join(dir, 'data.xyz');
    writeFileSync(unknown, 'a,b\n1,2\n');
    expect(await attempt(unknown)).toMatch(/data\.xyz: cannot tell the format/);
    const badJson = path.join(dir, 'bad.json');
    writeFileSync(badJson, '[{"a": 1}, {"a": ');
    expect(await attempt(badJson)).toMatch(/bad\.json/);
  });

  it('CSV row with the wrong number of fields', async () => {
    const file = path.join(dir, 'fields.csv');
    writeFileSync(file, 'a,b,c\n1,x,2.5\n2,y,3.5\n3,z\n');
    expect(await attempt(file)).toMatch(/fields\.csv: line 4.*wrong number of fields.*3,z/);
    const extra = path.join(dir, 'extra.csv');
    writeFileSync(extra, 'a,b\n1,2\n3,4,5\n');
    expect(await attempt(extra)).toMatch(/extra\.csv: line 3.*wrong number of fields/);
  });

  it('value that does not parse as its declared type', async () => {
    const file = path.join(dir, 'types.csv');
    writeFileSync(file, 'id,amount\n1,10\n2,11\n3,twelve\n4,13\n');
    expect(await attempt(file, { columns: { amount: { type: 'integer' } } })).toMatch(
      /types\.csv: row 3 \(line 4\), column 'amount': value 'twelve' does not parse as integer/,
    );
    const json = path.join(dir, 'types.ndjson');
    writeFileSync(json, '{"id": 1, "when": "2001-01-01"}\n{"id": 2, "when": "yesterday"}\n');
    expect(await attempt(json, { columns: { when: { type: 'datetime' } } })).toMatch(
      /types\.ndjson: row 2, column 'when': value 'yesterday' does not parse as datetime/,
    );
    const frac = path.join(dir, 'frac.csv');
    writeFileSync(frac, 'x\n1\n2.5\n');
    expect(await attempt(frac, { columns: { x: { type: 'integer' } } })).toMatch(
      /row 2 \(line 3\), column 'x': value '2.5'/,
    );
    // Past DuckDB's type-sniffing sample: the column was sniffed as BIGINT, then a row fails to cast.
    const late = path.join(dir, 'late.csv');
    const lines = ['x,y'];
    for (let i = 0; i < 30_000; i++) lines.push(`${i},a`);
    lines.push('oops,b', '7,c');
    writeFileSync(late, `${lines.join('\n')}\n`);
    expect(await attempt(late)).toMatch(/late\.csv: line 30002, column 'x': .*"oops"/);
    const pq = path.join(dir, 'types.parquet');
    await withDuck((conn) =>
      runSql(
        conn,
        `COPY (SELECT * FROM (VALUES ('1'), ('2'), ('x3'), ('4')) t(v)) TO ${sqlString(pq)} (FORMAT parquet)`,
        'fixture',
      ),
    );
    expect(await attempt(pq, { columns: { v: { type: 'integer' } } })).toMatch(
      /types\.parquet: row 3, column 'v': value 'x3' does not parse as integer/,
    );
    // In a glob, the row is counted within the file it came from.
    writeFileSync(path.join(dir, 'multi-1.csv'), 'n\n1\n2\n');
    writeFileSync(path.join(dir, 'multi-2.csv'), 'n\n3\nfour\n');
    expect(await attempt(path.join(dir, 'multi-*.csv'), { columns: { n: { type: 'integer' } } })).toMatch(
      /multi-2\.csv: row 2 \(line 3\), column 'n': value 'four'/,
    );
    const levels = path.join(dir, 'levels.csv');
    writeFileSync(levels, 'c\nA\nB\nC\n');
    expect(await attempt(levels, { columns: { c: { type: 'categorical', levels: ['A', 'B'] } } })).toMatch(
      /levels\.csv: row 3 \(line 4\), column 'c': value 'C' is not one of the declared levels/,
    );
  });

  it('empty file, and a header with no rows', async () => {
    const empty = path.join(dir, 'empty.csv');
    writeFileSync(empty, '');
    expect(await attempt(empty)).toMatch(/empty\.csv: file is empty/);
    const headerOnly = path.join(dir, 'header.csv');
    writeFileSync(headerOnly, 'a,b\n');
    expect(await attempt(headerOnly)).toMatch(/header\.csv: file has no data rows/);
  });

  it('a column named in the spec that does not exist', async () => {
    const file = path.join(dir, 'flights.parquet');
    expect(await attempt(file, { columns: { delya: { type: 'numeric' } } })).toMatch(
      /data\.yaml: columns\.delya: column 'delya' does not exist/,
    );
    expect(await attempt(file, { features: { h: 'hour(departure)' } })).toMatch(
      /data\.yaml: features\.h: column 'departure' does not exist/,
    );
    expect(await attempt(file, { select: ['origin', 'dest'] })).toMatch(
      /data\.yaml: select\/drop: column 'dest' does not exist/,
    );
    expect(await attempt(file, { target: 'late' })).toMatch(
      /data\.yaml: target: column 'late' does not exist/,
    );
  });

  it('a spec that drops every column, and a derived feature with an empty name', async () => {
    const file = path.join(dir, 'two-cols.csv');
    writeFileSync(file, 'a,b\n1,2\n3,4\n');
    expect(await attempt(file, { drop: ['a', 'b'] })).toBe(
      'data.yaml: drop: no column is left (2 column(s), all dropped); a dataset needs at least one',
    );
    expect(await attempt(file, { select: ['a'], drop: ['a'] })).toMatch(
      /data\.yaml: select\/drop: no column is left/,
    );
    expect(() => parseDataSpec({ features: { '': 'a + 1' } }, 'data.yaml')).toThrow(
      "data.yaml: features.'': a derived feature needs a name",
    );
  });

  it('a file that is not Arrow IPC', async () => {
    const file = path.join(dir, 'x.arrow');
    writeFileSync(file, 'ARROW1\0\0garbage');
    expect(await attempt(file)).toMatch(/x\.arrow: not a valid Arrow IPC file/);
  });
});

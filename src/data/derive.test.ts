import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { compileDerivations } from './derive.js';
import { readRows, sqlString, toJsonRow, withDuck } from './duckdb.js';
import { prepareDataset } from './prepare.js';

const FLIGHTS = path.resolve('node_modules/vega-datasets/data/flights-3m.parquet');
const dir = mkdtempSync(path.join(os.tmpdir(), 'kiln-derive-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('compileDerivations (serving-time features)', () => {
  it('computes every derived feature of a version exactly as ingest stored it', async () => {
    const src = path.join(dir, 'src.parquet');
    await withDuck((conn) =>
      readRows(
        conn,
        `COPY (SELECT * FROM read_parquet(${sqlString(FLIGHTS)}) USING SAMPLE 3000 ROWS (reservoir, 5)) TO ${sqlString(src)} (FORMAT parquet)`,
        'fixture',
      ),
    );
    const prepared = await prepareDataset(src, {
      outPath: path.join(dir, 'data.parquet'),
      spec: {
        features: {
          hour: 'hour(date)',
          weekday: 'dayofweek(date)',
          late: 'delay > 15',
          km: 'round(distance * 1.609344, 1)',
          band: { expr: 'floor(distance / 1000)', type: 'categorical' },
          slot: { expr: 'hour(date) // 6', type: 'categorical' },
          route: "origin || '-' || destination",
          bucket: "CASE WHEN delay IS NULL THEN 'unknown' WHEN delay > 60 THEN 'long' ELSE 'short' END",
        },
      },
    }).catch((e) => e);
    // `//` is outside the serving subset: refused before anything runs.
    expect(String(prepared)).toMatch(/features\.slot: '\/\/' is not allowed/);

    const ok = await prepareDataset(src, {
      outPath: path.join(dir, 'data.parquet'),
      spec: {
        features: {
          hour: 'hour(date)',
          weekday: 'dayofweek(date)',
          late: 'delay > 15',
          km: 'round(distance * 1.609344, 1)',
          band: { expr: 'floor(distance / 1000)', type: 'categorical' },
          slot: { expr: 'floor(hour(date) / 6)::INTEGER', type: 'categorical' },
          route: "origin || '-' || destination",
          bucket: "CASE WHEN delay IS NULL THEN 'unknown' WHEN delay > 60 THEN 'long' ELSE 'short' END",
        },
      },
    });
    const stored = (
      await withDuck((conn) =>
        readRows(conn, `SELECT * FROM read_parquet(${sqlString(ok.parquetPath)})`, 'stored'),
      )
    ).map(toJsonRow);
    const derive = compileDerivations(ok.schema);
    const derivedNames = ok.schema.columns.filter((c) => c.expr).map((c) => c.name);
    expect(derivedNames).toEqual(['hour', 'weekday', 'late', 'km', 'band', 'slot', 'route', 'bucket']);
    for (const row of stored) {
      // Serving receives the raw columns only (datetimes as ISO text, as JSON requests carry them).
      const input = {
        date: row.date,
        delay: row.delay,
        distance: row.distance,
        origin: row.origin,
        destination: row.destination,
      };
      const got = derive(input);
      for (const name of derivedNames) {
        if (got[name] !== row[name])
          throw new Error(
            `${name}: served ${String(got[name])}, stored ${String(row[name])} for ${JSON.stringify(input)}`,
          );
      }
    }
    expect(stored.length).toBe(3000);
  });
});

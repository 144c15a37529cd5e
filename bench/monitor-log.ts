/**
 * Prediction-log ingest: rows/s for SqlPredictionLog.write in the batch sizes the serving hook
 * produces, on SQLite (and Postgres when KILN_TEST_POSTGRES is set), and for
 * SegmentPredictionLog (Parquet segments in a local artifact store, segment index in SQLite),
 * close() included so every row is on disk. `npm run bench:monitor-log [-- --rows N --json]`.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openArtifactStore } from '../src/artifacts/index.js';
import { SqlPredictionLog } from '../src/monitor/index.js';
import { SegmentPredictionLog } from '../src/monitor/segment-log.js';
import type { PredictionRecord, PredictionSink } from '../src/serve/index.js';
import { dropPostgresDatabase, freshPostgresDatabase } from '../src/store/fresh-postgres-database.js';
import { openStore, type Store } from '../src/store/index.js';

const argv = process.argv.slice(2);
const rows = Number(argv[argv.indexOf('--rows') + 1] || 200_000);
const batch = 256;

function records(n: number, offset: number): PredictionRecord[] {
  return Array.from({ length: n }, (_, i) => {
    const k = offset + i;
    const inputs: Record<string, unknown[]> = {};
    for (let f = 0; f < 10; f++) inputs[`f${f}`] = [(k * (f + 1)) % 997];
    return {
      time: new Date(1_767_225_600_000 + k).toISOString(),
      requestId: `req-${k}`,
      model: 'bench',
      version: '1',
      shadow: false,
      latencyMs: 1.5,
      inputs,
      outputs: { proba: [(k % 100) / 100] },
    };
  });
}

async function measure(store: Store, log: PredictionSink = new SqlPredictionLog(store)): Promise<number> {
  const start = performance.now();
  for (let i = 0; i < rows; i += batch) await log.write(records(Math.min(batch, rows - i), i));
  await log.close?.();
  return rows / ((performance.now() - start) / 1000);
}

const results: Record<string, number> = {};
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-bench-plog-'));
const sqlite = await openStore({ db: path.join(dir, 'kiln.db') });
results.sqlite_rows_per_s = await measure(sqlite);
const artifacts = await openArtifactStore(path.join(dir, 'artifacts'));
results.parquet_segments_rows_per_s = await measure(sqlite, new SegmentPredictionLog(sqlite, artifacts));
await sqlite.close();
fs.rmSync(dir, { recursive: true, force: true });
const pgUrl = process.env.KILN_TEST_POSTGRES;
if (pgUrl) {
  const name = `kiln_bench_plog_${process.pid}`;
  const pg = await openStore({ db: await freshPostgresDatabase(pgUrl, name) });
  results.postgres_rows_per_s = await measure(pg);
  await pg.close();
  await dropPostgresDatabase(pgUrl, name);
}
if (argv.includes('--json')) console.log(JSON.stringify({ rows, batch, ...results }));
else
  for (const [k, v] of Object.entries(results))
    console.log(`${k}: ${Math.round(v)} (${rows} rows, 11 fields each, batches of ${batch})`);

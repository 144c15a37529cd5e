import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { DuckDBAppender, DuckDBConnection } from '@duckdb/node-api';
import type { ArtifactStore } from '../artifacts/index.js';
import { readRows, runSql, sqlIdent, sqlString, withDuck } from '../data/index.js';
import type { PredictionRecord, PredictionSink } from '../serve/index.js';
import type { Store } from '../store/index.js';
import {
  checkPredictionLogOptions,
  type PredictionLogOptions,
  sampledIn,
  scrubFields,
} from './log-options.js';

/**
 * The prediction log as Parquet segments in the artifact store, for volumes the metadata DB's
 * JSON rows cannot carry (docs/monitoring.md has the measurement). Serving's `PredictionHook`
 * hands batches to `write`, which samples and scrubs them like SqlPredictionLog and buffers them;
 * every `segmentRows` logged rows (and on `close`) each model version's buffered rows become one
 * Parquet file under `monitor/predictions/<model>/<version>/`, recorded in
 * `monitor_log_segments` (model, version, time range) so a window reads only the segments that
 * overlap it. A segment's rows are lost if the process dies before it is written: the price of
 * not writing per batch (a crash loses at most `segmentRows` logged rows, as a full hook buffer
 * would drop them).
 *
 * One Parquet row per logged row (a request of n rows is n rows, `row_index` 0…n−1):
 * `request_id, row_index, request_rows, time (ms), shadow, latency_ms, error`, then each input as a typed
 * column `in.<name>` (DOUBLE when every value of the segment is a number, boolean or null,
 * else VARCHAR), each numeric output's row value as `out.<name>` (the first value of the row's
 * slice), and the request's whole outputs as JSON on its row 0 (`outputs_json`). Labels arrive
 * later and segments are immutable: they go to `monitor_labels` (attachLabels) and are joined
 * on request id when a window is read. Retention deletes whole segments whose newest row is
 * older than the cutoff.
 */
export interface SegmentLogOptions extends PredictionLogOptions {
  /** Logged rows buffered before segments are written (default 100 000). */
  segmentRows?: number;
}

const PRUNE_EVERY_MS = 60_000;
export const SEGMENT_PREFIX = 'monitor/predictions';

export class SegmentPredictionLog implements PredictionSink {
  private readonly opts: ReturnType<typeof checkPredictionLogOptions>;
  private readonly segmentRows: number;
  private buffer = new Map<string, PredictionRecord[]>();
  private bufferedRows = 0;
  private lastPrune = 0;
  private writing: Promise<void> = Promise.resolve();

  constructor(
    private readonly store: Store,
    private readonly artifacts: ArtifactStore,
    options: SegmentLogOptions = {},
    private readonly now: () => number = Date.now,
  ) {
    this.opts = checkPredictionLogOptions(options);
    this.segmentRows = options.segmentRows ?? 100_000;
  }

  async write(records: PredictionRecord[]): Promise<void> {
    for (const r of records) {
      if (!sampledIn(r.requestId, this.opts.sampleRate)) continue;
      const scrubbed = {
        ...r,
        inputs: scrubFields(r.inputs, this.opts),
        outputs: scrubFields(r.outputs, this.opts),
      };
      const key = JSON.stringify([r.model, r.version]);
      const list = this.buffer.get(key) ?? [];
      list.push(scrubbed);
      this.buffer.set(key, list);
      this.bufferedRows += requestRowCount(r);
    }
    if (this.bufferedRows >= this.segmentRows) await this.flush();
    const t = this.now();
    if (this.opts.retentionMs !== undefined && t - this.lastPrune >= PRUNE_EVERY_MS) {
      this.lastPrune = t;
      await pruneSegments(this.store, this.artifacts, t - this.opts.retentionMs);
    }
  }

  /** Writes every buffered row into segments now. */
  async flush(): Promise<void> {
    const groups = [...this.buffer.values()];
    this.buffer = new Map();
    this.bufferedRows = 0;
    const run = this.writing.then(async () => {
      for (const g of groups) await writeSegment(this.store, this.artifacts, g, this.now());
    });
    this.writing = run.catch(() => undefined);
    await run;
  }

  async close(): Promise<void> {
    await this.flush();
  }
}

function requestRowCount(r: PredictionRecord): number {
  let n = 0;
  for (const v of Object.values(r.inputs)) if (Array.isArray(v) && v.length > n) n = v.length;
  if (n === 0) {
    const out = r.outputs.predictions;
    if (Array.isArray(out)) n = out.length;
  }
  return Math.max(n, 1);
}

const isNumberLike = (v: unknown) =>
  v === null || v === undefined || typeof v === 'number' || typeof v === 'boolean';

/** One model version's records as one Parquet segment, recorded in the segment index. */
async function writeSegment(
  store: Store,
  artifacts: ArtifactStore,
  records: PredictionRecord[],
  now: number,
): Promise<void> {
  if (records.length === 0) return;
  const { model, version } = records[0]!;
  const inputNames = new Set<string>();
  const outputNames = new Set<string>();
  for (const r of records) {
    for (const k of Object.keys(r.inputs)) inputNames.add(k);
    for (const k of Object.keys(r.outputs)) outputNames.add(k);
  }
  const inputs = [...inputNames].sort();
  const numericInput = inputs.map((k) => records.every((r) => (r.inputs[k] ?? []).every(isNumberLike)));
  const outputs = [...outputNames]
    .sort()
    .filter((k) => records.every((r) => (r.outputs[k] ?? []).every(isNumberLike)));
  let timeMin = Number.POSITIVE_INFINITY;
  let timeMax = Number.NEGATIVE_INFINITY;
  let rows = 0;
  const tmp = path.join(os.tmpdir(), `kiln-segment-${randomUUID()}.parquet`);
  try {
    await withDuck(async (conn) => {
      const columns = [
        'request_id VARCHAR',
        'row_index INTEGER',
        'request_rows INTEGER',
        'time BIGINT',
        'shadow BOOLEAN',
        'latency_ms DOUBLE',
        'error VARCHAR',
        'outputs_json VARCHAR',
        ...inputs.map((k, j) => `${sqlIdent(`in.${k}`)} ${numericInput[j] ? 'DOUBLE' : 'VARCHAR'}`),
        ...outputs.map((k) => `${sqlIdent(`out.${k}`)} DOUBLE`),
      ];
      await runSql(conn, `CREATE TEMP TABLE seg (${columns.join(', ')})`, 'prediction log segment');
      const a = await conn.createAppender('seg');
      for (const r of records) {
        const t = Date.parse(r.time);
        if (t < timeMin) timeMin = t;
        if (t > timeMax) timeMax = t;
        const n = requestRowCount(r);
        for (let i = 0; i < n; i++) {
          a.appendVarchar(r.requestId);
          a.appendInteger(i);
          a.appendInteger(n);
          a.appendBigInt(BigInt(t));
          a.appendBoolean(r.shadow);
          a.appendDouble(r.latencyMs);
          if (r.error) a.appendVarchar(r.error);
          else a.appendNull();
          if (i === 0) a.appendVarchar(JSON.stringify(r.outputs));
          else a.appendNull();
          for (let j = 0; j < inputs.length; j++) appendValue(a, r.inputs[inputs[j]!]?.[i], numericInput[j]!);
          for (const k of outputs) {
            const out = r.outputs[k];
            const per = out ? out.length / n : 0;
            appendValue(a, per >= 1 ? out![Math.floor(i * per)] : undefined, true);
          }
          a.endRow();
          rows++;
        }
      }
      a.closeSync();
      await copyToParquet(conn, tmp);
    });
    const where = `${SEGMENT_PREFIX}/${encodeURIComponent(model)}/${encodeURIComponent(version)}/${timeMin}-${randomUUID()}.parquet`;
    await artifacts.put(where, fs.createReadStream(tmp));
    await store.db
      .insertInto('monitor_log_segments')
      .values({
        model,
        version,
        path: where,
        requests: records.length,
        rows,
        time_min: timeMin,
        time_max: timeMax,
        created_time: now,
      })
      .execute();
  } finally {
    fs.rmSync(tmp, { force: true });
  }
}

function appendValue(a: DuckDBAppender, v: unknown, numeric: boolean): void {
  if (v === null || v === undefined) a.appendNull();
  else if (numeric) a.appendDouble(typeof v === 'boolean' ? (v ? 1 : 0) : (v as number));
  else a.appendVarchar(String(v));
}

async function copyToParquet(conn: DuckDBConnection, file: string): Promise<void> {
  // Ordered by time so a window's row groups can be skipped by their min/max statistics.
  await runSql(
    conn,
    `COPY (SELECT * FROM seg ORDER BY time, request_id, row_index) TO ${sqlString(file)} (FORMAT parquet, COMPRESSION zstd)`,
    'prediction log segment',
  );
}

/** Deletes the segments whose newest row is older than `before`; returns the logged rows removed. */
export async function pruneSegments(store: Store, artifacts: ArtifactStore, before: number): Promise<number> {
  const old = await store.db
    .selectFrom('monitor_log_segments')
    .select(['segment_id', 'path', 'rows'])
    .where('time_max', '<', before)
    .execute();
  let removed = 0;
  for (const s of old) {
    // The index row first: a reader never finds a segment listed whose file is gone.
    await store.db.deleteFrom('monitor_log_segments').where('segment_id', '=', s.segment_id).execute();
    await artifacts.delete(s.path);
    removed += Number(s.rows);
  }
  return removed;
}

export interface LoggedSegment {
  path: string;
  version: string;
  /** A path DuckDB reads (the artifact's local file, or a downloaded copy). */
  file: string;
}

/**
 * The segments of a model (version) that overlap [from, to), as files DuckDB can read: local
 * artifacts in place, others downloaded into `scratch` (removed by the caller).
 */
export async function windowSegments(
  store: Store,
  artifacts: ArtifactStore,
  w: { model: string; version?: string; from: number; to: number },
  scratch: () => string,
): Promise<LoggedSegment[]> {
  let q = store.db
    .selectFrom('monitor_log_segments')
    .select(['path', 'version'])
    .where('model', '=', w.model)
    .where('time_min', '<', w.to)
    .where('time_max', '>=', w.from);
  if (w.version !== undefined) q = q.where('version', '=', w.version);
  const rows = await q.orderBy('time_min').execute();
  const out: LoggedSegment[] = [];
  for (const r of rows) {
    let file = artifacts.localPath?.(r.path);
    if (!file) {
      file = path.join(scratch(), `${out.length}.parquet`);
      const body = await artifacts.get(r.path);
      await new Promise<void>((resolve, reject) => {
        const sink = fs.createWriteStream(file!);
        body.pipe(sink).on('finish', resolve).on('error', reject);
        body.on('error', reject);
      });
    }
    out.push({ path: r.path, version: r.version, file });
  }
  return out;
}

/**
 * Where request ids were logged in segments: id → the model and time of its request (every
 * segment is searched; DuckDB reads only the request_id, row_index and time columns).
 */
export async function findSegmentRequests(
  store: Store,
  artifacts: ArtifactStore,
  ids: string[],
): Promise<Map<string, { model: string; time: number }>> {
  const found = new Map<string, { model: string; time: number }>();
  if (ids.length === 0) return found;
  const all = await store.db.selectFrom('monitor_log_segments').select(['model']).distinct().execute();
  let scratch: string | undefined;
  try {
    for (const { model } of all) {
      const segments = await windowSegments(
        store,
        artifacts,
        { model, from: Number.MIN_SAFE_INTEGER, to: Number.MAX_SAFE_INTEGER },
        () => {
          scratch ??= fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-labels-'));
          return scratch;
        },
      );
      if (segments.length === 0) continue;
      await withDuck(async (conn) => {
        await conn.run('CREATE TEMP TABLE ids (request_id VARCHAR)');
        const a = await conn.createAppender('ids');
        for (const id of ids) {
          a.appendVarchar(id);
          a.endRow();
        }
        a.closeSync();
        const rows = await readRows(
          conn,
          `SELECT request_id, min(time) AS time FROM read_parquet([${segments.map((s) => sqlString(s.file)).join(', ')}], union_by_name = true)
            WHERE row_index = 0 AND request_id IN (SELECT request_id FROM ids) GROUP BY request_id`,
          'prediction log segments',
        );
        for (const r of rows) found.set(String(r.request_id), { model, time: Number(r.time) });
      });
    }
  } finally {
    if (scratch) fs.rmSync(scratch, { recursive: true, force: true });
  }
  return found;
}

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ArtifactStore } from '../artifacts/index.js';
import {
  type DatasetProfile,
  forEachChunk,
  levelCodeSql,
  mergeProfiles,
  readRows,
  sqlIdent,
  sqlString,
  withDuck,
} from '../data/index.js';
import { KilnError } from '../errors.js';
import type { Store } from '../store/index.js';
import { windowSegments } from './segment-log.js';
import { WindowProfiler } from './window-profile.js';

/**
 * One pass over a model version's logged predictions in a time window, page by page (never the
 * whole window in memory as rows): the inputs go into mergeable profiles on the reference's
 * grids, one per time bucket, so the window's profile is their merge and per-bucket drift
 * (NannyML-style chunks, the report's timeline) costs no second pass; predictions, latencies and
 * labels go into typed arrays with their bucket index.
 *
 * A logged request can carry several rows; its latency counts once per request, its inputs and
 * predictions once per row. A label is one value per request id, so it is paired with the
 * prediction only for one-row requests (the usual shape of online serving); other labelled
 * requests are counted in `labelledSkipped`.
 */
export interface WindowScanOptions {
  model: string;
  /** One version (default: every version of the model). */
  version?: string;
  /** Inclusive start and exclusive end, ms since the epoch. */
  from: number;
  to: number;
  /** The reference profile: its columns named in `features` are profiled. */
  reference: DatasetProfile;
  features: string[];
  /** Equal time buckets the window is cut into (default 1). */
  buckets?: number;
  /** The output holding the prediction (default `predictions`). */
  output?: string;
  /** Rows read per query (default 2000). */
  pageRows?: number;
  /**
   * The artifact store holding Parquet log segments (segment-log.ts): the window is then the
   * rows of the metadata-DB log and of every overlapping segment. Without it, the DB log only.
   */
  artifacts?: ArtifactStore;
  onProgress?: (done: number, total: number) => void;
}

export interface WindowBucket {
  from: number;
  to: number;
  requests: number;
  rows: number;
  profile: DatasetProfile;
}

export interface WindowData {
  from: number;
  to: number;
  requests: number;
  rows: number;
  profile: DatasetProfile;
  buckets: WindowBucket[];
  /** Row-level predictions (the first value of each row of `output`), and their bucket. */
  predictions: Float64Array;
  predictionBucket: Uint32Array;
  /** Per request. */
  latencies: Float64Array;
  latencyBucket: Uint32Array;
  /** One-row labelled requests: the prediction, the raw label and the bucket. */
  labelled: { predictions: Float64Array; labels: unknown[]; bucket: Uint32Array };
  labelledSkipped: number;
}

/** Values with their time bucket, grown in place. */
class BucketedValues {
  values = new Float64Array(1024);
  buckets = new Uint32Array(1024);
  length = 0;
  push(v: number, b: number): void {
    if (this.length === this.values.length) {
      const values = new Float64Array(this.length * 2);
      values.set(this.values);
      this.values = values;
      const buckets = new Uint32Array(this.length * 2);
      buckets.set(this.buckets);
      this.buckets = buckets;
    }
    this.values[this.length] = v;
    this.buckets[this.length++] = b;
  }
}

/** A one-row request's label: feedback may give it as a one-element array (one label per row). */
function singleLabel(label: unknown): unknown {
  return Array.isArray(label) && label.length === 1 ? label[0] : label;
}

export class GrowableFloat64 {
  private data = new Float64Array(1024);
  length = 0;
  push(v: number): void {
    if (this.length === this.data.length) {
      const next = new Float64Array(this.data.length * 2);
      next.set(this.data);
      this.data = next;
    }
    this.data[this.length++] = v;
  }
  toArray(): Float64Array {
    return this.data.slice(0, this.length);
  }
}

class GrowableUint32 {
  private data = new Uint32Array(1024);
  length = 0;
  push(v: number): void {
    if (this.length === this.data.length) {
      const next = new Uint32Array(this.data.length * 2);
      next.set(this.data);
      this.data = next;
    }
    this.data[this.length++] = v;
  }
  toArray(): Uint32Array {
    return this.data.slice(0, this.length);
  }
}

export function referenceSubset(reference: DatasetProfile, features: string[]): DatasetProfile {
  const byName = new Map(reference.columns.map((c) => [c.name, c]));
  return {
    rows: reference.rows,
    columns: features.map((f) => {
      const c = byName.get(f);
      if (!c) {
        throw new KilnError(
          'INVALID_PARAMETER_VALUE',
          `monitor: feature '${f}' is not a column of the training profile (columns: ${[...byName.keys()].slice(0, 20).join(', ')})`,
        );
      }
      return c;
    }),
  };
}

export async function scanWindow(store: Store, o: WindowScanOptions): Promise<WindowData> {
  if (!(o.to > o.from)) {
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      `window: the end (${o.to}) must be after the start (${o.from})`,
    );
  }
  const nBuckets = o.buckets ?? 1;
  if (!Number.isInteger(nBuckets) || nBuckets < 1 || nBuckets > 1000) {
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      `window: buckets must be a whole number from 1 to 1000, got ${nBuckets}`,
    );
  }
  const reference = referenceSubset(o.reference, o.features);
  const output = o.output ?? 'predictions';
  const pageRows = o.pageRows ?? 2000;
  // Small flushes per bucket: many buckets would otherwise each hold 64k buffered rows per column.
  const flushRows = nBuckets === 1 ? 65_536 : 8192;
  const profilers = Array.from({ length: nBuckets }, () => new WindowProfiler(reference, {}, flushRows));
  const counts = Array.from({ length: nBuckets }, () => ({ requests: 0, rows: 0 }));
  const width = (o.to - o.from) / nBuckets;
  const bucketOf = (t: number) => Math.min(nBuckets - 1, Math.floor((t - o.from) / width));

  const base = () => {
    let q = store.db
      .selectFrom('monitor_predictions')
      .where('model', '=', o.model)
      .where('time', '>=', o.from)
      .where('time', '<', o.to)
      .where('shadow', '=', 0)
      .where('error', 'is', null);
    if (o.version !== undefined) q = q.where('version', '=', o.version);
    return q;
  };
  const total = Number(
    (
      await base()
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .executeTakeFirst()
    )?.n ?? 0,
  );
  const predictions = new GrowableFloat64();
  const predictionBucket = new GrowableUint32();
  const latencies = new GrowableFloat64();
  const latencyBucket = new GrowableUint32();
  const lp = new GrowableFloat64();
  const lb = new GrowableUint32();
  const labels: unknown[] = [];
  let labelledSkipped = 0;
  let requests = 0;
  let rows = 0;
  // Keyset pages in (time, id) order: the (model, version, time) index serves both the filter
  // and the order, so each page costs its own rows (paging by id alone made the database sort
  // the whole window for every page).
  let afterTime = Number.NEGATIVE_INFINITY;
  let afterId = -1;
  let done = 0;
  for (;;) {
    let q = base().select([
      'prediction_id',
      'time',
      'latency_ms',
      'inputs_json',
      'outputs_json',
      'label_json',
    ]);
    if (afterId >= 0) {
      const t = afterTime;
      const id = afterId;
      q = q.where((eb) =>
        eb.or([eb('time', '>', t), eb.and([eb('time', '=', t), eb('prediction_id', '>', id)])]),
      );
    }
    const page = await q.orderBy('time').orderBy('prediction_id').limit(pageRows).execute();
    if (page.length === 0) break;
    afterTime = Number(page[page.length - 1]!.time);
    afterId = Number(page[page.length - 1]!.prediction_id);
    // Group the page's rows per bucket so each profiler gets one columnar add per page.
    const perBucket = new Map<number, { cols: Record<string, unknown[]>; n: number }>();
    for (const r of page) {
      const b = bucketOf(Number(r.time));
      const inputs = JSON.parse(r.inputs_json) as Record<string, unknown[]>;
      const outputs = JSON.parse(r.outputs_json) as Record<string, unknown[]>;
      const n = requestRows(inputs, outputs[output]);
      let entry = perBucket.get(b);
      if (!entry) {
        entry = { cols: Object.fromEntries(o.features.map((f) => [f, []])), n: 0 };
        perBucket.set(b, entry);
      }
      for (const f of o.features) {
        const values = inputs[f];
        const target = entry.cols[f]!;
        for (let i = 0; i < n; i++) target.push(Array.isArray(values) ? (values[i] ?? null) : null);
      }
      entry.n += n;
      const out = outputs[output];
      if (Array.isArray(out)) {
        const per = out.length / Math.max(n, 1);
        for (let i = 0; i < n; i++) {
          const v = Number(out[Math.floor(i * per)]);
          if (Number.isFinite(v)) {
            predictions.push(v);
            predictionBucket.push(b);
          }
        }
      }
      latencies.push(Number(r.latency_ms));
      latencyBucket.push(b);
      if (r.label_json !== null) {
        const v = Array.isArray(out) && n === 1 ? Number(out[0]) : Number.NaN;
        if (Number.isFinite(v)) {
          lp.push(v);
          lb.push(b);
          labels.push(singleLabel(JSON.parse(r.label_json)));
        } else labelledSkipped++;
      }
      counts[b]!.requests++;
      counts[b]!.rows += n;
      requests++;
      rows += n;
    }
    for (const [b, entry] of perBucket) profilers[b]!.add(entry.cols, entry.n);
    done += page.length;
    o.onProgress?.(done, total);
    if (page.length < pageRows) break;
  }
  if (o.artifacts) {
    const seg = await scanSegments(store, o.artifacts, o, reference, bucketOf, profilers);
    for (let b = 0; b < nBuckets; b++) {
      counts[b]!.requests += seg.counts[b]!.requests;
      counts[b]!.rows += seg.counts[b]!.rows;
    }
    requests += seg.requests;
    rows += seg.rows;
    labelledSkipped += seg.labelledSkipped;
    for (let i = 0; i < seg.predictions.length; i++) {
      predictions.push(seg.predictions.values[i]!);
      predictionBucket.push(seg.predictions.buckets[i]!);
    }
    for (let i = 0; i < seg.latencies.length; i++) {
      latencies.push(seg.latencies.values[i]!);
      latencyBucket.push(seg.latencies.buckets[i]!);
    }
    for (let i = 0; i < seg.labelled.length; i++) {
      lp.push(seg.labelled.values[i]!);
      lb.push(seg.labelled.buckets[i]!);
      labels.push(seg.labels[i]);
    }
  }
  const buckets = profilers.map(
    (p, i): WindowBucket => ({
      from: o.from + i * width,
      to: i === nBuckets - 1 ? o.to : o.from + (i + 1) * width,
      ...counts[i]!,
      profile: p.profile(),
    }),
  );
  let profile = buckets[0]!.profile;
  for (let i = 1; i < buckets.length; i++)
    profile = mergeProfiles(profile, buckets[i]!.profile, { reference });
  return {
    from: o.from,
    to: o.to,
    requests,
    rows,
    profile,
    buckets,
    predictions: predictions.toArray(),
    predictionBucket: predictionBucket.toArray(),
    latencies: latencies.toArray(),
    latencyBucket: latencyBucket.toArray(),
    labelled: { predictions: lp.toArray(), labels, bucket: lb.toArray() },
    labelledSkipped,
  };
}

/** Rows in one logged request: the longest input column (or the output's length without inputs). */
function requestRows(inputs: Record<string, unknown[]>, out: unknown[] | undefined): number {
  let n = 0;
  for (const v of Object.values(inputs)) if (Array.isArray(v) && v.length > n) n = v.length;
  if (n === 0 && Array.isArray(out)) n = out.length;
  return Math.max(n, 1);
}

/**
 * The Parquet segments' part of a window: one DuckDB query over the overlapping segments,
 * streamed as typed chunks (no row objects, no JSON) straight into the bucket profilers.
 * Numeric features are read as DOUBLE (NULL and unparsable text → NaN, missing), categorical
 * ones as codes into the window's own distinct values. Labels come from `monitor_labels`.
 */
async function scanSegments(
  store: Store,
  artifacts: ArtifactStore,
  o: WindowScanOptions,
  reference: DatasetProfile,
  bucketOf: (t: number) => number,
  profilers: WindowProfiler[],
) {
  const nBuckets = profilers.length;
  const out = {
    counts: Array.from({ length: nBuckets }, () => ({ requests: 0, rows: 0 })),
    requests: 0,
    rows: 0,
    labelledSkipped: 0,
    predictions: new BucketedValues(),
    latencies: new BucketedValues(),
    labelled: new BucketedValues(),
    labels: [] as unknown[],
  };
  let scratch: string | undefined;
  const scratchDir = () => {
    scratch ??= fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-window-'));
    return scratch;
  };
  try {
    const segments = await windowSegments(store, artifacts, o, scratchDir);
    if (segments.length === 0) return out;
    const labelRows = await store.db
      .selectFrom('monitor_labels')
      .select(['request_id', 'label_json'])
      .where('model', '=', o.model)
      .where('time', '>=', o.from)
      .where('time', '<', o.to)
      .execute();
    await withDuck(async (conn) => {
      const source = `read_parquet([${segments.map((s) => sqlString(s.file)).join(', ')}], union_by_name = true)`;
      const described = await readRows(conn, `DESCRIBE SELECT * FROM ${source}`, 'prediction log segments');
      const types = new Map(described.map((r) => [String(r.column_name), String(r.column_type)]));
      await conn.run('CREATE TEMP TABLE labels (request_id VARCHAR, label_index INTEGER)');
      if (labelRows.length) {
        const a = await conn.createAppender('labels');
        labelRows.forEach((l, i) => {
          a.appendVarchar(l.request_id);
          a.appendInteger(i);
          a.endRow();
        });
        a.closeSync();
      }
      const where = `time >= ${Math.ceil(o.from)} AND time < ${Math.ceil(o.to)} AND NOT shadow AND error IS NULL`;
      const output = `out.${o.output ?? 'predictions'}`;
      const selects = [
        'CAST(time AS DOUBLE)',
        'row_index',
        'request_rows',
        'latency_ms',
        types.has(output) ? `COALESCE(${sqlIdent(output)}, 'NaN'::DOUBLE)` : `'NaN'::DOUBLE`,
        labelRows.length ? 'COALESCE(label_index, -1)' : '-1::INTEGER',
      ];
      const elements: ('f64' | 'i32')[] = ['f64', 'i32', 'i32', 'f64', 'f64', 'i32'];
      const features: { name: string; kind: 'num' | 'num-as-text' | 'codes'; levels?: string[] }[] = [];
      for (const c of reference.columns) {
        const col = `in.${c.name}`;
        const type = types.get(col);
        if (!type) continue; // never logged: missing in every row
        if (c.kind === 'numeric') {
          selects.push(
            type === 'DOUBLE'
              ? `COALESCE(${sqlIdent(col)}, 'NaN'::DOUBLE)`
              : `COALESCE(TRY_CAST(${sqlIdent(col)} AS DOUBLE), 'NaN'::DOUBLE)`,
          );
          elements.push('f64');
          features.push({ name: c.name, kind: 'num' });
        } else if (type === 'DOUBLE') {
          // Logged as numbers: named as JSON would (String(3) is '3', DuckDB's VARCHAR '3.0').
          selects.push(`COALESCE(${sqlIdent(col)}, 'NaN'::DOUBLE)`);
          elements.push('f64');
          features.push({ name: c.name, kind: 'num-as-text' });
        } else {
          const distinct = await readRows(
            conn,
            `SELECT DISTINCT ${sqlIdent(col)} AS v FROM ${source} WHERE ${where} AND ${sqlIdent(col)} IS NOT NULL`,
            'prediction log segments',
          );
          const levels = distinct.map((r) => String(r.v)).sort();
          selects.push(levelCodeSql(sqlIdent(col), levels));
          elements.push('i32');
          features.push({ name: c.name, kind: 'codes', levels });
        }
      }
      // No ORDER BY: sorting the window cost more than the scan (1M rows × 50 inputs). Segments
      // are listed oldest first and each is in time order, so chunks still come in long runs
      // of one bucket; the profiles do not depend on row order.
      const sql = `SELECT ${selects.map((s, i) => `${s} AS c${i}`).join(', ')}
        FROM ${source}${labelRows.length ? ' LEFT JOIN labels USING (request_id)' : ''}
        WHERE ${where}`;
      await forEachChunk(conn, sql, elements, (views, size) => {
        const time = views[0] as Float64Array;
        const rowIndex = views[1] as Int32Array;
        const requestRows = views[2] as Int32Array;
        const latency = views[3] as Float64Array;
        const prediction = views[4] as Float64Array;
        const label = views[5] as Int32Array;
        // Each run of rows in one bucket goes to its profiler in one add.
        let start = 0;
        while (start < size) {
          const b = bucketOf(time[start]!);
          let end = start + 1;
          while (end < size && bucketOf(time[end]!) === b) end++;
          const cols: Record<string, ArrayLike<unknown>> = {};
          features.forEach((f, j) => {
            const v = views[6 + j]!.subarray(start, end);
            if (f.kind === 'num') cols[f.name] = v;
            else if (f.kind === 'num-as-text')
              cols[f.name] = Array.from(v, (x) => (Number.isNaN(x) ? null : String(x)));
            else cols[f.name] = Array.from(v, (x) => (x < 0 ? null : f.levels![x]!));
          });
          profilers[b]!.add(cols, end - start);
          for (let i = start; i < end; i++) {
            if (Number.isFinite(prediction[i]!)) out.predictions.push(prediction[i]!, b);
            if (rowIndex[i] !== 0) continue;
            out.latencies.push(latency[i]!, b);
            out.counts[b]!.requests++;
            out.requests++;
            if (label[i]! >= 0) {
              if (requestRows[i] === 1 && Number.isFinite(prediction[i]!)) {
                out.labelled.push(prediction[i]!, b);
                out.labels.push(singleLabel(JSON.parse(labelRows[label[i]!]!.label_json)));
              } else out.labelledSkipped++;
            }
          }
          out.counts[b]!.rows += end - start;
          out.rows += end - start;
          start = end;
        }
      });
    });
    return out;
  } finally {
    if (scratch) fs.rmSync(scratch, { recursive: true, force: true });
  }
}

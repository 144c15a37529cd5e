import type { ArtifactStore } from '../artifacts/index.js';
import { KilnError } from '../errors.js';
import type { PredictionRecord, PredictionSink } from '../serve/index.js';
import type { Store } from '../store/index.js';
import {
  checkPredictionLogOptions,
  type PredictionLogOptions,
  sampledIn,
  scrubFields,
} from './log-options.js';
import { findSegmentRequests } from './segment-log.js';

/**
 * The prediction log in the metadata DB. Serving never waits on it: the serve area's
 * `PredictionHook` owns the bounded buffer (full → dropped and counted in /metrics) and calls
 * `write` off the request path, one batch at a time; this sink only samples, redacts and inserts
 * each batch in one multi-row INSERT per chunk.
 *
 * Sampling is decided from a hash of the request id, not a coin flip, so a request answered by
 * a live and a shadow version is kept or dropped as a whole, and its label can always find it.
 */
export {
  checkPredictionLogOptions,
  hashValue,
  type PredictionLogOptions,
  sampledIn,
  scrubFields,
} from './log-options.js';

const INSERT_CHUNK = 500; // 10 columns × 500 rows stays far below SQLite's 32 766 parameters
const PRUNE_EVERY_MS = 60_000;

export class SqlPredictionLog implements PredictionSink {
  private readonly opts: ReturnType<typeof checkPredictionLogOptions>;
  private lastPrune = 0;

  constructor(
    private readonly store: Store,
    options: PredictionLogOptions = {},
    private readonly now: () => number = Date.now,
  ) {
    this.opts = checkPredictionLogOptions(options);
  }

  private scrub(fields: Record<string, unknown[]>): Record<string, unknown[]> {
    return scrubFields(fields, this.opts);
  }

  async write(records: PredictionRecord[]): Promise<void> {
    const rows = records
      .filter((r) => sampledIn(r.requestId, this.opts.sampleRate))
      .map((r) => ({
        request_id: r.requestId,
        model: r.model,
        version: r.version,
        shadow: r.shadow ? 1 : 0,
        time: Date.parse(r.time),
        latency_ms: r.latencyMs,
        inputs_json: JSON.stringify(this.scrub(r.inputs)),
        outputs_json: JSON.stringify(this.scrub(r.outputs)),
        label_json: null,
        label_time: null,
        error: r.error ?? null,
      }));
    if (rows.length) {
      await this.store.db.transaction().execute(async (trx) => {
        for (let i = 0; i < rows.length; i += INSERT_CHUNK) {
          await trx
            .insertInto('monitor_predictions')
            .values(rows.slice(i, i + INSERT_CHUNK))
            .execute();
        }
      });
    }
    const t = this.now();
    if (this.opts.retentionMs !== undefined && t - this.lastPrune >= PRUNE_EVERY_MS) {
      this.lastPrune = t;
      await prunePredictions(this.store, t - this.opts.retentionMs);
    }
  }
}

/** Deletes logged predictions older than `before` (ms since the epoch); returns how many. */
export async function prunePredictions(store: Store, before: number): Promise<number> {
  const r = await store.db.deleteFrom('monitor_predictions').where('time', '<', before).executeTakeFirst();
  return Number(r.numDeletedRows);
}

export interface Feedback {
  request_id: string;
  label: unknown;
}

export interface FeedbackSummary {
  /** Request ids whose label was set or changed. */
  labelled: number;
  /** Request ids that already had exactly this label (a repeated upload). */
  unchanged: number;
  /** Request ids not in the log (never logged, sampled out, or pruned): counted, not fatal. */
  unknown: number;
  unknown_ids: string[];
}

/**
 * Attaches ground truth to logged predictions. Idempotent: sending the same file twice changes
 * nothing the second time. A different label for a labelled id replaces it (a correction).
 */
export async function attachLabels(
  store: Store,
  feedback: Feedback[],
  now = Date.now(),
  artifacts?: ArtifactStore,
): Promise<FeedbackSummary> {
  const summary: FeedbackSummary = { labelled: 0, unchanged: 0, unknown: 0, unknown_ids: [] };
  // The last label for an id in one upload wins, as it would row by row.
  const byId = new Map<string, string>();
  for (const f of feedback) byId.set(f.request_id, JSON.stringify(f.label));
  const ids = [...byId.keys()];
  // Ids not in the DB log may be in Parquet segments (immutable: their labels live in
  // monitor_labels with the request's model and time). Looked up before the transaction: on
  // SQLite a query outside it would wait for it.
  let inSegments = new Map<string, { model: string; time: number }>();
  if (artifacts) {
    const inDb = new Set<string>();
    for (let i = 0; i < ids.length; i += INSERT_CHUNK) {
      const rows = await store.db
        .selectFrom('monitor_predictions')
        .select('request_id')
        .where('request_id', 'in', ids.slice(i, i + INSERT_CHUNK))
        .execute();
      for (const r of rows) inDb.add(r.request_id);
    }
    inSegments = await findSegmentRequests(
      store,
      artifacts,
      ids.filter((id) => !inDb.has(id)),
    );
  }
  await store.db.transaction().execute(async (trx) => {
    for (let i = 0; i < ids.length; i += INSERT_CHUNK) {
      const chunk = ids.slice(i, i + INSERT_CHUNK);
      const existing = await trx
        .selectFrom('monitor_predictions')
        .select(['request_id', 'label_json'])
        .where('request_id', 'in', chunk)
        .execute();
      const current = new Map<string, Set<string | null>>();
      for (const e of existing) {
        const s = current.get(e.request_id) ?? new Set();
        s.add(e.label_json);
        current.set(e.request_id, s);
      }
      const segmentLabels = new Map<string, string>();
      const chunkInSegments = chunk.filter((id) => inSegments.has(id));
      if (chunkInSegments.length) {
        for (const l of await trx
          .selectFrom('monitor_labels')
          .select(['request_id', 'label_json'])
          .where('request_id', 'in', chunkInSegments)
          .execute())
          segmentLabels.set(l.request_id, l.label_json);
      }
      for (const id of chunk) {
        const label = byId.get(id)!;
        const had = current.get(id);
        const logged = inSegments.get(id);
        if (!had && logged) {
          const before = segmentLabels.get(id);
          if (before === label) summary.unchanged++;
          else {
            if (before === undefined)
              await trx
                .insertInto('monitor_labels')
                .values({
                  request_id: id,
                  model: logged.model,
                  time: logged.time,
                  label_json: label,
                  label_time: now,
                })
                .execute();
            else
              await trx
                .updateTable('monitor_labels')
                .set({ label_json: label, label_time: now })
                .where('request_id', '=', id)
                .execute();
            summary.labelled++;
          }
        } else if (!had) {
          summary.unknown++;
          if (summary.unknown_ids.length < 100) summary.unknown_ids.push(id);
        } else if (had.size === 1 && had.has(label)) {
          summary.unchanged++;
        } else {
          await trx
            .updateTable('monitor_predictions')
            .set({ label_json: label, label_time: now })
            .where('request_id', '=', id)
            .execute();
          summary.labelled++;
        }
      }
    }
  });
  return summary;
}

/**
 * Parses a feedback file: CSV with a header naming `request_id` and `label`, or JSON lines of
 * `{"request_id": …, "label": …}`. Errors name the file and line; nothing is applied on error.
 */
export function parseFeedback(text: string, source: string): Feedback[] {
  const lines = text.split(/\r?\n/);
  const first = lines.findIndex((l) => l.trim() !== '');
  if (first < 0) return [];
  const out: Feedback[] = [];
  if (lines[first]!.trim().startsWith('{')) {
    lines.forEach((line, i) => {
      if (line.trim() === '') return;
      let v: unknown;
      try {
        v = JSON.parse(line);
      } catch {
        throw new KilnError('INVALID_PARAMETER_VALUE', `${source}:${i + 1}: not a JSON object`);
      }
      out.push(checkFeedback(v, `${source}:${i + 1}`));
    });
    return out;
  }
  const header = lines[first]!.split(',').map((h) => h.trim().replace(/^"|"$/g, ''));
  const idCol = header.indexOf('request_id');
  const labelCol = header.indexOf('label');
  if (idCol < 0 || labelCol < 0) {
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      `${source}:${first + 1}: the CSV header needs request_id and label columns, got ${header.join(',')}`,
    );
  }
  for (let i = first + 1; i < lines.length; i++) {
    if (lines[i]!.trim() === '') continue;
    const cells = lines[i]!.split(',').map((c) => c.trim().replace(/^"|"$/g, ''));
    const id = cells[idCol];
    const raw = cells[labelCol];
    if (!id || raw === undefined || raw === '') {
      throw new KilnError(
        'INVALID_PARAMETER_VALUE',
        `${source}:${i + 1}: request_id and label must both be set`,
      );
    }
    const n = Number(raw);
    out.push({ request_id: id, label: Number.isFinite(n) ? n : raw });
  }
  return out;
}

export function checkFeedback(v: unknown, where: string): Feedback {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      `${where}: feedback must be an object with request_id and label`,
    );
  }
  const o = v as Record<string, unknown>;
  if (typeof o.request_id !== 'string' || o.request_id === '') {
    throw new KilnError('INVALID_PARAMETER_VALUE', `${where}: request_id must be a non-empty string`);
  }
  // A multi-row request's label may be an array, one label per row (priced row by row).
  const scalar = (l: unknown) => l !== undefined && l !== null && typeof l !== 'object';
  const ok = Array.isArray(o.label) ? o.label.length > 0 && o.label.every(scalar) : scalar(o.label);
  if (!ok) {
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      `${where}: label must be a number, string or boolean, or a non-empty array of them (one per row of the request) (request_id ${o.request_id})`,
    );
  }
  return { request_id: o.request_id, label: o.label };
}

export interface LoggedPrediction {
  request_id: string;
  model: string;
  version: string;
  shadow: boolean;
  /** Milliseconds since the epoch. */
  time: number;
  latency_ms: number;
  inputs: Record<string, unknown[]>;
  outputs: Record<string, unknown[]>;
  /** Absent when no feedback arrived yet. */
  label?: unknown;
  label_time?: number;
}

export interface PredictionWindow {
  model: string;
  /** One version; all versions when absent. */
  version?: string;
  /** Inclusive start, exclusive end, ms since the epoch. */
  from: number;
  to: number;
  /** Only rows with a label (default false). */
  labelledOnly?: boolean;
  /** Include shadow answers (default false: what users were actually given). */
  includeShadow?: boolean;
}

/**
 * Logged predictions of one model (and version) in a time window, oldest first. The stable
 * read for other areas: performance, and business outcomes over labelled windows.
 */
export async function readPredictionWindow(store: Store, w: PredictionWindow): Promise<LoggedPrediction[]> {
  if (!(w.to > w.from)) {
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      `prediction window: 'to' (${w.to}) must be after 'from' (${w.from})`,
    );
  }
  let q = store.db
    .selectFrom('monitor_predictions')
    .selectAll()
    .where('model', '=', w.model)
    .where('time', '>=', w.from)
    .where('time', '<', w.to)
    .where('error', 'is', null);
  if (w.version !== undefined) q = q.where('version', '=', w.version);
  if (w.labelledOnly) q = q.where('label_json', 'is not', null);
  if (!w.includeShadow) q = q.where('shadow', '=', 0);
  const rows = await q.orderBy('time').orderBy('prediction_id').execute();
  return rows.map((r) => ({
    request_id: r.request_id,
    model: r.model,
    version: r.version,
    shadow: Number(r.shadow) === 1,
    time: Number(r.time),
    latency_ms: Number(r.latency_ms),
    inputs: JSON.parse(r.inputs_json),
    outputs: JSON.parse(r.outputs_json),
    ...(r.label_json !== null ? { label: JSON.parse(r.label_json), label_time: Number(r.label_time) } : {}),
  }));
}

/** Labelled predictions per version of a model in a window: what an outcome calculation reads. */
export async function readLabelledWindows(
  store: Store,
  w: Omit<PredictionWindow, 'labelledOnly' | 'version'>,
): Promise<Map<string, LoggedPrediction[]>> {
  const rows = await readPredictionWindow(store, { ...w, labelledOnly: true });
  const out = new Map<string, LoggedPrediction[]>();
  for (const r of rows) {
    const list = out.get(r.version) ?? [];
    list.push(r);
    out.set(r.version, list);
  }
  return out;
}

const DURATION_UNITS: Record<string, number> = {
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
};

/** `30d`, `12h`, `90m`, `45s`, `2w` → milliseconds; `where` names the flag or field in errors. */
export function parseDuration(text: string, where: string): number {
  const m = /^(\d+(?:\.\d+)?)([smhdw])$/.exec(text.trim());
  if (!m || !(Number(m[1]) > 0)) {
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      `${where}: expected a duration like 7d, 12h or 30m, got '${text}'`,
    );
  }
  return Number(m[1]) * DURATION_UNITS[m[2]!]!;
}

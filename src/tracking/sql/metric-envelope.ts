import type SQLite from 'better-sqlite3';
import { LIMITS } from '../limits.js';
import type { MetricEnvelope, MetricEnvelopeRequest } from '../types.js';
import { invalidValue, requireString, toInteger } from '../validation.js';
import type { SqlContext } from './context.js';
import { checkRunIds, stepRange } from './metric-history.js';
import {
  addToTile,
  COARSEST_TILE_LEVEL,
  coarsen,
  FINEST_TILE_LEVEL,
  isFirstSmaller,
  type Tile,
  tileSeries,
} from './metric-tiles.js';

/**
 * kiln's metric envelopes (MetricEnvelope in types.ts) for the dashboard's charts, read from
 * the metric tiles log-batch keeps (metric-tiles.ts), so they are exact after any writer's
 * commit — another process's, out-of-order points included — and a server that just started
 * answers as fast as one that has answered before: there is no cache to be stale or cold.
 *
 * Buckets are 2^j steps wide, aligned on multiples of their width, the smallest such width
 * that cuts the range into at most `buckets` (so between buckets / 2 and buckets of them):
 * each bucket is then one or two stored tiles. A range under 16 buckets' worth of steps
 * (2^j < 16, a deep zoom) reads its points instead, as does a run with at most 2 × buckets
 * points in the covered range (returned as they are).
 */
export async function getMetricEnvelopes(
  ctx: SqlContext,
  req: MetricEnvelopeRequest,
): Promise<MetricEnvelope[]> {
  const runIds = [...new Set(checkRunIds(req?.run_ids, 'GetMetricEnvelopes'))];
  const key = requireString(req.metric_key, 'metric_key');
  const buckets =
    req.buckets === undefined || req.buckets === null
      ? LIMITS.envelopeBucketsDefault
      : toInteger(req.buckets, 'buckets');
  if (buckets < 1 || buckets > LIMITS.envelopeBucketsMax) {
    throw invalidValue('buckets', req.buckets, `buckets must be between 1 and ${LIMITS.envelopeBucketsMax}.`);
  }
  const asked = stepRange(req);
  const flags = await ctx.db
    .selectFrom('latest_metrics')
    .select(['run_uuid', 'tiled'])
    .where('run_uuid', 'in', runIds)
    .where('key', '=', key)
    .execute();
  const present = new Set(flags.map((f) => f.run_uuid));
  const untiled = flags.filter((f) => !Number(f.tiled)).map((f) => f.run_uuid);
  if (untiled.length) await tileSeries(ctx, untiled, key);
  const runs = runIds.filter((id) => present.has(id));
  const reader = new TileReader(ctx);

  // The runs' shared range: every run's buckets line up on one x axis.
  let lo = asked?.start ?? Number.POSITIVE_INFINITY;
  let hi = asked?.end ?? Number.NEGATIVE_INFINITY;
  if (!asked) {
    for (const runId of runs) {
      const span = await reader.stepSpan(runId, key);
      if (!span) continue;
      lo = Math.min(lo, span.first);
      hi = Math.max(hi, span.last);
    }
  }
  const out: MetricEnvelope[] = [];
  for (const runId of runs) {
    if (!(lo <= hi)) {
      out.push({ run_id: runId, points: 0, exact: true, steps: [], timestamps: [], values: [] });
      continue;
    }
    out.push(await envelopeOf(reader, runId, key, lo, hi, buckets, asked !== undefined));
  }
  return out;
}

/** The smallest power of two w with ⌈span / w⌉ ≤ buckets, as its exponent. */
export function bucketExponent(span: number, buckets: number): number {
  let j = 0;
  while (2 ** j * buckets < span) j++;
  return j;
}

async function envelopeOf(
  reader: TileReader,
  runId: string,
  key: string,
  lo: number,
  hi: number,
  buckets: number,
  ranged: boolean,
): Promise<MetricEnvelope> {
  const j = bucketExponent(hi - lo + 1, buckets);
  const w = 2 ** j;
  const firstBucket = Math.floor(lo / w);
  const lastBucket = Math.floor(hi / w);
  const range = ranged ? { start: lo, end: hi } : undefined;
  let bucketTiles: Tile[];
  let points: number;
  if (j >= FINEST_TILE_LEVEL) {
    // Level j or j − 1 (or the coarsest, for spans past 4,000 × 2^22 steps).
    const level = Math.min(COARSEST_TILE_LEVEL, j - ((j - FINEST_TILE_LEVEL) % 2));
    const per = 2 ** (j - level);
    const tiles = await reader.tiles(runId, key, level, firstBucket * per, (lastBucket + 1) * per - 1);
    points = tiles.reduce((a, t) => a + t.points, 0);
    if (points <= 2 * buckets) return exactOf(runId, await reader.points(runId, key, range));
    bucketTiles = per === 1 ? tiles : coarsen(tiles, per, j);
  } else {
    // The points of the covered buckets; exact when the asked range alone holds few enough.
    const p = await reader.points(runId, key, { start: firstBucket * w, end: (lastBucket + 1) * w - 1 });
    const inRange = range ? within(p, range) : p;
    if (inRange.steps.length <= 2 * buckets) return exactOf(runId, inRange);
    const byBucket = new Map<number, Tile>();
    for (let i = 0; i < p.steps.length; i++)
      addToTile(byBucket, j, p.steps[i]!, p.timestamps[i]!, p.values[i]!);
    bucketTiles = [...byBucket.values()];
    points = p.steps.length;
  }
  const out: MetricEnvelope = {
    run_id: runId,
    points,
    exact: false,
    bucket_steps: w,
    steps: [],
    timestamps: [],
    values: [],
  };
  for (const b of bucketTiles) {
    // Which extreme comes first: (step, timestamp, value) order, compared with the same lexicographic test.
    const minFirst = isFirstSmaller(b.minStep, b.minTime, b.minValue, b.maxStep, b.maxTime, b.maxValue);
    const same = b.minStep === b.maxStep && b.minTime === b.maxTime && b.minValue === b.maxValue;
    const order: [number, number, number][] = same
      ? [[b.minStep, b.minTime, b.minValue]]
      : minFirst
        ? [
            [b.minStep, b.minTime, b.minValue],
            [b.maxStep, b.maxTime, b.maxValue],
          ]
        : [
            [b.maxStep, b.maxTime, b.maxValue],
            [b.minStep, b.minTime, b.minValue],
          ];
    for (const [s, t, v] of order) {
      out.steps.push(s);
      out.timestamps.push(t);
      out.values.push(v);
    }
  }
  return out;
}

interface Points {
  steps: number[];
  timestamps: number[];
  values: number[];
}

function within(p: Points, range: { start: number; end: number }): Points {
  const out: Points = { steps: [], timestamps: [], values: [] };
  for (let i = 0; i < p.steps.length; i++) {
    if (p.steps[i]! < range.start || p.steps[i]! > range.end) continue;
    out.steps.push(p.steps[i]!);
    out.timestamps.push(p.timestamps[i]!);
    out.values.push(p.values[i]!);
  }
  return out;
}

function exactOf(runId: string, p: Points): MetricEnvelope {
  return { run_id: runId, points: p.steps.length, exact: true, ...p };
}

/** SQLite's envelope reads, prepared once per connection. */
const sqliteReads = new WeakMap<SQLite.Database, ReturnType<typeof prepareReads>>();

function prepareReads(sqlite: SQLite.Database) {
  const edge = (dir: 'asc' | 'desc') =>
    sqlite
      .prepare(
        `select tile from metric_tiles where run_uuid = ? and key = ? and level = ${FINEST_TILE_LEVEL} order by tile ${dir} limit 1`,
      )
      .pluck();
  return {
    first: edge('asc'),
    last: edge('desc'),
    tiles: sqlite
      .prepare(
        `select tile, points, min_step, min_timestamp, min_value, max_step, max_timestamp, max_value
         from metric_tiles where run_uuid = ? and key = ? and level = ? and tile between ? and ? order by tile`,
      )
      .raw(),
    points: sqlite
      .prepare(
        `select step, timestamp, value from metrics where run_uuid = ? and key = ? and is_nan = 0
         and step between ? and ? order by step, timestamp, value`,
      )
      .raw(),
  };
}

/** The reads an envelope makes: raw prepared statements on SQLite (no row objects), kysely elsewhere. */
class TileReader {
  private readonly sqlite?: ReturnType<typeof prepareReads>;

  constructor(private readonly ctx: SqlContext) {
    const db = ctx.store.sqlite;
    if (db) {
      let reads = sqliteReads.get(db);
      if (!reads) sqliteReads.set(db, (reads = prepareReads(db)));
      this.sqlite = reads;
    }
  }

  /** The series' first and last step (to its finest tile: the range's bucket width does not need more). */
  async stepSpan(runId: string, key: string): Promise<{ first: number; last: number } | undefined> {
    const w = 2 ** FINEST_TILE_LEVEL;
    if (this.sqlite) {
      const first = this.sqlite.first.get(runId, key) as number | undefined;
      const last = this.sqlite.last.get(runId, key) as number | undefined;
      return first === undefined || last === undefined
        ? undefined
        : { first: first * w, last: (last + 1) * w - 1 };
    }
    const q = (dir: 'asc' | 'desc') =>
      this.ctx.db
        .selectFrom('metric_tiles')
        .select('tile')
        .where('run_uuid', '=', runId)
        .where('key', '=', key)
        .where('level', '=', FINEST_TILE_LEVEL)
        .orderBy('tile', dir)
        .limit(1)
        .executeTakeFirst();
    const first = await q('asc');
    const last = await q('desc');
    if (!first || !last) return undefined;
    return { first: Number(first.tile) * w, last: (Number(last.tile) + 1) * w - 1 };
  }

  async tiles(runId: string, key: string, level: number, from: number, to: number): Promise<Tile[]> {
    const out: Tile[] = [];
    if (this.sqlite) {
      const rows = this.sqlite.tiles.iterate(runId, key, level, from, to) as IterableIterator<number[]>;
      for (const r of rows) {
        out.push({
          level,
          tile: r[0]!,
          points: r[1]!,
          minStep: r[2]!,
          minTime: r[3]!,
          minValue: r[4]!,
          maxStep: r[5]!,
          maxTime: r[6]!,
          maxValue: r[7]!,
        });
      }
      return out;
    }
    const rows = await this.ctx.db
      .selectFrom('metric_tiles')
      .selectAll()
      .where('run_uuid', '=', runId)
      .where('key', '=', key)
      .where('level', '=', level)
      .where('tile', '>=', from)
      .where('tile', '<=', to)
      .orderBy('tile')
      .execute();
    for (const r of rows) {
      out.push({
        level,
        tile: Number(r.tile),
        points: Number(r.points),
        minStep: Number(r.min_step),
        minTime: Number(r.min_timestamp),
        minValue: Number(r.min_value),
        maxStep: Number(r.max_step),
        maxTime: Number(r.max_timestamp),
        maxValue: Number(r.max_value),
      });
    }
    return out;
  }

  /** The series' non-NaN points (in `range` when given) in (step, timestamp, value) order. */
  async points(
    runId: string,
    key: string,
    range: { start: number; end: number } | undefined,
  ): Promise<Points> {
    const out: Points = { steps: [], timestamps: [], values: [] };
    if (this.sqlite) {
      const rows = this.sqlite.points.iterate(
        runId,
        key,
        range?.start ?? Number.MIN_SAFE_INTEGER,
        range?.end ?? Number.MAX_SAFE_INTEGER,
      ) as IterableIterator<[number, number, number]>;
      for (const r of rows) {
        out.steps.push(r[0]);
        out.timestamps.push(r[1]);
        out.values.push(r[2]);
      }
      return out;
    }
    let q = this.ctx.db
      .selectFrom('metrics')
      .select(['step', 'timestamp', 'value'])
      .where('run_uuid', '=', runId)
      .where('key', '=', key)
      .where('is_nan', '=', 0);
    if (range) q = q.where('step', '>=', range.start).where('step', '<=', range.end);
    for (const r of await q.orderBy('step').orderBy('timestamp').orderBy('value').execute()) {
      out.steps.push(Number(r.step));
      out.timestamps.push(Number(r.timestamp));
      out.values.push(Number(r.value));
    }
    return out;
  }
}

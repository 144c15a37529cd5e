import type SQLite from 'better-sqlite3';
import { sql, type Transaction } from 'kysely';
import type { Database } from '../../store/index.js';
import type { SqlContext } from './context.js';

/**
 * Metric tiles (migration 0018): what the dashboard's chart envelopes are read from, kept in
 * the same transaction as the points they summarise.
 *
 * A tile of level L is the step interval [t·2^L, (t+1)·2^L) of one (run, key): its count of
 * non-NaN points and its first smallest and first largest point — "first" in (step,
 * timestamp) order, so ties resolve the same way however the points arrived. Levels are
 * 4, 6, …, 22: an envelope whose buckets are 2^j steps wide reads level j or j − 1 (at most
 * two tiles a bucket), so 20 runs × 100,000 steps read ~31,000 rows, not 2,000,000 points.
 * Tiles merge: a batch's tiles are upserted onto the stored ones (count added, the smaller
 * minimum and larger maximum kept), so any writer in any process keeps them exact, and
 * out-of-order points land in their tile like any other.
 *
 * Concurrency: log-batch upserts latest_metrics (locking the series' row on Postgres) before
 * its tiles. A series logged before migration 0018 has `tiled = 0`; the first envelope that
 * needs it rebuilds its tiles from the history under that row's lock (`FOR UPDATE` on
 * Postgres, an IMMEDIATE transaction on SQLite), so a writer racing the rebuild either
 * commits before it (its points are in the history read) or waits and merges after it.
 */
export const TILE_LEVELS = [4, 6, 8, 10, 12, 14, 16, 18, 20, 22] as const;
export const FINEST_TILE_LEVEL = TILE_LEVELS[0];
export const COARSEST_TILE_LEVEL = TILE_LEVELS[TILE_LEVELS.length - 1]!;

export interface Tile {
  level: number;
  tile: number;
  points: number;
  minStep: number;
  minTime: number;
  minValue: number;
  maxStep: number;
  maxTime: number;
  maxValue: number;
}

/** (value, step, time) < (value′, step′, time′): the smaller value, ties to the earlier point. */
export function isFirstSmaller(v: number, s: number, t: number, v2: number, s2: number, t2: number): boolean {
  return v < v2 || (v === v2 && (s < s2 || (s === s2 && t < t2)));
}

/** Folds one point into the tile it belongs to at `level`. */
export function addToTile(
  tiles: Map<number, Tile>,
  level: number,
  step: number,
  time: number,
  value: number,
): void {
  const index = Math.floor(step / 2 ** level);
  const t = tiles.get(index);
  if (!t) {
    tiles.set(index, {
      level,
      tile: index,
      points: 1,
      minStep: step,
      minTime: time,
      minValue: value,
      maxStep: step,
      maxTime: time,
      maxValue: value,
    });
    return;
  }
  t.points++;
  if (isFirstSmaller(value, step, time, t.minValue, t.minStep, t.minTime)) {
    t.minValue = value;
    t.minStep = step;
    t.minTime = time;
  }
  if (isFirstSmaller(-value, step, time, -t.maxValue, t.maxStep, t.maxTime)) {
    t.maxValue = value;
    t.maxStep = step;
    t.maxTime = time;
  }
}

/** Folds tile `t` (of a finer level, or of another batch) into `into`: counts add, extremes keep the first. */
export function mergeTile(into: Tile, t: Tile): void {
  into.points += t.points;
  if (isFirstSmaller(t.minValue, t.minStep, t.minTime, into.minValue, into.minStep, into.minTime)) {
    into.minValue = t.minValue;
    into.minStep = t.minStep;
    into.minTime = t.minTime;
  }
  if (isFirstSmaller(-t.maxValue, t.maxStep, t.maxTime, -into.maxValue, into.maxStep, into.maxTime)) {
    into.maxValue = t.maxValue;
    into.maxStep = t.maxStep;
    into.maxTime = t.maxTime;
  }
}

/**
 * Tiles in tile order grouped `per` consecutive ones into tiles of a coarser `level`
 * (tile index ⌊tile / per⌋), in order.
 */
export function coarsen(tiles: Iterable<Tile>, per: number, level: number): Tile[] {
  const out: Tile[] = [];
  for (const t of tiles) {
    const index = Math.floor(t.tile / per);
    const last = out[out.length - 1];
    if (last && last.tile === index) mergeTile(last, t);
    else out.push({ ...t, level, tile: index });
  }
  return out;
}

/** Points of one series folded into tiles at every level (the finest from the points, each coarser from the one below). */
export class SeriesTiles {
  private readonly finest = new Map<number, Tile>();

  add(step: number, time: number, value: number): void {
    addToTile(this.finest, FINEST_TILE_LEVEL, step, time, value);
  }

  *tiles(): Generator<Tile> {
    let level: Tile[] = [...this.finest.values()].sort((a, b) => a.tile - b.tile);
    yield* level;
    for (let l = 1; l < TILE_LEVELS.length; l++) {
      level = coarsen(level, 2 ** (TILE_LEVELS[l]! - TILE_LEVELS[l - 1]!), TILE_LEVELS[l]!);
      yield* level;
    }
  }
}

const TILE_COLUMNS = [
  'run_uuid',
  'key',
  'level',
  'tile',
  'points',
  'min_step',
  'min_timestamp',
  'min_value',
  'max_step',
  'max_timestamp',
  'max_value',
] as const;

const MIN_IS_NEW =
  '(excluded.min_value, excluded.min_step, excluded.min_timestamp) < (metric_tiles.min_value, metric_tiles.min_step, metric_tiles.min_timestamp)';
const MAX_IS_NEW =
  '(-excluded.max_value, excluded.max_step, excluded.max_timestamp) < (-metric_tiles.max_value, metric_tiles.max_step, metric_tiles.max_timestamp)';
const pick = (when: string, column: string) =>
  `case when ${when} then excluded.${column} else metric_tiles.${column} end`;
/** The merge of an incoming tile with the stored one, column by column (both dialects). */
const MERGE: Record<string, string> = {
  points: 'metric_tiles.points + excluded.points',
  min_step: pick(MIN_IS_NEW, 'min_step'),
  min_timestamp: pick(MIN_IS_NEW, 'min_timestamp'),
  min_value: pick(MIN_IS_NEW, 'min_value'),
  max_step: pick(MAX_IS_NEW, 'max_step'),
  max_timestamp: pick(MAX_IS_NEW, 'max_timestamp'),
  max_value: pick(MAX_IS_NEW, 'max_value'),
};

function tileRow(runId: string, key: string, t: Tile): unknown[] {
  return [
    runId,
    key,
    t.level,
    t.tile,
    t.points,
    t.minStep,
    t.minTime,
    t.minValue,
    t.maxStep,
    t.maxTime,
    t.maxValue,
  ];
}

/** The tiles of a batch's points, per key (NaN points have no tile). */
export function batchTiles(
  keys: string[],
  steps: Float64Array,
  times: Float64Array,
  values: Float64Array,
  isNan: Uint8Array,
): Map<string, SeriesTiles> {
  const out = new Map<string, SeriesTiles>();
  for (let i = 0; i < keys.length; i++) {
    if (isNan[i]) continue;
    let series = out.get(keys[i]!);
    if (!series) out.set(keys[i]!, (series = new SeriesTiles()));
    series.add(steps[i]!, times[i]!, values[i]!);
  }
  return out;
}

/** SQLite's statements for tiles, run inside the caller's synchronous transaction. */
export class SqliteTileStatements {
  private readonly upsert: SQLite.Statement<unknown[]>;
  private readonly insert: SQLite.Statement<unknown[]>;
  private readonly tiledFlag: SQLite.Statement<[string, string], { tiled: number }>;
  private readonly history: SQLite.Statement<[string, string]>;
  private readonly clear: SQLite.Statement<[string, string]>;
  private readonly markTiled: SQLite.Statement<[string, string]>;

  constructor(sqlite: SQLite.Database) {
    const into = `insert into metric_tiles (${TILE_COLUMNS.join(', ')}) values (${TILE_COLUMNS.map(() => '?').join(', ')})`;
    this.insert = sqlite.prepare(into);
    this.upsert = sqlite.prepare(
      `${into} on conflict (run_uuid, key, level, tile) do update set ${Object.entries(MERGE)
        .map(([c, e]) => `${c} = ${e}`)
        .join(', ')}`,
    );
    this.tiledFlag = sqlite.prepare('select tiled from latest_metrics where run_uuid = ? and key = ?');
    this.history = sqlite.prepare(
      'select step, timestamp, value from metrics where run_uuid = ? and key = ? and is_nan = 0',
    );
    this.clear = sqlite.prepare('delete from metric_tiles where run_uuid = ? and key = ?');
    this.markTiled = sqlite.prepare('update latest_metrics set tiled = 1 where run_uuid = ? and key = ?');
  }

  merge(runId: string, tiles: Map<string, SeriesTiles>): void {
    for (const [key, series] of tiles) {
      for (const t of series.tiles()) this.upsert.run(tileRow(runId, key, t));
    }
  }

  /** Rebuilds an untiled series' tiles from its history (call inside an IMMEDIATE transaction). */
  rebuild(runId: string, key: string): void {
    const flag = this.tiledFlag.get(runId, key);
    if (!flag || flag.tiled) return;
    const series = new SeriesTiles();
    for (const r of this.history.raw().iterate(runId, key) as IterableIterator<[number, number, number]>) {
      series.add(r[0], r[1], r[2]);
    }
    this.clear.run(runId, key);
    for (const t of series.tiles()) this.insert.run(tileRow(runId, key, t));
    this.markTiled.run(runId, key);
  }
}

/** Rows a multi-row statement carries (11 bound values each, under Postgres' 65,535). */
const ROWS_PER_STATEMENT = 1000;

/** The portable (Postgres) merge of a batch's tiles, inside the batch's transaction. */
export async function mergeTiles(
  trx: Transaction<Database>,
  runId: string,
  tiles: Map<string, SeriesTiles>,
  asInsert = false,
): Promise<void> {
  const rows: Database['metric_tiles'][] = [];
  for (const [key, series] of tiles) {
    for (const t of series.tiles()) {
      rows.push({
        run_uuid: runId,
        key,
        level: t.level,
        tile: t.tile,
        points: t.points,
        min_step: t.minStep,
        min_timestamp: t.minTime,
        min_value: t.minValue,
        max_step: t.maxStep,
        max_timestamp: t.maxTime,
        max_value: t.maxValue,
      });
    }
  }
  for (let i = 0; i < rows.length; i += ROWS_PER_STATEMENT) {
    const insert = trx.insertInto('metric_tiles').values(rows.slice(i, i + ROWS_PER_STATEMENT));
    if (asInsert) await insert.execute();
    else {
      await insert
        .onConflict((oc) =>
          oc
            .columns(['run_uuid', 'key', 'level', 'tile'])
            .doUpdateSet(Object.fromEntries(Object.entries(MERGE).map(([c, e]) => [c, sql.raw(e)]))),
        )
        .execute();
    }
  }
}

/** Tiles every untiled series among `runIds` × `key` (series logged before migration 0018). */
export async function tileSeries(ctx: SqlContext, runIds: string[], key: string): Promise<void> {
  const sqlite = ctx.store.sqlite;
  if (sqlite) {
    await ctx.serialise(async () => {
      // Another area's kysely transaction may be open on the shared connection: wait it out.
      while (sqlite.inTransaction) await new Promise((r) => setTimeout(r, 1));
      const statements = new SqliteTileStatements(sqlite);
      sqlite
        .transaction(() => {
          for (const runId of runIds) statements.rebuild(runId, key);
        })
        .immediate();
    });
    return;
  }
  for (const runId of runIds) {
    await ctx.db.transaction().execute(async (trx) => {
      const flag = await trx
        .selectFrom('latest_metrics')
        .select('tiled')
        .where('run_uuid', '=', runId)
        .where('key', '=', key)
        .forUpdate()
        .executeTakeFirst();
      if (!flag || flag.tiled) return;
      const rows = await trx
        .selectFrom('metrics')
        .select(['step', 'timestamp', 'value'])
        .where('run_uuid', '=', runId)
        .where('key', '=', key)
        .where('is_nan', '=', 0)
        .execute();
      const series = new SeriesTiles();
      for (const r of rows) series.add(Number(r.step), Number(r.timestamp), Number(r.value));
      await trx.deleteFrom('metric_tiles').where('run_uuid', '=', runId).where('key', '=', key).execute();
      await mergeTiles(trx, runId, new Map([[key, series]]), true);
      await trx
        .updateTable('latest_metrics')
        .set({ tiled: 1 })
        .where('run_uuid', '=', runId)
        .where('key', '=', key)
        .execute();
    });
  }
}

import { LIMITS } from '../limits.js';
import type { MetricEnvelope, MetricEnvelopeRequest } from '../types.js';
import { invalidValue, requireString, toInteger } from '../validation.js';
import type { SqlContext } from './context.js';
import { checkRunIds, stepRange } from './metric-history.js';

/**
 * kiln's metric envelopes (MetricEnvelope in types.ts) for the dashboard's charts, from a
 * per-process cache of each (run, key)'s history as typed arrays.
 *
 * Why a cache: an exact envelope has to read every point, and reading 20 runs × 100,000
 * points out of the database (or grouping them in it) takes seconds on a loaded 2-core box,
 * while a chart asks again on every zoom. Read once, the arrays answer any range in a pass
 * over that range (a few milliseconds for 20 × 100,000).
 *
 * When an entry is stale: metric history is append-only, and each request first reads the
 * runs' latest_metrics rows (one primary-key seek each). An entry is used only while its
 * (step, timestamp, value) is the one it was read with, and this store's own logBatch drops
 * the run's entries. Not seen: a point another process logs below the run's latest step and
 * time (a late out-of-order point); it shows once the entry is evicted or the server restarts.
 * A count of the history would catch it, at a cost of an index scan per run per request.
 *
 * Memory: at most CACHE_POINTS points (24 bytes each) are kept, least recently used evicted.
 */
const CACHE_POINTS = 4_000_000;

interface CachedHistory {
  signature: string;
  step: Float64Array;
  time: Float64Array;
  value: Float64Array;
}

export class MetricEnvelopes {
  private readonly cache = new Map<string, CachedHistory>();
  private cachedPoints = 0;

  constructor(private readonly ctx: SqlContext) {}

  /** Drops a run's cached histories (its metrics were just written). */
  forgetRun(runId: string): void {
    for (const [k, entry] of this.cache) {
      if (k.startsWith(`${runId}\u0000`)) this.evict(k, entry);
    }
  }

  async get(req: MetricEnvelopeRequest): Promise<MetricEnvelope[]> {
    const runIds = [...new Set(checkRunIds(req?.run_ids, 'GetMetricEnvelopes'))];
    const key = requireString(req.metric_key, 'metric_key');
    const buckets =
      req.buckets === undefined || req.buckets === null
        ? LIMITS.envelopeBucketsDefault
        : toInteger(req.buckets, 'buckets');
    if (buckets < 1 || buckets > LIMITS.envelopeBucketsMax) {
      throw invalidValue(
        'buckets',
        req.buckets,
        `buckets must be between 1 and ${LIMITS.envelopeBucketsMax}.`,
      );
    }
    const asked = stepRange(req);
    const latest = await this.ctx.db
      .selectFrom('latest_metrics')
      .select(['run_uuid', 'step', 'timestamp', 'value', 'is_nan'])
      .where('run_uuid', 'in', runIds)
      .where('key', '=', key)
      .execute();
    const signatures = new Map(
      latest.map((r) => [r.run_uuid, `${r.step}/${r.timestamp}/${r.value}/${r.is_nan}`] as const),
    );
    const histories: [string, CachedHistory][] = [];
    for (const runId of runIds) {
      const signature = signatures.get(runId);
      if (signature === undefined) continue;
      histories.push([runId, await this.history(runId, key, signature)]);
    }
    // The runs' shared range: every run's buckets line up on one x axis.
    let lo = asked?.start ?? Number.POSITIVE_INFINITY;
    let hi = asked?.end ?? Number.NEGATIVE_INFINITY;
    if (!asked) {
      for (const [, h] of histories) {
        if (h.step.length === 0) continue;
        lo = Math.min(lo, h.step[0]!);
        hi = Math.max(hi, h.step[h.step.length - 1]!);
      }
    }
    return histories.map(([runId, h]) => envelopeOf(runId, h, lo, hi, buckets));
  }

  private async history(runId: string, key: string, signature: string): Promise<CachedHistory> {
    const cacheKey = `${runId}\u0000${key}`;
    const hit = this.cache.get(cacheKey);
    if (hit && hit.signature === signature) {
      // Most recently used last.
      this.cache.delete(cacheKey);
      this.cache.set(cacheKey, hit);
      return hit;
    }
    if (hit) this.evict(cacheKey, hit);
    const entry = { signature, ...(await this.read(runId, key)) };
    this.cache.set(cacheKey, entry);
    this.cachedPoints += entry.step.length;
    for (const [k, e] of this.cache) {
      if (this.cachedPoints <= CACHE_POINTS || k === cacheKey) break;
      this.evict(k, e);
    }
    return entry;
  }

  private evict(cacheKey: string, entry: CachedHistory): void {
    this.cache.delete(cacheKey);
    this.cachedPoints -= entry.step.length;
  }

  /** The run's non-NaN points of `key` ordered by (step, timestamp, value), as typed arrays. */
  private async read(runId: string, key: string): Promise<Omit<CachedHistory, 'signature'>> {
    const sqlite = this.ctx.store.sqlite;
    let step: number[] | Float64Array;
    let time: number[] | Float64Array;
    let value: number[] | Float64Array;
    if (sqlite) {
      // A prepared raw statement in index order: no row objects for 100,000 points.
      const rows = sqlite
        .prepare(
          'select step, timestamp, value from metrics where run_uuid = ? and key = ? and is_nan = 0 order by step',
        )
        .raw()
        .iterate(runId, key) as IterableIterator<[number, number, number]>;
      const s: number[] = [];
      const t: number[] = [];
      const v: number[] = [];
      for (const r of rows) {
        s.push(r[0]);
        t.push(r[1]);
        v.push(r[2]);
      }
      step = s;
      time = t;
      value = v;
    } else {
      const rows = await this.ctx.db
        .selectFrom('metrics')
        .select(['step', 'timestamp', 'value'])
        .where('run_uuid', '=', runId)
        .where('key', '=', key)
        .where('is_nan', '=', 0)
        .orderBy('step')
        .execute();
      step = rows.map((r) => Number(r.step));
      time = rows.map((r) => Number(r.timestamp));
      value = rows.map((r) => Number(r.value));
    }
    const n = step.length;
    const out = { step: new Float64Array(n), time: new Float64Array(n), value: new Float64Array(n) };
    out.step.set(step);
    out.time.set(time);
    out.value.set(value);
    sortTies(out);
    return out;
  }
}

/** Points logged twice at one step come out of the step index in insertion order: order them by (timestamp, value). */
function sortTies(h: { step: Float64Array; time: Float64Array; value: Float64Array }): void {
  const n = h.step.length;
  for (let i = 0; i < n; ) {
    let j = i + 1;
    while (j < n && h.step[j] === h.step[i]) j++;
    if (j - i > 1) {
      const idx = Array.from({ length: j - i }, (_, k) => i + k).sort(
        (a, b) => h.time[a]! - h.time[b]! || h.value[a]! - h.value[b]!,
      );
      const t = idx.map((k) => h.time[k]!);
      const v = idx.map((k) => h.value[k]!);
      h.time.set(t, i);
      h.value.set(v, i);
    }
    i = j;
  }
}

function lowerBound(xs: Float64Array, x: number): number {
  let lo = 0;
  let hi = xs.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (xs[mid]! < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * The points of [lo, hi] as they are when at most 2 × buckets, else per bucket (bucket k holds
 * the steps s with ⌊(s − lo) · buckets / (hi − lo + 1)⌋ = k) its first smallest and first
 * largest value, in step order: the line a full-resolution chart draws through each pixel
 * column, spikes included.
 */
export function envelopeOf(
  runId: string,
  h: { step: Float64Array; time: Float64Array; value: Float64Array },
  lo: number,
  hi: number,
  buckets: number,
): MetricEnvelope {
  const a = lowerBound(h.step, lo);
  const b = lowerBound(h.step, hi + 1);
  const points = Math.max(0, b - a);
  if (points <= 2 * buckets) {
    return {
      run_id: runId,
      points,
      exact: true,
      steps: Array.from(h.step.subarray(a, b)),
      timestamps: Array.from(h.time.subarray(a, b)),
      values: Array.from(h.value.subarray(a, b)),
    };
  }
  const out: MetricEnvelope = { run_id: runId, points, exact: false, steps: [], timestamps: [], values: [] };
  const span = hi - lo + 1;
  const push = (i: number) => {
    out.steps.push(h.step[i]!);
    out.timestamps.push(h.time[i]!);
    out.values.push(h.value[i]!);
  };
  let i = a;
  while (i < b) {
    const k = Math.floor(((h.step[i]! - lo) * buckets) / span);
    let minI = i;
    let maxI = i;
    for (i++; i < b && Math.floor(((h.step[i]! - lo) * buckets) / span) === k; i++) {
      if (h.value[i]! < h.value[minI]!) minI = i;
      if (h.value[i]! > h.value[maxI]!) maxI = i;
    }
    push(Math.min(minI, maxI));
    if (maxI !== minI) push(Math.max(minI, maxI));
  }
  return out;
}

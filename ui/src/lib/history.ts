import { api, KILN } from './api.js';

/** A metric history as typed arrays, sorted by step: what charts read. */
export interface History {
  step: Float64Array;
  time: Float64Array;
  value: Float64Array;
}

/**
 * Many runs' histories of one metric as the server's per-bucket min/max envelopes (kiln's
 * `POST /api/kiln/metrics/envelope`): every point when a run has at most 2 × `buckets` in
 * range, else each bucket's smallest and largest point, so a one-step spike in 100,000 steps
 * is still drawn. A zoom asks again for the zoomed step range, and detail comes back where
 * the user looks, down to every point.
 */
export async function envelopeHistories(
  runIds: string[],
  key: string,
  range: { min: number; max: number } | null,
  buckets = 1000,
  signal?: AbortSignal,
): Promise<{ histories: Map<string, History>; exact: boolean; points: number }> {
  const histories = new Map<string, History>();
  let exact = true;
  // Points the envelopes stand for (every one in range when exact).
  let points = 0;
  // The route takes 100 run ids at most (past 100 runs, each call's runs share their own step range).
  const bounds = range ? { start_step: Math.floor(range.min), end_step: Math.ceil(range.max) } : {};
  for (let i = 0; i < runIds.length; i += 100) {
    const r = await api<{
      envelopes?: {
        run_id: string;
        exact: boolean;
        points: number;
        steps: number[];
        timestamps: number[];
        values: number[];
      }[];
    }>(`${KILN}/metrics/envelope`, {
      body: { run_ids: runIds.slice(i, i + 100), metric_key: key, buckets, ...bounds },
      signal,
    });
    for (const e of r.envelopes ?? []) {
      exact &&= e.exact;
      points += e.points;
      histories.set(e.run_id, {
        step: Float64Array.from(e.steps),
        time: Float64Array.from(e.timestamps),
        value: Float64Array.from(e.values, (v) => (v === null ? Number.NaN : v)),
      });
    }
  }
  return { histories, exact, points };
}

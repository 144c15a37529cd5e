import { api, KILN, MLFLOW } from './api.js';
import { type MetricJson, toNumber } from './runs.js';

/** A metric history as typed arrays, sorted by step: what charts read. */
export interface History {
  step: Float64Array;
  time: Float64Array;
  value: Float64Array;
}

function toHistory(points: { step: number; timestamp: number; value: number | string }[]): History {
  const n = points.length;
  const h = { step: new Float64Array(n), time: new Float64Array(n), value: new Float64Array(n) };
  for (let i = 0; i < n; i++) {
    const p = points[i]!;
    h.step[i] = Number(p.step);
    h.time[i] = Number(p.timestamp);
    h.value[i] = toNumber(p.value);
  }
  return h;
}

/** One run's full history of a metric (pages of 25,000, MLflow's limit), for spike-preserving charts. */
export async function fullHistory(runId: string, key: string, signal?: AbortSignal): Promise<History> {
  const points: MetricJson[] = [];
  let page_token: string | undefined;
  do {
    const r = await api<{ metrics?: MetricJson[]; next_page_token?: string }>(
      `${MLFLOW}/metrics/get-history`,
      {
        query: { run_id: runId, metric_key: key, max_results: 25000, page_token },
        signal,
      },
    );
    points.push(...(r.metrics ?? []));
    page_token = r.next_page_token;
  } while (page_token);
  return toHistory(points);
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
): Promise<Map<string, History>> {
  const out = new Map<string, History>();
  // The route takes 100 run ids at most (past 100 runs, each call's runs share their own step range).
  const bounds = range ? { start_step: Math.floor(range.min), end_step: Math.ceil(range.max) } : {};
  for (let i = 0; i < runIds.length; i += 100) {
    const r = await api<{
      envelopes?: { run_id: string; steps: number[]; timestamps: number[]; values: number[] }[];
    }>(`${KILN}/metrics/envelope`, {
      body: { run_ids: runIds.slice(i, i + 100), metric_key: key, buckets, ...bounds },
      signal,
    });
    for (const e of r.envelopes ?? []) {
      out.set(e.run_id, {
        step: Float64Array.from(e.steps),
        time: Float64Array.from(e.timestamps),
        value: Float64Array.from(e.values, (v) => (v === null ? Number.NaN : v)),
      });
    }
  }
  return out;
}

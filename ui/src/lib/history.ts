import { api, MLFLOW } from './api.js';
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
 * Many runs' histories of one metric, sampled by the server (MLflow's bulk interval: at most
 * `points` steps per run, first and last kept). For the compare charts; zooming asks again for
 * the zoomed range, so the detail comes back where the user looks.
 */
export async function sampledHistories(
  runIds: string[],
  key: string,
  range: { min: number; max: number } | null,
  points = 1000,
  signal?: AbortSignal,
): Promise<Map<string, History>> {
  const out = new Map<string, History>();
  // The route takes 100 run ids at most.
  for (let i = 0; i < runIds.length; i += 100) {
    const r = await api<{ metrics?: (MetricJson & { run_id: string })[] }>(
      `${MLFLOW}/metrics/get-history-bulk-interval`,
      {
        query: {
          run_ids: runIds.slice(i, i + 100),
          metric_key: key,
          max_results: points,
          ...(range ? { start_step: Math.floor(range.min), end_step: Math.ceil(range.max) } : {}),
        },
        signal,
      },
    );
    const byRun = new Map<string, MetricJson[]>();
    for (const m of r.metrics ?? []) {
      const list = byRun.get(m.run_id);
      if (list) list.push(m);
      else byRun.set(m.run_id, [m]);
    }
    for (const [id, list] of byRun) out.set(id, toHistory(list));
  }
  return out;
}

import { sql } from 'kysely';
import type { ArtifactStore } from '../artifacts/index.js';
import { type CostModel, costModelSettings } from '../config.js';
import { KilnError } from '../errors.js';
import { describeValueMatrix, type ValueMatrix } from '../learn/index.js';
import {
  checkModelName,
  getPromotionPolicy,
  policyValueMatrix,
  runCostOf,
  type SqlModelRegistry,
} from '../registry/index.js';
import type { Store } from '../store/index.js';
import { artifactStorePathOf } from '../tracking/index.js';
import { compareValue, type RealisedValue, ValueAccumulator } from './realised-value.js';
import { readServingUsage } from './usage-log.js';

/**
 * The outcome summary of a model over a window: per version that served in it (or holds an
 * alias), what it served, how fast, what it cost and what it was worth — the ROI line of
 * `kiln models outcomes` and `GET /api/kiln/models/outcomes`.
 *
 * - predictions / requests: from the serving usage log (every request, unsampled) when the
 *   server ran with `--prediction-store`; else the prediction log's rows (sampled: a floor).
 * - latency p50 / p99: over the logged (sampled) predictions' latency, ms.
 * - cost: serving = charged CPU at the price it ran with + the per-1k-requests overhead;
 *   storage = at the GB-month price (a month is 30 days), the bytes of the version's run
 *   artifacts (the model package, its evaluation report, …; the package's measured size when
 *   the run's artifacts cannot be listed) held for the whole window, plus the version's
 *   prediction log rows logged in the window (the characters of their inputs and outputs
 *   JSON), each held from its logging time to the window's end.
 * - value: the policy's value matrix over the labelled predictions (realised), scaled to every
 *   prediction served (estimated: realised per 1,000 × served / 1,000); net = estimated value −
 *   cost. Absent without a value matrix in the policy or without labels.
 * - comparisons: each other priced version (a canary, or a shadow: its logged answers count
 *   though users never saw them) against the champion's value per 1,000, with a 95 % interval.
 */
export interface VersionOutcome {
  version: string;
  aliases: string[];
  predictions: number;
  requests: number;
  /** True when predictions come from the sampled prediction log (no usage log rows). */
  predictions_sampled: boolean;
  logged_predictions: number;
  latency_ms: { p50: number; p99: number } | null;
  cost: {
    cpu_seconds: number;
    serving: number;
    storage: number;
    storage_detail: {
      artifact_bytes: number;
      artifacts: number;
      prediction_log_bytes: number;
      prediction_log: number;
    };
    total: number;
    per_1k_predictions: number | null;
  };
  value: (RealisedValue & { estimated: number }) | null;
  net: number | null;
  /** True when every logged answer of this version in the window was a shadow's (never returned). */
  shadow: boolean;
}

/** A version's realised value against the baseline's (the champion, else the busiest version). */
export interface ValueComparison {
  version: string;
  against: string;
  shadow: boolean;
  value_diff_per_1k: number;
  ci95: [number, number];
}

export interface ModelOutcomes {
  name: string;
  from: number;
  to: number;
  currency: string;
  value_matrix: string | null;
  versions: VersionOutcome[];
  comparisons: ValueComparison[];
}

const MONTH_MS = 30 * 86_400_000;

export async function modelOutcomes(
  ctx: { store: Store; registry: SqlModelRegistry },
  req: { name: string; from: number; to: number; costModel?: CostModel },
): Promise<ModelOutcomes> {
  const name = checkModelName(req.name);
  const model = await ctx.registry.getRegisteredModel(name); // RESOURCE_DOES_NOT_EXIST names it
  const prices = req.costModel ?? costModelSettings();
  const stored = await getPromotionPolicy(ctx.registry, name);
  const matrix: ValueMatrix | undefined = stored?.policy.value
    ? policyValueMatrix(stored.policy.value)
    : undefined;
  const usage = await readServingUsage(ctx.store, { model: name, from: req.from, to: req.to });
  const logged = await scanOutcomeWindow(ctx.store, { name, from: req.from, to: req.to, matrix, prices });
  const aliasesOf = new Map<string, string[]>();
  for (const a of model.aliases ?? []) {
    const list = aliasesOf.get(String(a.version)) ?? [];
    list.push(a.alias);
    aliasesOf.set(String(a.version), list);
  }
  const versions = [...new Set([...usage.keys(), ...logged.keys(), ...aliasesOf.keys()])].sort(
    (a, b) => Number(a) - Number(b) || a.localeCompare(b),
  );
  const currency = [...usage.values()][0]?.currency ?? prices.currency;
  const out: VersionOutcome[] = [];
  for (const version of versions) {
    const u = usage.get(version);
    const w = logged.get(version);
    const predictions = u ? u.predictions : (w?.rows ?? 0);
    const latencies = Float64Array.from(w?.latencies ?? []).sort();
    const serving = u?.cost ?? 0;
    const artifactBytes = await versionArtifactBytes(ctx.registry, name, version);
    const artifacts = (artifactBytes / 1e9) * prices.gbMonth * ((req.to - req.from) / MONTH_MS);
    const predictionLog = w?.logCost ?? 0;
    const storage = artifacts + predictionLog;
    const total = serving + storage;
    const realised = w?.value?.result();
    const value: VersionOutcome['value'] =
      realised && realised.labelled > 0
        ? { ...realised, estimated: (realised.per1k * predictions) / 1000 }
        : null;
    out.push({
      version,
      aliases: aliasesOf.get(version) ?? [],
      predictions,
      requests: u ? u.requests : (w?.requests ?? 0),
      predictions_sampled: !u,
      logged_predictions: w?.requests ?? 0,
      latency_ms: latencies.length ? { p50: quantile(latencies, 0.5), p99: quantile(latencies, 0.99) } : null,
      cost: {
        cpu_seconds: u?.cpuSeconds ?? 0,
        serving,
        storage,
        storage_detail: {
          artifact_bytes: artifactBytes,
          artifacts,
          prediction_log_bytes: w?.logBytes ?? 0,
          prediction_log: predictionLog,
        },
        total,
        per_1k_predictions: u && u.predictions > 0 ? (1000 * u.cost) / u.predictions : null,
      },
      value,
      net: value ? value.estimated - total : null,
      shadow: (w?.requests ?? 0) > 0 && w!.shadowRequests === w!.requests,
    });
  }
  const priced = out.filter((v) => v.value && v.value.labelled > 0);
  const baseline =
    priced.find((v) => v.aliases.includes('champion')) ??
    [...priced].filter((v) => !v.shadow).sort((a, b) => b.predictions - a.predictions)[0];
  const comparisons: ValueComparison[] = [];
  for (const v of priced) {
    if (!baseline || v === baseline) continue;
    const c = compareValue(v.value!, baseline.value!);
    comparisons.push({
      version: v.version,
      against: baseline.version,
      shadow: v.shadow,
      value_diff_per_1k: c.diffPer1k,
      ci95: c.ci95,
    });
  }
  return {
    name,
    from: req.from,
    to: req.to,
    currency,
    value_matrix: matrix ? describeValueMatrix(matrix) : null,
    versions: out,
    comparisons,
  };
}

/** What the outcome summary needs of one version's logged predictions in the window. */
interface VersionWindow {
  requests: number;
  shadowRequests: number;
  rows: number;
  /** One latency per request, ms (8 bytes a request: the only per-request state kept). */
  latencies: number[];
  value: ValueAccumulator | undefined;
  logBytes: number;
  logCost: number;
}

const PAGE_ROWS = 2000;

/**
 * One pass over a model's logged predictions (shadow answers included) in the window, in
 * keyset pages of (time, id) so only a page of rows is in memory at a time; each page is
 * folded into per-version aggregates.
 */
async function scanOutcomeWindow(
  store: Store,
  w: { name: string; from: number; to: number; matrix: ValueMatrix | undefined; prices: CostModel },
): Promise<Map<string, VersionWindow>> {
  if (!(w.to > w.from)) {
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      `outcomes window: 'to' (${w.to}) must be after 'from' (${w.from})`,
    );
  }
  const out = new Map<string, VersionWindow>();
  let afterTime = Number.NEGATIVE_INFINITY;
  let afterId = -1;
  for (;;) {
    let q = store.db
      .selectFrom('monitor_predictions')
      .select(['prediction_id', 'time', 'version', 'shadow', 'latency_ms', 'outputs_json', 'label_json'])
      .select(sql<number>`length(inputs_json) + length(outputs_json)`.as('log_chars'))
      .where('model', '=', w.name)
      .where('time', '>=', w.from)
      .where('time', '<', w.to)
      .where('error', 'is', null);
    if (afterId >= 0) {
      const t = afterTime;
      const id = afterId;
      q = q.where((eb) =>
        eb.or([eb('time', '>', t), eb.and([eb('time', '=', t), eb('prediction_id', '>', id)])]),
      );
    }
    const page = await q.orderBy('time').orderBy('prediction_id').limit(PAGE_ROWS).execute();
    if (page.length === 0) break;
    afterTime = Number(page[page.length - 1]!.time);
    afterId = Number(page[page.length - 1]!.prediction_id);
    for (const r of page) {
      let v = out.get(r.version);
      if (!v) {
        v = {
          requests: 0,
          shadowRequests: 0,
          rows: 0,
          latencies: [],
          value: w.matrix ? new ValueAccumulator(w.matrix) : undefined,
          logBytes: 0,
          logCost: 0,
        };
        out.set(r.version, v);
      }
      const outputs = JSON.parse(r.outputs_json) as Record<string, unknown[]>;
      v.requests++;
      if (Number(r.shadow) === 1) v.shadowRequests++;
      v.rows += rowCount(outputs);
      v.latencies.push(Number(r.latency_ms));
      const bytes = Number(r.log_chars);
      v.logBytes += bytes;
      v.logCost += (bytes / 1e9) * w.prices.gbMonth * ((w.to - Number(r.time)) / MONTH_MS);
      if (r.label_json !== null) v.value?.add(outputs, JSON.parse(r.label_json));
    }
    if (page.length < PAGE_ROWS) break;
  }
  return out;
}

function rowCount(outputs: Record<string, unknown[]>): number {
  const first = Object.values(outputs)[0];
  return first ? first.length : 0;
}

/** Linear-interpolation-free quantile (the value at ⌈q·n⌉), as the training-time latency figure. */
function quantile(sorted: Float64Array, q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

/** Bytes of a version's run artifacts; the measured package size when they cannot be listed. */
async function versionArtifactBytes(
  registry: SqlModelRegistry,
  name: string,
  version: string,
): Promise<number> {
  const mv = await registry.getModelVersion(name, version).catch(() => undefined);
  if (!mv?.run_id || !registry.tracking) return 0;
  const run = await registry.tracking.getRun(mv.run_id).catch(() => undefined);
  if (!run) return 0;
  const listed = await treeBytes(registry.artifacts, artifactStorePathOf(run.info.artifact_uri)).catch(
    () => undefined,
  );
  if (listed !== undefined && listed > 0) return listed;
  return runCostOf(run)?.model_size_bytes ?? 0;
}

async function treeBytes(artifacts: ArtifactStore, prefix: string): Promise<number> {
  let total = 0;
  // Listed paths are the store's own (prefix included).
  for (const entry of await artifacts.list(prefix)) {
    total += entry.isDir ? await treeBytes(artifacts, entry.path) : (entry.size ?? 0);
  }
  return total;
}

import { type CostModel, costModelSettings } from '../config.js';
import { describeValueMatrix, type ValueMatrix } from '../learn/index.js';
import { readPredictionWindow } from '../monitor/index.js';
import {
  checkModelName,
  getPromotionPolicy,
  policyValueMatrix,
  runCostOf,
  type SqlModelRegistry,
} from '../registry/index.js';
import type { Store } from '../store/index.js';
import { compareValue, type RealisedValue, realisedValue } from './realised-value.js';
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
 *   storage = the model package's bytes at the GB-month price, for the window's share of a
 *   30-day month.
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
  const logged = await readPredictionWindow(ctx.store, {
    model: name,
    from: req.from,
    to: req.to,
    includeShadow: true,
  });
  const byVersion = new Map<string, typeof logged>();
  for (const r of logged) {
    const list = byVersion.get(r.version) ?? [];
    list.push(r);
    byVersion.set(r.version, list);
  }
  const aliasesOf = new Map<string, string[]>();
  for (const a of model.aliases ?? []) {
    const list = aliasesOf.get(String(a.version)) ?? [];
    list.push(a.alias);
    aliasesOf.set(String(a.version), list);
  }
  const versions = [...new Set([...usage.keys(), ...byVersion.keys(), ...aliasesOf.keys()])].sort(
    (a, b) => Number(a) - Number(b) || a.localeCompare(b),
  );
  const currency = [...usage.values()][0]?.currency ?? prices.currency;
  const out: VersionOutcome[] = [];
  for (const version of versions) {
    const u = usage.get(version);
    const rows = byVersion.get(version) ?? [];
    const predictions = u ? u.predictions : rows.reduce((n, r) => n + rowCount(r.outputs), 0);
    const latencies = Float64Array.from(rows, (r) => r.latency_ms).sort();
    const serving = u?.cost ?? 0;
    const storage = await storageCost(ctx.registry, name, version, prices, req.to - req.from);
    const total = serving + storage;
    let value: VersionOutcome['value'] = null;
    if (matrix) {
      const labelled = rows.filter((r) => r.label !== undefined);
      if (labelled.length > 0) {
        const realised = realisedValue(labelled, matrix);
        value = { ...realised, estimated: (realised.per1k * predictions) / 1000 };
      }
    }
    out.push({
      version,
      aliases: aliasesOf.get(version) ?? [],
      predictions,
      requests: u ? u.requests : rows.length,
      predictions_sampled: !u,
      logged_predictions: rows.length,
      latency_ms: latencies.length ? { p50: quantile(latencies, 0.5), p99: quantile(latencies, 0.99) } : null,
      cost: {
        cpu_seconds: u?.cpuSeconds ?? 0,
        serving,
        storage,
        total,
        per_1k_predictions: u && u.predictions > 0 ? (1000 * u.cost) / u.predictions : null,
      },
      value,
      net: value ? value.estimated - total : null,
      shadow: rows.length > 0 && rows.every((r) => r.shadow),
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

function rowCount(outputs: Record<string, unknown[]>): number {
  const first = Object.values(outputs)[0];
  return first ? first.length : 0;
}

/** Linear-interpolation-free quantile (the value at ⌈q·n⌉), as the training-time latency figure. */
function quantile(sorted: Float64Array, q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

async function storageCost(
  registry: SqlModelRegistry,
  name: string,
  version: string,
  prices: CostModel,
  windowMs: number,
): Promise<number> {
  const mv = await registry.getModelVersion(name, version).catch(() => undefined);
  if (!mv?.run_id || !registry.tracking) return 0;
  const run = await registry.tracking.getRun(mv.run_id).catch(() => undefined);
  const cost = run ? runCostOf(run) : undefined;
  if (cost?.model_size_bytes === undefined) return 0;
  return (cost.model_size_bytes / 1e9) * prices.gbMonth * (windowMs / MONTH_MS);
}

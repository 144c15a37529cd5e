import type { Transaction } from 'kysely';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { KilnError } from '../errors.js';
import { publishEvent } from '../events/index.js';
import { checkModelName } from '../registry/index.js';
import type { Database } from '../store/index.js';
import { loadMonitorWindow } from './drift-check.js';
import {
  loadTrainingReference,
  type MonitorContext,
  resolveMonitoredModel,
  type TrainingReference,
} from './model-reference.js';
import { performanceReport } from './performance.js';
import { parseDuration } from './prediction-log.js';
import { type DriftReport, driftReport } from './window-drift.js';
import type { WindowData } from './window-scan.js';

/**
 * Alert rules per registered model, evaluated on demand (`kiln monitor check`) and on a schedule
 * (`kiln server --monitor-interval-ms`). A rule set names the alias (or version) it watches; each
 * check resolves it again, so after a promotion the new champion is watched.
 *
 * A rule is ok or firing. A check that finds a rule's condition true while it is ok fires it: the
 * alert is stored with its evidence and `alert.fired` is published through the events outbox in
 * the same transaction (webhooks deliver it, signed and retried; pipelines can retrain on it). A
 * firing rule whose condition is false again resolves, publishing `alert.resolved`. The
 * transition is a conditional UPDATE of the rule's state row, so two checks at once (two servers)
 * fire once. A silenced rule does not fire until the silence ends; acknowledging marks who
 * looked, and the alert stays firing until its condition clears. A rule whose data is missing
 * (no labels yet, an empty window) is `no_data`: it neither fires nor resolves.
 */
const name = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/, 'letters, digits, _ . - (at most 128)');
const duration = z.string().max(32);
const base = { name, window: duration.optional(), description: z.string().max(2000).optional() };
const RuleSchema = z.discriminatedUnion('kind', [
  z.object({ ...base, kind: z.literal('dataset_drift'), share: z.number().gt(0).lte(1).optional() }).strict(),
  z
    .object({
      ...base,
      kind: z.literal('feature_drift'),
      feature: z.string().min(1).max(256),
      test: z.enum(['ks', 'chisquare', 'z', 'wasserstein', 'jensenshannon', 'psi', 'hellinger']).optional(),
      threshold: z.number().optional(),
    })
    .strict(),
  z
    .object({
      ...base,
      kind: z.literal('metric_below'),
      metric: z.enum(['auc', 'precision', 'recall', 'accuracy']),
      below: z.number(),
      min_labels: z.number().int().min(1).optional(),
    })
    .strict(),
  z
    .object({
      ...base,
      kind: z.literal('metric_above'),
      metric: z.enum(['logloss', 'rmse', 'mae']),
      above: z.number(),
      min_labels: z.number().int().min(1).optional(),
    })
    .strict(),
  z
    .object({
      ...base,
      kind: z.literal('estimated_metric_below'),
      metric: z.enum(['auc', 'precision', 'recall', 'accuracy']),
      below: z.number(),
    })
    .strict(),
  z.object({ ...base, kind: z.literal('latency_p99_above'), ms: z.number().positive() }).strict(),
  z.object({ ...base, kind: z.literal('error_rate_above'), rate: z.number().min(0).max(1) }).strict(),
  z
    .object({
      ...base,
      kind: z.literal('volume_drop'),
      drop: z.number().gt(0).lte(1),
      min_previous: z.number().int().min(1).optional(),
    })
    .strict(),
]);
export type AlertRule = z.output<typeof RuleSchema>;

const RuleSetSchema = z
  .object({
    alias: z.string().min(1).max(256).optional(),
    version: z.union([z.string(), z.number()]).optional(),
    window: duration.optional(),
    rules: z.array(RuleSchema).min(1).max(100),
  })
  .strict();
export interface AlertRuleSet {
  alias?: string;
  version?: string;
  window: string;
  rules: AlertRule[];
}

export const ALERT_RULE_KINDS = RuleSchema.options.map((o) => o.shape.kind.value);

/** Parses and checks a rule set; errors name the file and the field (`rules[2].below`). */
export function parseAlertRules(text: string, source: string): AlertRuleSet {
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (e) {
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      `${source}: not valid YAML (${(e as Error).message.split('\n')[0]})`,
    );
  }
  const parsed = RuleSetSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      `${source}: ${issue.path.join('.').replace(/\.(\d+)/g, '[$1]') || '(top level)'}: ${issue.message}${issue.path.at(-1) === 'kind' || issue.code === 'invalid_union' ? ` (kinds: ${ALERT_RULE_KINDS.join(', ')})` : ''}`,
    );
  }
  const set = parsed.data;
  if (set.alias !== undefined && set.version !== undefined) {
    throw new KilnError('INVALID_PARAMETER_VALUE', `${source}: give alias or version, not both`);
  }
  const seen = new Set<string>();
  set.rules.forEach((r, i) => {
    if (seen.has(r.name))
      throw new KilnError(
        'INVALID_PARAMETER_VALUE',
        `${source}: rules[${i}].name: '${r.name}' is used twice`,
      );
    seen.add(r.name);
    if (r.window !== undefined) parseDuration(r.window, `${source}: rules[${i}].window`);
  });
  const window = set.window ?? '24h';
  parseDuration(window, `${source}: window`);
  return {
    ...(set.version !== undefined ? { version: String(set.version) } : { alias: set.alias ?? 'champion' }),
    window,
    rules: set.rules,
  };
}

export interface StoredRuleSet extends AlertRuleSet {
  model: string;
  updated_by: string;
  updated_time: number;
}

export async function setAlertRules(
  ctx: MonitorContext,
  model: string,
  text: string,
  source: string,
  actor = 'kiln',
  now = Date.now(),
): Promise<StoredRuleSet> {
  checkModelName(model, 'model');
  const set = parseAlertRules(text, source);
  await ctx.registry.getRegisteredModel(model);
  const names = set.rules.map((r) => r.name);
  await ctx.store.db.transaction().execute(async (trx) => {
    const row = { rules_json: JSON.stringify(set), source_yaml: text, updated_by: actor, updated_time: now };
    await trx
      .insertInto('monitor_alert_rules')
      .values({ model, ...row })
      .onConflict((oc) => oc.column('model').doUpdateSet(row))
      .execute();
    // A rule dropped from the set stops: its firing alert resolves (and says why).
    const dropped = await trx
      .selectFrom('monitor_alert_state')
      .selectAll()
      .where('model', '=', model)
      .execute();
    for (const s of dropped) {
      if (names.includes(s.rule)) continue;
      if (s.status === 'firing' && s.alert_id !== null) {
        await resolveAlertRow(
          trx,
          Number(s.alert_id),
          { reason: 'rule removed from the rule set' },
          now,
          actor,
        );
      }
      await trx
        .deleteFrom('monitor_alert_state')
        .where('model', '=', model)
        .where('rule', '=', s.rule)
        .execute();
    }
  });
  return { model, ...set, updated_by: actor, updated_time: now };
}

export async function getAlertRules(ctx: MonitorContext, model: string): Promise<StoredRuleSet> {
  const row = await ctx.store.db
    .selectFrom('monitor_alert_rules')
    .selectAll()
    .where('model', '=', model)
    .executeTakeFirst();
  if (!row)
    throw new KilnError(
      'RESOURCE_DOES_NOT_EXIST',
      `model '${model}' has no alert rules (kiln monitor alerts set ${model} rules.yaml)`,
    );
  return {
    model,
    ...(JSON.parse(row.rules_json) as AlertRuleSet),
    updated_by: row.updated_by,
    updated_time: Number(row.updated_time),
  };
}

export async function modelsWithAlertRules(ctx: MonitorContext): Promise<string[]> {
  const rows = await ctx.store.db
    .selectFrom('monitor_alert_rules')
    .select('model')
    .orderBy('model')
    .execute();
  return rows.map((r) => r.model);
}

export interface StoredAlert {
  id: number;
  model: string;
  rule: string;
  kind: string;
  version: string;
  alias?: string;
  status: 'firing' | 'resolved';
  fired_time: number;
  resolved_time?: number;
  evidence: Record<string, unknown>;
  resolve_evidence?: Record<string, unknown>;
  acked_by?: string;
  acked_time?: number;
}

type AlertRow = Awaited<ReturnType<typeof alertRows>>[number];
function alertRows(ctx: MonitorContext) {
  return ctx.store.db.selectFrom('monitor_alerts').selectAll().execute();
}

function toAlert(r: AlertRow): StoredAlert {
  return {
    id: Number(r.alert_id),
    model: r.model,
    rule: r.rule,
    kind: r.kind,
    version: r.version,
    ...(r.alias !== null ? { alias: r.alias } : {}),
    status: r.status as StoredAlert['status'],
    fired_time: Number(r.fired_time),
    ...(r.resolved_time !== null ? { resolved_time: Number(r.resolved_time) } : {}),
    evidence: JSON.parse(r.evidence_json),
    ...(r.resolve_evidence_json !== null ? { resolve_evidence: JSON.parse(r.resolve_evidence_json) } : {}),
    ...(r.acked_by !== null ? { acked_by: r.acked_by, acked_time: Number(r.acked_time) } : {}),
  };
}

export async function listAlerts(
  ctx: MonitorContext,
  o: { model?: string; status?: 'firing' | 'resolved'; limit?: number } = {},
): Promise<StoredAlert[]> {
  const limit = o.limit ?? 100;
  if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) {
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      `limit: expected a whole number from 1 to 10000, got ${o.limit}`,
    );
  }
  if (o.status !== undefined && o.status !== 'firing' && o.status !== 'resolved') {
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      `status: expected firing or resolved, got '${String(o.status).slice(0, 40)}'`,
    );
  }
  let q = ctx.store.db.selectFrom('monitor_alerts').selectAll();
  if (o.model !== undefined) q = q.where('model', '=', o.model);
  if (o.status !== undefined) q = q.where('status', '=', o.status);
  const rows = await q.orderBy('alert_id', 'desc').limit(limit).execute();
  return rows.map(toAlert);
}

export async function ackAlert(
  ctx: MonitorContext,
  id: number,
  actor: string,
  now = Date.now(),
): Promise<StoredAlert> {
  if (!Number.isSafeInteger(id) || id < 1)
    throw new KilnError('INVALID_PARAMETER_VALUE', `alert id: expected a positive whole number, got ${id}`);
  const r = await ctx.store.db
    .updateTable('monitor_alerts')
    .set({ acked_by: actor, acked_time: now })
    .where('alert_id', '=', id)
    .where('acked_by', 'is', null)
    .executeTakeFirst();
  void r; // already acknowledged: the first acknowledgement is kept
  const row = await ctx.store.db
    .selectFrom('monitor_alerts')
    .selectAll()
    .where('alert_id', '=', id)
    .executeTakeFirst();
  if (!row) throw new KilnError('RESOURCE_DOES_NOT_EXIST', `alert ${id} does not exist`);
  return toAlert(row);
}

/** Silences `rule` of `model` until now + forMs: it does not fire meanwhile (a firing alert still resolves). */
export async function silenceRule(
  ctx: MonitorContext,
  model: string,
  rule: string,
  forMs: number,
  actor: string,
  now = Date.now(),
): Promise<{ model: string; rule: string; silenced_until: number; silenced_by: string }> {
  const set = await getAlertRules(ctx, model);
  if (!set.rules.some((r) => r.name === rule)) {
    throw new KilnError(
      'RESOURCE_DOES_NOT_EXIST',
      `model '${model}' has no alert rule '${rule}' (rules: ${set.rules.map((r) => r.name).join(', ')})`,
    );
  }
  const until = now + forMs;
  await ensureState(ctx.store.db, model, rule);
  await ctx.store.db
    .updateTable('monitor_alert_state')
    .set({ silenced_until: until, silenced_by: actor })
    .where('model', '=', model)
    .where('rule', '=', rule)
    .execute();
  return { model, rule, silenced_until: until, silenced_by: actor };
}

type Db = MonitorContext['store']['db'];
async function ensureState(db: Db, model: string, rule: string): Promise<void> {
  await db
    .insertInto('monitor_alert_state')
    .values({
      model,
      rule,
      status: 'ok',
      alert_id: null,
      silenced_until: null,
      silenced_by: null,
      last_checked: null,
      last_value: null,
    })
    .onConflict((oc) => oc.columns(['model', 'rule']).doNothing())
    .execute();
}

export interface RuleOutcome {
  rule: string;
  kind: string;
  /** What the condition found: `firing` / `ok`, or `no_data` when it could not be decided. */
  condition: 'firing' | 'ok' | 'no_data';
  /** What the check did to the stored state. */
  action: 'fired' | 'resolved' | 'still_firing' | 'still_ok' | 'silenced' | 'none';
  value?: number;
  evidence: Record<string, unknown>;
  alert_id?: number;
}

export interface CheckResult {
  model: string;
  version: string;
  alias?: string;
  checked_time: number;
  rules: RuleOutcome[];
}

interface WindowEval {
  windowMs: number;
  window: { from: string; to: string; duration: string };
  data: WindowData;
  drift?: DriftReport;
  performance?: ReturnType<typeof performanceReport>;
}

/** Evaluates every rule of `model` now; fires and resolves as the conditions say. */
export async function checkAlerts(
  ctx: MonitorContext,
  model: string,
  now = Date.now(),
  actor = 'monitor',
): Promise<CheckResult> {
  const set = await getAlertRules(ctx, model);
  const target = set.version !== undefined ? `${model}/${set.version}` : `${model}@${set.alias}`;
  const monitored = await resolveMonitoredModel(ctx.registry, target);
  const reference = await loadTrainingReference(ctx, monitored);
  const windows = new Map<string, WindowEval>();
  const windowOf = async (d: string): Promise<WindowEval> => {
    let w = windows.get(d);
    if (!w) {
      const windowMs = parseDuration(d, 'window');
      const { data } = await loadMonitorWindow(ctx, monitored.uri.replace(/^models:\//, ''), {
        windowMs,
        end: now,
      });
      w = {
        windowMs,
        window: {
          from: new Date(now - windowMs).toISOString(),
          to: new Date(now).toISOString(),
          duration: d,
        },
        data,
      };
      windows.set(d, w);
    }
    return w;
  };
  const outcomes: RuleOutcome[] = [];
  for (const rule of set.rules) {
    const w = await windowOf(rule.window ?? set.window);
    const { condition, value, evidence } = await evaluateRule(ctx, rule, reference, w, monitored.name, now);
    outcomes.push(
      await transition(ctx, {
        model,
        rule,
        condition,
        value,
        evidence,
        now,
        actor,
        reference,
        window: w.window,
      }),
    );
  }
  return {
    model,
    version: monitored.version,
    ...(monitored.alias ? { alias: monitored.alias } : {}),
    checked_time: now,
    rules: outcomes,
  };
}

async function evaluateRule(
  ctx: MonitorContext,
  rule: AlertRule,
  reference: TrainingReference,
  w: WindowEval,
  model: string,
  now: number,
): Promise<{ condition: RuleOutcome['condition']; value?: number; evidence: Record<string, unknown> }> {
  const drift = () => {
    if (rule.kind === 'feature_drift' && (rule.test || rule.threshold !== undefined)) {
      return driftReport(reference, w.data, {
        perColumn: {
          [rule.feature]: {
            ...(rule.test ? { test: rule.test } : {}),
            ...(rule.threshold !== undefined ? { threshold: rule.threshold } : {}),
          },
        },
      });
    }
    w.drift ??= driftReport(reference, w.data);
    return w.drift;
  };
  const perf = () => {
    w.performance ??= performanceReport(reference, w.data);
    return w.performance;
  };
  switch (rule.kind) {
    case 'dataset_drift': {
      const d = drift();
      const share = rule.share ?? 0.5;
      if (d.dataset.testedFeatures === 0)
        return { condition: 'no_data', evidence: { reason: 'no feature has values in the window' } };
      return {
        condition: d.dataset.share >= share ? 'firing' : 'ok',
        value: d.dataset.share,
        evidence: {
          share: d.dataset.share,
          share_threshold: share,
          drifted_features: d.features
            .filter((f) => f.drifted)
            .map((f) => ({ feature: f.column, test: f.test, score: f.score, threshold: f.threshold })),
          tested_features: d.dataset.testedFeatures,
          rows: w.data.rows,
        },
      };
    }
    case 'feature_drift': {
      const d = drift();
      const f = d.features.find((x) => x.column === rule.feature);
      if (!f) {
        throw new KilnError(
          'INVALID_PARAMETER_VALUE',
          `rule '${rule.name}': '${rule.feature}' is not a monitored feature of ${reference.model.uri} (features: ${reference.features.join(', ')})`,
        );
      }
      if (f.status !== 'tested')
        return { condition: 'no_data', evidence: { feature: f.column, reason: f.reason } };
      return {
        condition: f.drifted ? 'firing' : 'ok',
        value: f.score!,
        evidence: {
          feature: f.column,
          test: f.test,
          score: f.score,
          threshold: f.threshold,
          ...(f.errorBound !== undefined ? { error_bound: f.errorBound } : {}),
          rows: f.currentRows,
          quality: f.quality,
        },
      };
    }
    case 'metric_below':
    case 'metric_above': {
      const p = perf();
      const minLabels = rule.min_labels ?? 50;
      const m = p.measured?.[rule.metric];
      if (!p.measured || p.labels.labelled < minLabels || m === undefined) {
        return {
          condition: 'no_data',
          evidence: { metric: rule.metric, labelled: p.labels.labelled, min_labels: minLabels },
        };
      }
      const bad = rule.kind === 'metric_below' ? m < rule.below : m > rule.above;
      return {
        condition: bad ? 'firing' : 'ok',
        value: m,
        evidence: {
          metric: rule.metric,
          value: m,
          ...(rule.kind === 'metric_below' ? { below: rule.below } : { above: rule.above }),
          labelled: p.labels.labelled,
          ...(p.training?.metrics[rule.metric] !== undefined
            ? { training: p.training.metrics[rule.metric] }
            : {}),
        },
      };
    }
    case 'estimated_metric_below': {
      const p = perf();
      const m = p.estimated?.[rule.metric];
      if (m === undefined)
        return {
          condition: 'no_data',
          evidence: { metric: rule.metric, reason: 'no predictions to estimate from' },
        };
      return {
        condition: m < rule.below ? 'firing' : 'ok',
        value: m,
        evidence: {
          metric: rule.metric,
          estimated: m,
          below: rule.below,
          rows: p.estimated!.rows,
          method: 'CBPE',
          assumption: p.calibration?.assumption,
          ...(p.calibration?.referenceEce !== undefined ? { reference_ece: p.calibration.referenceEce } : {}),
        },
      };
    }
    case 'latency_p99_above': {
      const lat = w.data.latencies;
      if (lat.length === 0)
        return { condition: 'no_data', evidence: { reason: 'no requests in the window' } };
      const p99 = percentile(lat, 0.99);
      return {
        condition: p99 > rule.ms ? 'firing' : 'ok',
        value: p99,
        evidence: { p99_ms: p99, p50_ms: percentile(lat, 0.5), above_ms: rule.ms, requests: lat.length },
      };
    }
    case 'error_rate_above': {
      const errors = await countRequests(ctx, model, reference.model.version, now - w.windowMs, now, true);
      const total = errors + w.data.requests;
      if (total === 0) return { condition: 'no_data', evidence: { reason: 'no requests in the window' } };
      const rate = errors / total;
      return {
        condition: rate > rule.rate ? 'firing' : 'ok',
        value: rate,
        evidence: { error_rate: rate, errors, requests: total, above: rule.rate },
      };
    }
    case 'volume_drop': {
      const previous = await countRequests(
        ctx,
        model,
        reference.model.version,
        now - 2 * w.windowMs,
        now - w.windowMs,
        false,
      );
      const minPrevious = rule.min_previous ?? 1;
      if (previous < minPrevious) {
        return { condition: 'no_data', evidence: { previous_requests: previous, min_previous: minPrevious } };
      }
      const current = w.data.requests;
      const drop = 1 - current / previous;
      return {
        condition: drop >= rule.drop ? 'firing' : 'ok',
        value: drop,
        evidence: { requests: current, previous_requests: previous, drop, drop_threshold: rule.drop },
      };
    }
  }
}

/** Logged requests of a version in [from, to): served ones, or the failed ones (`errors`). */
async function countRequests(
  ctx: MonitorContext,
  model: string,
  version: string,
  from: number,
  to: number,
  errors: boolean,
): Promise<number> {
  let q = ctx.store.db
    .selectFrom('monitor_predictions')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('model', '=', model)
    .where('version', '=', version)
    .where('shadow', '=', 0)
    .where('time', '>=', from)
    .where('time', '<', to);
  q = errors ? q.where('error', 'is not', null) : q.where('error', 'is', null);
  return Number((await q.executeTakeFirst())?.n ?? 0);
}

function percentile(values: Float64Array, q: number): number {
  const sorted = Float64Array.from(values).sort();
  // numpy's default (linear interpolation between closest ranks).
  const pos = q * (sorted.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.min(sorted.length - 1, lo + 1);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

async function transition(
  ctx: MonitorContext,
  o: {
    model: string;
    rule: AlertRule;
    condition: RuleOutcome['condition'];
    value?: number;
    evidence: Record<string, unknown>;
    now: number;
    actor: string;
    reference: TrainingReference;
    window: WindowEval['window'];
  },
): Promise<RuleOutcome> {
  const { model, rule, now } = o;
  const m = o.reference.model;
  const outcome: RuleOutcome = {
    rule: rule.name,
    kind: rule.kind,
    condition: o.condition,
    action: 'none',
    ...(o.value !== undefined ? { value: o.value } : {}),
    evidence: o.evidence,
  };
  await ensureState(ctx.store.db, model, rule.name);
  return ctx.store.db.transaction().execute(async (trx) => {
    const state = (await trx
      .selectFrom('monitor_alert_state')
      .selectAll()
      .where('model', '=', model)
      .where('rule', '=', rule.name)
      .executeTakeFirst())!;
    await trx
      .updateTable('monitor_alert_state')
      .set({ last_checked: now, last_value: o.value ?? null })
      .where('model', '=', model)
      .where('rule', '=', rule.name)
      .execute();
    const payload = (alertId: number) => ({
      alert_id: alertId,
      rule: rule.name,
      kind: rule.kind,
      model: m.name,
      version: m.version,
      alias: m.alias ?? null,
      window: o.window,
      evidence: o.evidence,
    });
    if (o.condition === 'firing' && state.status === 'ok') {
      if (state.silenced_until !== null && Number(state.silenced_until) > now) {
        outcome.action = 'silenced';
        outcome.evidence = {
          ...o.evidence,
          silenced_until: Number(state.silenced_until),
          silenced_by: state.silenced_by,
        };
        return outcome;
      }
      const claimed = await trx
        .updateTable('monitor_alert_state')
        .set({ status: 'firing' })
        .where('model', '=', model)
        .where('rule', '=', rule.name)
        .where('status', '=', 'ok')
        .executeTakeFirst();
      if (Number(claimed.numUpdatedRows) !== 1) {
        outcome.action = 'still_firing';
        return outcome;
      }
      const row = await trx
        .insertInto('monitor_alerts')
        .values({
          model,
          rule: rule.name,
          kind: rule.kind,
          version: m.version,
          alias: m.alias ?? null,
          status: 'firing',
          fired_time: now,
          resolved_time: null,
          evidence_json: JSON.stringify({ window: o.window, ...o.evidence }),
          resolve_evidence_json: null,
          acked_by: null,
          acked_time: null,
        })
        .returning('alert_id')
        .executeTakeFirstOrThrow();
      const id = Number(row.alert_id);
      await trx
        .updateTable('monitor_alert_state')
        .set({ alert_id: id })
        .where('model', '=', model)
        .where('rule', '=', rule.name)
        .execute();
      await publishEvent(trx, {
        type: 'alert.fired',
        subject: `monitors:/${model}/${rule.name}`,
        actor: o.actor,
        payload: payload(id),
      });
      outcome.action = 'fired';
      outcome.alert_id = id;
      return outcome;
    }
    if (o.condition === 'ok' && state.status === 'firing') {
      const claimed = await trx
        .updateTable('monitor_alert_state')
        .set({ status: 'ok', alert_id: null })
        .where('model', '=', model)
        .where('rule', '=', rule.name)
        .where('status', '=', 'firing')
        .executeTakeFirst();
      if (Number(claimed.numUpdatedRows) !== 1) {
        outcome.action = 'still_ok';
        return outcome;
      }
      const id = Number(state.alert_id);
      await trx
        .updateTable('monitor_alerts')
        .set({
          status: 'resolved',
          resolved_time: now,
          resolve_evidence_json: JSON.stringify({ window: o.window, ...o.evidence }),
        })
        .where('alert_id', '=', id)
        .execute();
      await publishEvent(trx, {
        type: 'alert.resolved',
        subject: `monitors:/${model}/${rule.name}`,
        actor: o.actor,
        payload: payload(id),
      });
      outcome.action = 'resolved';
      outcome.alert_id = id;
      return outcome;
    }
    if (state.status === 'firing') {
      outcome.action = 'still_firing';
      if (state.alert_id !== null) outcome.alert_id = Number(state.alert_id);
    } else outcome.action = o.condition === 'ok' ? 'still_ok' : 'none';
    return outcome;
  });
}

async function resolveAlertRow(
  trx: Transaction<Database>,
  id: number,
  evidence: Record<string, unknown>,
  now: number,
  actor: string,
): Promise<void> {
  const row = await trx
    .selectFrom('monitor_alerts')
    .selectAll()
    .where('alert_id', '=', id)
    .executeTakeFirst();
  if (row?.status !== 'firing') return;
  await trx
    .updateTable('monitor_alerts')
    .set({ status: 'resolved', resolved_time: now, resolve_evidence_json: JSON.stringify(evidence) })
    .where('alert_id', '=', id)
    .execute();
  await publishEvent(trx, {
    type: 'alert.resolved',
    subject: `monitors:/${row.model}/${row.rule}`,
    actor,
    payload: {
      alert_id: id,
      rule: row.rule,
      kind: row.kind,
      model: row.model,
      version: row.version,
      alias: row.alias,
      window: null,
      evidence,
    },
  });
}

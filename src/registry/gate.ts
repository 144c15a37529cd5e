import { appendAudit, hasRole } from '../auth/index.js';
import { listValidations } from '../data/index.js';
import { KilnError } from '../errors.js';
import { publishEvent } from '../events/index.js';
import {
  describeValueMatrix,
  isRegressionValue,
  regressionValuePer1kFromMetrics,
  type ValueMatrix,
  valuePer1k,
} from '../learn/index.js';
import type { Run } from '../tracking/index.js';
import { describeFinding, personalDataTouched } from './personal-data-use.js';
import { type GuardRule, getPromotionPolicy, type PromotionPolicy, policyValueMatrix } from './policy.js';
import type { SqlModelRegistry } from './sql-registry.js';
import type { Actor, ModelVersion } from './types.js';
import { checkAlias, checkModelName, checkVersion } from './validation.js';

/**
 * The promotion gate: the only way to move a protected alias. `promoteVersion` evaluates the
 * candidate against the alias's current holder under the model's policy (policy.ts), records
 * the decision (accepted, refused or forced) with every rule's numbers, and, when accepted,
 * moves the alias, all in one transaction with its alias-history event and audit entries.
 *
 * "The same held-out data": two runs were evaluated on the same held-out rows when they
 * carry the same data hash (`kiln.dataset.hash` for a dataset version, else `kiln.data.hash`
 * for a file) and identical split tags (`kiln.split.*`: method, seed, column, fractions or
 * boundaries, row counts) and row filter (`kiln.data.where`), as `kiln train` logs them. When
 * either run lacks them, or they differ, data-dependent metrics (`test.*`, `valid.*`,
 * `train.*`) cannot be compared and the gate refuses, saying which tag differs.
 */
export type RuleOutcome = 'passed' | 'failed';

export interface GateRuleResult {
  rule: string;
  outcome: RuleOutcome;
  /** What was checked, with the numbers: "test.auc 0.912 vs 0.905: +0.007 ≥ margin 0.002". */
  detail: string;
  candidate?: number;
  incumbent?: number;
  threshold?: number;
}

export interface PromotionResult {
  promotion_id: number;
  name: string;
  version: string;
  alias: string;
  decision: 'accepted' | 'refused' | 'forced';
  incumbent_version: string | null;
  rules: GateRuleResult[];
  actor: string;
  time: number;
}

export interface PromoteRequest {
  name: string;
  version: string;
  alias: string;
  /** Admins only: move the alias even if rules fail (the failures are still recorded). */
  force?: boolean;
}

const DATA_PARTS = /^(test|valid|train)\./;

export async function promoteVersion(
  registry: SqlModelRegistry,
  req: PromoteRequest,
  actor: Actor,
): Promise<PromotionResult> {
  const name = checkModelName(req.name);
  const version = checkVersion(req.version);
  const alias = checkAlias(req.alias);
  const stored = await getPromotionPolicy(registry, name);
  if (!stored) {
    throw new KilnError(
      'INVALID_STATE',
      `Registered model '${name}' has no promotion policy: set one with kiln models policy set ${name} policy.yaml (see docs/registry.md)`,
    );
  }
  const policy = stored.policy;
  if (!policy.aliases.includes(alias)) {
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      `Alias '${alias}' is not governed by the policy of '${name}' (it governs ${policy.aliases.join(', ')}); set it with kiln models alias, or add it to the policy`,
    );
  }
  if (req.force && !(await hasRole(registry.db, actor.user, 'admin', name))) {
    throw new KilnError(
      'PERMISSION_DENIED',
      `--force needs the admin role on '${name}'; ${actor.user} does not hold it`,
    );
  }
  const candidate = await registry.getModelVersion(name, String(version));
  const incumbentVersion = await currentHolder(registry, name, alias);
  if (incumbentVersion === String(version)) {
    throw new KilnError('INVALID_STATE', `Version ${version} already holds ${name}@${alias}`);
  }
  const incumbent = incumbentVersion ? await registry.getModelVersion(name, incumbentVersion) : undefined;
  const rules = await evaluateRules(registry, policy, candidate, incumbent, alias, actor);
  const failed = rules.filter((r) => r.outcome === 'failed');
  const decision: PromotionResult['decision'] =
    failed.length === 0 ? 'accepted' : req.force ? 'forced' : 'refused';
  const time = Date.now();

  const promotionId = await registry.transaction(async (trx) => {
    // The holder read above must still hold: otherwise this evaluation compared against the wrong model.
    const now = await trx
      .selectFrom('registered_model_aliases')
      .select('version')
      .where('name', '=', name)
      .where('alias', '=', alias)
      .executeTakeFirst();
    if ((now ? String(now.version) : null) !== incumbentVersion) {
      throw new KilnError(
        'INVALID_STATE',
        `${name}@${alias} moved while the gate was evaluating; run the promotion again`,
      );
    }
    const row = await trx
      .insertInto('registry_promotions')
      .values({
        name,
        version,
        alias,
        actor: actor.user,
        time,
        decision,
        incumbent_version: incumbentVersion === null ? null : Number(incumbentVersion),
        rules_json: JSON.stringify(rules),
        reason: actor.reason ?? null,
      })
      .returning('promotion_id')
      .executeTakeFirstOrThrow();
    const id = Number(row.promotion_id);
    await appendAudit(trx, {
      actor: actor.user,
      action: `promotion.${decision}`,
      target: `models:/${name}@${alias}`,
      detail: {
        promotion_id: id,
        candidate: version,
        incumbent: incumbentVersion,
        failed: failed.map((r) => r.detail),
        policy_sha256: stored.sha256,
        reason: actor.reason,
      },
    });
    if (decision === 'refused') {
      await publishEvent(trx, {
        type: 'promotion.refused',
        subject: `models:/${name}@${alias}`,
        actor: actor.user,
        payload: {
          promotion_id: id,
          name,
          alias,
          candidate: String(version),
          incumbent: incumbentVersion,
          failed: failed.map((r) => ({ rule: r.rule, detail: r.detail })),
        },
      });
    }
    if (decision === 'refused' && failed.some((r) => r.rule === 'approval')) {
      await appendAudit(trx, {
        actor: actor.user,
        action: 'approval.request',
        target: `models:/${name}/${version}`,
        detail: { alias, promotion_id: id },
      });
      await publishEvent(trx, {
        type: 'approval.requested',
        subject: `models:/${name}/${version}`,
        actor: actor.user,
        payload: { name, version: String(version), alias, promotion_id: id },
      });
    }
    if (decision !== 'refused') {
      const reason =
        actor.reason ??
        (decision === 'forced' ? `forced past: ${failed.map((r) => r.rule).join(', ')}` : 'promotion gate');
      await registry.writeAlias(trx, name, alias, version, { ...actor, reason }, id);
    }
    return id;
  });
  return {
    promotion_id: promotionId,
    name,
    version: String(version),
    alias,
    decision,
    incumbent_version: incumbentVersion,
    rules,
    actor: actor.user,
    time,
  };
}

async function currentHolder(
  registry: SqlModelRegistry,
  name: string,
  alias: string,
): Promise<string | null> {
  const row = await registry.db
    .selectFrom('registered_model_aliases')
    .select('version')
    .where('name', '=', name)
    .where('alias', '=', alias)
    .executeTakeFirst();
  return row ? String(row.version) : null;
}

async function runOf(registry: SqlModelRegistry, v: ModelVersion): Promise<Run | undefined> {
  if (!v.run_id || !registry.tracking) return undefined;
  return registry.tracking.getRun(v.run_id).catch(() => undefined);
}

function metricOf(run: Run | undefined, key: string): number | undefined {
  const m = run?.data.metrics.find((x) => x.key === key);
  return m === undefined || Number.isNaN(m.value) ? undefined : m.value;
}

function tagsOf(run: Run): Map<string, string> {
  return new Map(run.data.tags.map((t) => [t.key, t.value]));
}

/** The identity of a run's held-out data (see the header), or why it cannot be established. */
export function heldOutDataOf(run: Run): { identity: Map<string, string> } | { missing: string } {
  const tags = tagsOf(run);
  const dataHash = tags.get('kiln.dataset.hash') ?? tags.get('kiln.data.hash');
  if (!dataHash)
    return { missing: 'no kiln.dataset.hash or kiln.data.hash tag (trained outside kiln train?)' };
  if (!tags.has('kiln.split.method'))
    return { missing: 'no kiln.split.method tag (no held-out split logged)' };
  const identity = new Map<string, string>([['data hash', dataHash]]);
  for (const [k, v] of tags) if (k.startsWith('kiln.split.') || k === 'kiln.data.where') identity.set(k, v);
  return { identity };
}

function compareHeldOut(candidate: Run, incumbent: Run): string | undefined {
  const a = heldOutDataOf(candidate);
  const b = heldOutDataOf(incumbent);
  if ('missing' in a) return `candidate run ${candidate.info.run_id}: ${a.missing}`;
  if ('missing' in b) return `holder run ${incumbent.info.run_id}: ${b.missing}`;
  for (const key of new Set([...a.identity.keys(), ...b.identity.keys()])) {
    const x = a.identity.get(key);
    const y = b.identity.get(key);
    if (x !== y) return `${key} differs: candidate ${x ?? '(absent)'}, holder ${y ?? '(absent)'}`;
  }
  return undefined;
}

const fmt = (x: number) => (Number.isInteger(x) ? String(x) : Number(x.toPrecision(6)).toString());

async function evaluateRules(
  registry: SqlModelRegistry,
  policy: PromotionPolicy,
  candidate: ModelVersion,
  incumbent: ModelVersion | undefined,
  alias: string,
  actor: Actor,
): Promise<GateRuleResult[]> {
  const rules: GateRuleResult[] = [];
  const candRun = await runOf(registry, candidate);
  const incRun = incumbent ? await runOf(registry, incumbent) : undefined;
  if (!candRun) {
    rules.push({
      rule: 'candidate-run',
      outcome: 'failed',
      detail: `version ${candidate.version} has no readable run (run_id ${candidate.run_id ?? 'absent'}): its metrics cannot be read`,
    });
  }
  if (incumbent && !incRun) {
    rules.push({
      rule: 'holder-run',
      outcome: 'failed',
      detail: `current holder version ${incumbent.version} has no readable run (run_id ${incumbent.run_id ?? 'absent'}): nothing to compare against`,
    });
  }
  const dataDependent =
    policy.value !== undefined ||
    [policy.primary.metric, ...policy.guards.map((g) => g.metric)].some((m) => DATA_PARTS.test(m));
  let sameData = true;
  const p = policy.primary;
  const floor = p.floor_on_new_data;
  if (candRun && incRun && dataDependent) {
    const why = compareHeldOut(candRun, incRun);
    sameData = why === undefined;
    // A floor for new data lets a retrain on another window through, judged on its own held-out data.
    const judgedAlone = why !== undefined && floor !== undefined && DATA_PARTS.test(p.metric);
    rules.push({
      rule: 'same-held-out-data',
      outcome: why && !judgedAlone ? 'failed' : 'passed',
      detail: why
        ? `cannot establish that versions ${candidate.version} and ${incumbent!.version} were evaluated on the same held-out data: ${why}${judgedAlone ? `; the policy judges such a candidate on its own held-out ${p.metric} against primary.floor_on_new_data ${fmt(floor!)}` : ''}`
        : `versions ${candidate.version} and ${incumbent!.version} were evaluated on the same data version and split`,
    });
  }

  // Primary metric: beat the holder by the margin.
  const cand = metricOf(candRun, p.metric);
  const inc = metricOf(incRun, p.metric);
  if (cand === undefined) {
    rules.push({
      rule: `primary:${p.metric}`,
      outcome: 'failed',
      detail: `candidate version ${candidate.version} has no metric ${p.metric}`,
    });
  } else if (!incumbent) {
    rules.push({
      rule: `primary:${p.metric}`,
      outcome: 'passed',
      detail: `${p.metric} ${fmt(cand)}; no current holder of @${alias} to beat`,
      candidate: cand,
    });
  } else if (inc === undefined) {
    rules.push({
      rule: `primary:${p.metric}`,
      outcome: 'failed',
      detail: `current holder version ${incumbent.version} has no metric ${p.metric}`,
    });
  } else if (sameData || !DATA_PARTS.test(p.metric)) {
    const gain = p.direction === 'maximize' ? cand - inc : inc - cand;
    const passed = gain >= p.min_improvement;
    rules.push({
      rule: `primary:${p.metric}`,
      outcome: passed ? 'passed' : 'failed',
      detail: `${p.metric} ${fmt(cand)} vs holder ${fmt(inc)} (${p.direction}): improvement ${fmt(gain)} ${passed ? '≥' : '<'} required margin ${fmt(p.min_improvement)}`,
      candidate: cand,
      incumbent: inc,
      threshold: p.min_improvement,
    });
  } else if (floor !== undefined) {
    const passed = p.direction === 'maximize' ? cand >= floor : cand <= floor;
    rules.push({
      rule: `primary:${p.metric}`,
      outcome: passed ? 'passed' : 'failed',
      detail: `${p.metric} ${fmt(cand)} on the candidate's own held-out data ${passed ? (p.direction === 'maximize' ? '≥' : '≤') : p.direction === 'maximize' ? '<' : '>'} primary.floor_on_new_data ${fmt(floor)} (holder ${fmt(inc)} was evaluated on other data)`,
      candidate: cand,
      incumbent: inc,
      threshold: floor,
    });
  }

  for (const g of policy.guards)
    rules.push(...guardResults(g, candRun, incumbent ? incRun : undefined, sameData, candidate));

  if (policy.value)
    rules.push(valueRule(policy.value, candRun, incumbent ? incRun : undefined, sameData, candidate));

  if (policy.require_data_validation) rules.push(await dataValidationRule(registry, candRun, candidate));
  if (policy.personal_data)
    rules.push(await personalDataRule(registry, policy.personal_data, candRun, candidate, alias, actor));
  if (policy.approval.required)
    rules.push(await approvalRule(registry, candidate, alias, actor, policy.approval.role));
  return rules;
}

function guardResults(
  g: GuardRule,
  candRun: Run | undefined,
  incRun: Run | undefined,
  sameData: boolean,
  candidate: ModelVersion,
): GateRuleResult[] {
  const out: GateRuleResult[] = [];
  const rule = `guard:${g.metric}`;
  const cand = metricOf(candRun, g.metric);
  if (cand === undefined)
    return [
      { rule, outcome: 'failed', detail: `candidate version ${candidate.version} has no metric ${g.metric}` },
    ];
  if (g.max !== undefined) {
    const passed = cand <= g.max;
    out.push({
      rule,
      outcome: passed ? 'passed' : 'failed',
      detail: `${g.metric} ${fmt(cand)} ${passed ? '≤' : '>'} ceiling ${fmt(g.max)}`,
      candidate: cand,
      threshold: g.max,
    });
  }
  if (g.min !== undefined) {
    const passed = cand >= g.min;
    out.push({
      rule,
      outcome: passed ? 'passed' : 'failed',
      detail: `${g.metric} ${fmt(cand)} ${passed ? '≥' : '<'} floor ${fmt(g.min)}`,
      candidate: cand,
      threshold: g.min,
    });
  }
  if (incRun && (g.max_regression !== undefined || g.max_regression_pct !== undefined)) {
    if (DATA_PARTS.test(g.metric) && !sameData) return out;
    const inc = metricOf(incRun, g.metric);
    if (inc === undefined) {
      out.push({
        rule,
        outcome: 'failed',
        detail: `current holder has no metric ${g.metric} to compare with`,
      });
      return out;
    }
    const worse = g.direction === 'minimize' ? cand - inc : inc - cand;
    if (g.max_regression !== undefined) {
      const passed = worse <= g.max_regression;
      out.push({
        rule,
        outcome: passed ? 'passed' : 'failed',
        detail: `${g.metric} ${fmt(cand)} vs holder ${fmt(inc)} (${g.direction}): ${worse > 0 ? `worse by ${fmt(worse)}` : 'not worse'}, allowed ${fmt(g.max_regression)}`,
        candidate: cand,
        incumbent: inc,
        threshold: g.max_regression,
      });
    }
    if (g.max_regression_pct !== undefined) {
      const pct = inc === 0 ? (worse > 0 ? Number.POSITIVE_INFINITY : 0) : (100 * worse) / Math.abs(inc);
      const passed = pct <= g.max_regression_pct;
      out.push({
        rule,
        outcome: passed ? 'passed' : 'failed',
        detail: `${g.metric} ${fmt(cand)} vs holder ${fmt(inc)} (${g.direction}): ${pct > 0 ? `${fmt(pct)} % worse` : 'not worse'}, allowed ${fmt(g.max_regression_pct)} %`,
        candidate: cand,
        incumbent: inc,
        threshold: g.max_regression_pct,
      });
    }
  }
  return out;
}

/** A run's value per 1,000 predictions on `part` under `matrix`, from its logged metrics. */
export function runValuePer1k(
  run: Run | undefined,
  matrix: ValueMatrix,
  part: string,
): { value: number } | { missing: string } {
  if (isRegressionValue(matrix)) {
    const key = `${part}.${matrix.loss === 'squared' ? 'rmse' : 'mae'}`;
    const v = regressionValuePer1kFromMetrics(
      { mae: metricOf(run, `${part}.mae`), rmse: metricOf(run, `${part}.rmse`) },
      matrix,
    );
    return v === undefined ? { missing: key } : { value: v };
  }
  const counts = { tp: 0, fp: 0, tn: 0, fn: 0 };
  for (const k of ['tp', 'fp', 'tn', 'fn'] as const) {
    const v = metricOf(run, `${part}.${k}`);
    if (v === undefined) return { missing: `${part}.${k}` };
    counts[k] = v;
  }
  return { value: valuePer1k(counts, matrix) };
}

function valueRule(
  section: NonNullable<PromotionPolicy['value']>,
  candRun: Run | undefined,
  incRun: Run | undefined,
  sameData: boolean,
  candidate: ModelVersion,
): GateRuleResult {
  const rule = 'value';
  const matrix = policyValueMatrix(section);
  const currency = candRun ? (tagsOf(candRun).get('kiln.cost.currency') ?? '') : '';
  const money = (x: number) => `${fmt(x)}${currency ? ` ${currency}` : ''}`;
  const what = `value per 1k predictions on ${section.part} (${describeValueMatrix(matrix)})`;
  const cand = runValuePer1k(candRun, matrix, section.part);
  if ('missing' in cand) {
    return {
      rule,
      outcome: 'failed',
      detail: `candidate version ${candidate.version} has no metric ${cand.missing}, so its ${what} cannot be computed (retrain with this kiln)`,
    };
  }
  if (!incRun) {
    return {
      rule,
      outcome: 'passed',
      detail: `${what}: ${money(cand.value)}; no current holder to compare with`,
      candidate: cand.value,
    };
  }
  if (!sameData) {
    return {
      rule,
      outcome: 'failed',
      detail: `${what}: not comparable, the versions were not evaluated on the same held-out data`,
      candidate: cand.value,
    };
  }
  const inc = runValuePer1k(incRun, matrix, section.part);
  if ('missing' in inc) {
    return { rule, outcome: 'failed', detail: `current holder has no metric ${inc.missing} to compare with` };
  }
  const gain = cand.value - inc.value;
  const passed = gain >= section.min_gain_per_1k;
  return {
    rule,
    outcome: passed ? 'passed' : 'failed',
    detail: `${what}: candidate ${money(cand.value)} vs holder ${money(inc.value)}: ${gain >= 0 ? 'adds' : 'loses'} ${money(Math.abs(gain))} ${passed ? '≥' : '<'} required gain ${money(section.min_gain_per_1k)}`,
    candidate: cand.value,
    incumbent: inc.value,
    threshold: section.min_gain_per_1k,
  };
}

async function personalDataRule(
  registry: SqlModelRegistry,
  section: NonNullable<PromotionPolicy['personal_data']>,
  run: Run | undefined,
  candidate: ModelVersion,
  alias: string,
  actor: Actor,
): Promise<GateRuleResult> {
  const rule = 'personal-data';
  if (!run) return { rule, outcome: 'failed', detail: 'no run, so no features to check for personal data' };
  const use = await personalDataTouched(registry, run);
  if ('missing' in use) {
    return {
      rule,
      outcome: 'failed',
      detail: `cannot check version ${candidate.version} for personal data: ${use.missing}`,
    };
  }
  if (use.findings.length === 0) {
    return {
      rule,
      outcome: 'passed',
      detail: `no feature column of ${use.dataset} looks like personal data (${use.columns.join(', ') || 'none'} checked)`,
    };
  }
  const forbidden = use.findings.filter(
    (f) => section.forbid.includes('all') || section.forbid.includes(f.kind),
  );
  if (forbidden.length > 0) {
    return {
      rule,
      outcome: 'failed',
      detail: `version ${candidate.version} uses personal data the policy forbids as features: ${forbidden.map(describeFinding).join('; ')} (${use.dataset})`,
    };
  }
  const found = use.findings.map(describeFinding).join('; ');
  if (!section.require_approval) {
    return {
      rule,
      outcome: 'passed',
      detail: `features touch personal data (allowed by the policy): ${found}`,
    };
  }
  const approval = await approvalRule(registry, candidate, alias, actor, 'approver');
  return {
    rule,
    outcome: approval.outcome,
    detail: `features touch personal data (${found}), which needs an approval: ${approval.detail}`,
  };
}

async function dataValidationRule(
  registry: SqlModelRegistry,
  run: Run | undefined,
  candidate: ModelVersion,
): Promise<GateRuleResult> {
  const rule = 'data-validation';
  if (!run) return { rule, outcome: 'failed', detail: 'no run, so no training data to check' };
  const tags = tagsOf(run);
  const dataset = tags.get('kiln.dataset.name');
  const dsVersion = tags.get('kiln.dataset.version');
  if (!dataset || !dsVersion) {
    return {
      rule,
      outcome: 'failed',
      detail: `version ${candidate.version} was trained from ${tags.get('kiln.data.file') ?? 'data'} that is not a dataset version, so no validation can have passed (ingest it with kiln data ingest --expect …)`,
    };
  }
  const reports = await listValidations(
    { store: registry.store, artifacts: registry.artifacts },
    { name: dataset, version: Number(dsVersion) },
  ).catch(() => undefined);
  if (!reports || reports.length === 0) {
    return {
      rule,
      outcome: 'failed',
      detail: `training data ${dataset}@${dsVersion} has never been validated (kiln data validate ${dataset}@${dsVersion} …)`,
    };
  }
  const latest = reports[0]!;
  const failedChecks = latest.results.filter((r) => !r.passed).length;
  return latest.passed
    ? {
        rule,
        outcome: 'passed',
        detail: `training data ${dataset}@${dsVersion} passed validation (${latest.results.length} expectations, ${latest.checkedAt})`,
      }
    : {
        rule,
        outcome: 'failed',
        detail: `training data ${dataset}@${dsVersion} failed its latest validation (${failedChecks} of ${latest.results.length} expectations failed, ${latest.checkedAt})`,
      };
}

async function approvalRule(
  registry: SqlModelRegistry,
  candidate: ModelVersion,
  alias: string,
  actor: Actor,
  role: 'approver' | 'admin',
): Promise<GateRuleResult> {
  const approvals = await registry.db
    .selectFrom('registry_approvals')
    .select(['approver', 'time'])
    .where('name', '=', candidate.name)
    .where('version', '=', Number(candidate.version))
    .where('alias', '=', alias)
    .orderBy('time')
    .execute();
  for (const a of approvals) {
    if (a.approver === actor.user) continue;
    if (await hasRole(registry.db, a.approver, role, candidate.name)) {
      return {
        rule: 'approval',
        outcome: 'passed',
        detail: `approved by ${a.approver} (${role}) at ${new Date(Number(a.time)).toISOString()}`,
      };
    }
  }
  return {
    rule: 'approval',
    outcome: 'failed',
    detail: `needs an approval by a user other than ${actor.user} holding the ${role} role (kiln models approve ${candidate.name} --version ${candidate.version} --alias ${alias})${approvals.length ? `; approvals so far from ${approvals.map((a) => a.approver).join(', ')} do not qualify` : ''}`,
  };
}

export interface Approval {
  approval_id: number;
  name: string;
  version: string;
  alias: string;
  approver: string;
  comment?: string;
  time: number;
}

/**
 * Records an approval of `version` for `alias`. The approver must hold the approver role on
 * the model and be someone else than whoever registered the version or asked for its
 * promotion: nobody approves their own model.
 */
export async function approveVersion(
  registry: SqlModelRegistry,
  req: { name: string; version: string; alias: string; comment?: string },
  actor: Actor,
): Promise<Approval> {
  const name = checkModelName(req.name);
  const version = checkVersion(req.version);
  const alias = checkAlias(req.alias);
  if (req.comment !== undefined && req.comment.length > 5000) {
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      "Invalid value for parameter 'comment': longer than 5000 characters",
    );
  }
  const mv = await registry.getModelVersion(name, String(version));
  if (!(await hasRole(registry.db, actor.user, 'approver', name))) {
    throw new KilnError(
      'PERMISSION_DENIED',
      `${actor.user} does not hold the approver role on '${name}' (kiln auth grant --user ${actor.user} --role approver)`,
    );
  }
  if (mv.user_id === actor.user) {
    throw new KilnError(
      'PERMISSION_DENIED',
      `${actor.user} registered ${name} version ${version} and cannot approve it: approval needs a different user`,
    );
  }
  const requesters = await registry.db
    .selectFrom('registry_promotions')
    .select('actor')
    .distinct()
    .where('name', '=', name)
    .where('version', '=', version)
    .where('alias', '=', alias)
    .execute();
  if (requesters.some((r) => r.actor === actor.user)) {
    throw new KilnError(
      'PERMISSION_DENIED',
      `${actor.user} asked for this promotion and cannot approve it: approval needs a different user`,
    );
  }
  const time = Date.now();
  const id = await registry.transaction(async (trx) => {
    const row = await trx
      .insertInto('registry_approvals')
      .values({ name, version, alias, approver: actor.user, comment: req.comment ?? null, time })
      .returning('approval_id')
      .executeTakeFirstOrThrow();
    await appendAudit(trx, {
      actor: actor.user,
      action: 'approval.give',
      target: `models:/${name}/${version}`,
      detail: { alias, approval_id: Number(row.approval_id), comment: req.comment },
    });
    await publishEvent(trx, {
      type: 'approval.given',
      subject: `models:/${name}/${version}`,
      actor: actor.user,
      payload: {
        name,
        version: String(version),
        alias,
        approval_id: Number(row.approval_id),
        comment: req.comment ?? null,
      },
    });
    return Number(row.approval_id);
  });
  return {
    approval_id: id,
    name,
    version: String(version),
    alias,
    approver: actor.user,
    ...(req.comment ? { comment: req.comment } : {}),
    time,
  };
}

/** Every gate decision for a model (optionally one alias), oldest first. */
export async function listPromotions(
  registry: SqlModelRegistry,
  name: string,
  alias?: string,
): Promise<PromotionResult[]> {
  checkModelName(name);
  let q = registry.db.selectFrom('registry_promotions').selectAll().where('name', '=', name);
  if (alias !== undefined) q = q.where('alias', '=', checkAlias(alias));
  const rows = await q.orderBy('promotion_id').execute();
  return rows.map((r) => ({
    promotion_id: Number(r.promotion_id),
    name: r.name,
    version: String(r.version),
    alias: r.alias,
    decision: r.decision as PromotionResult['decision'],
    incumbent_version: r.incumbent_version === null ? null : String(r.incumbent_version),
    rules: JSON.parse(r.rules_json) as GateRuleResult[],
    actor: r.actor,
    time: Number(r.time),
  }));
}

import { createHash } from 'node:crypto';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { appendAudit } from '../auth/index.js';
import { PERSONAL_DATA_KINDS } from '../data/index.js';
import { KilnError } from '../errors.js';
import { type ValueMatrix, valueMatrixSchema } from '../learn/index.js';
import type { SqlModelRegistry } from './sql-registry.js';
import type { Actor } from './types.js';
import { checkAlias, checkModelName } from './validation.js';

/**
 * A model's promotion policy, stored with the model (`kiln models policy set NAME policy.yaml`)
 * and applied by the gate (gate.ts) on every promotion. Metric names are the run's metric
 * keys as logged: `test.auc` (held-out part), `p99_latency_us`, `model_size_bytes`, … A
 * metric named with a data part (`test.`, `valid.`, `train.`) is data-dependent: the gate
 * compares it only when both runs were evaluated on the same held-out data.
 *
 * ```yaml
 * aliases: [champion]            # aliases this policy governs; they become protected
 * primary:
 *   metric: test.auc
 *   direction: maximize          # or minimize
 *   min_improvement: 0.002       # the candidate must beat the holder by at least this
 *   floor_on_new_data: 0.7       # optional: evaluated on other held-out data than the holder
 *                                # (a retrain on a newer window), it must reach this instead
 * guards:
 *   - metric: p99_latency_us
 *     direction: minimize
 *     max_regression_pct: 20     # may be at most 20 % worse than the holder
 *   - metric: model_size_bytes
 *     direction: minimize
 *     max: 5000000               # and never above this
 * require_data_validation: true  # the candidate's training dataset version passed validation
 * approval:
 *   required: true               # someone else holding the approver role must approve
 * value:                         # what decisions are worth (learn/evaluate/value.ts)
 *   true_positive: 40            # gain of a correct flag
 *   false_positive: 5            # cost of a false alarm
 *   false_negative: 60           # cost of a miss
 *   threshold: 0.3               # live traffic is priced at this operating threshold
 *   min_gain_per_1k: 0           # the candidate must add at least this much value per 1,000
 *                                # predictions over the holder (on `part`, default test)
 * personal_data:                 # columns that look like personal data (data/personal-data.ts)
 *   forbid: [card_number, national_id]   # any of these among the features refuses (or [all])
 *   require_approval: true       # any other kind among the features needs an approval
 * ```
 *
 * A regression model's value is `per_unit_error: 0.8` (money per unit of error) with
 * `loss: absolute | squared`.
 */
const Direction = z.enum(['maximize', 'minimize']);
const MetricName = z.string().min(1).max(250);

const Guard = z
  .object({
    metric: MetricName,
    direction: Direction,
    /** Absolute amount the candidate may be worse than the holder. */
    max_regression: z.number().nonnegative().optional(),
    /** Relative amount (percent of the holder's value) the candidate may be worse. */
    max_regression_pct: z.number().nonnegative().optional(),
    /** Ceilings on the candidate's own value, holder or not. */
    max: z.number().optional(),
    min: z.number().optional(),
  })
  .strict()
  .refine((g) => [g.max_regression, g.max_regression_pct, g.max, g.min].some((v) => v !== undefined), {
    message: 'a guard needs at least one of max_regression, max_regression_pct, max, min',
  });

const PolicyValue = z
  .object({
    true_positive: z.number().optional(),
    false_positive: z.number().optional(),
    false_negative: z.number().optional(),
    true_negative: z.number().optional(),
    threshold: z.number().optional(),
    per_unit_error: z.number().optional(),
    loss: z.enum(['absolute', 'squared']).optional(),
    /** Which evaluated part the gate prices: the held-out test part unless said otherwise. */
    part: z.enum(['test', 'valid']).default('test'),
    /** The candidate must add at least this much value per 1,000 predictions (negative: may lose that much). */
    min_gain_per_1k: z.number().finite().default(0),
  })
  .strict()
  .superRefine((v, ctx) => {
    const matrix = valueMatrixSchema.safeParse(matrixFields(v));
    if (!matrix.success) {
      const regression = v.per_unit_error !== undefined || v.loss !== undefined;
      const binary = [v.true_positive, v.false_positive, v.false_negative, v.true_negative, v.threshold].some(
        (x) => x !== undefined,
      );
      if (regression && binary) {
        ctx.addIssue({
          code: 'custom',
          path: ['per_unit_error'],
          message:
            'give either a regression value (per_unit_error, loss) or a confusion-matrix value (true_positive, …), not both',
        });
        return;
      }
      for (const issue of matrix.error.issues) {
        ctx.addIssue({ code: 'custom', path: issue.path, message: issue.message });
      }
    }
  });

/** The value matrix inside a policy's `value:` section (without the gate's own fields). */
export function policyValueMatrix(v: z.output<typeof PolicyValue>): ValueMatrix {
  return valueMatrixSchema.parse(matrixFields(v));
}

function matrixFields(v: Record<string, unknown>): Record<string, unknown> {
  const { part: _part, min_gain_per_1k: _gain, ...rest } = v;
  return Object.fromEntries(Object.entries(rest).filter(([, x]) => x !== undefined));
}

export const PromotionPolicySchema = z
  .object({
    aliases: z.array(z.string()).min(1).default(['champion']),
    primary: z
      .object({
        metric: MetricName,
        direction: Direction,
        min_improvement: z.number().nonnegative().default(0),
        /**
         * A candidate evaluated on other held-out data than the holder (a retrain on a newer
         * data window) cannot be compared with it; with this set it passes the primary rule when
         * its own held-out value reaches this bound (≥ for maximize, ≤ for minimize) instead of
         * being refused. Unset: such a candidate is refused (the same-held-out-data rule).
         */
        floor_on_new_data: z.number().optional(),
      })
      .strict(),
    guards: z.array(Guard).max(50).default([]),
    require_data_validation: z.boolean().default(true),
    approval: z
      .object({
        required: z.boolean().default(false),
        role: z.enum(['approver', 'admin']).default('approver'),
      })
      .strict()
      .default({ required: false, role: 'approver' }),
    value: PolicyValue.optional(),
    /**
     * Personal data in the features (registry/personal-data-use.ts): kinds that refuse a
     * promotion outright, and whether any other kind needs an approval by an approver.
     */
    personal_data: z
      .object({
        forbid: z.array(z.enum([...PERSONAL_DATA_KINDS, 'all'])).default([]),
        require_approval: z.boolean().default(false),
      })
      .strict()
      .optional(),
  })
  .strict();

export type PromotionPolicy = z.output<typeof PromotionPolicySchema>;
export type GuardRule = PromotionPolicy['guards'][number];

export interface StoredPolicy {
  name: string;
  policy: PromotionPolicy;
  yaml: string;
  sha256: string;
  updated_by: string;
  updated_time: number;
}

/** Parses and checks a policy; errors name the file and the field (`policy.yaml: guards[1].max`). */
export function parsePromotionPolicy(text: string, where = 'policy'): PromotionPolicy {
  if (text.length > 100_000) throw new KilnError('INVALID_PARAMETER_VALUE', `${where}: larger than 100 kB`);
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (e) {
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      `${where}: not valid YAML: ${(e as Error).message.split('\n')[0]}`,
    );
  }
  const result = PromotionPolicySchema.safeParse(raw);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    const path = issue.path
      .map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? String(p) : `.${String(p)}`))
      .join('');
    throw new KilnError('INVALID_PARAMETER_VALUE', `${where}: ${path || '(top level)'}: ${issue.message}`);
  }
  result.data.aliases.forEach((a, i) => {
    checkAlias(a, `${where}: aliases[${i}]`);
  });
  return result.data;
}

/** Stores the policy (audited, with the YAML's hash) and protects the aliases it governs. */
export async function setPromotionPolicy(
  registry: SqlModelRegistry,
  name: string,
  yamlText: string,
  actor: Actor,
): Promise<StoredPolicy> {
  checkModelName(name);
  const policy = parsePromotionPolicy(yamlText);
  const sha256 = createHash('sha256').update(yamlText).digest('hex');
  await registry.transaction(async (trx) => {
    await registry.liveModelRow(trx, name);
    const now = Date.now();
    const values = {
      policy_yaml: yamlText,
      policy_json: JSON.stringify(policy),
      updated_by: actor.user,
      updated_time: now,
    };
    const existing = await trx
      .selectFrom('registry_policies')
      .select('policy_yaml')
      .where('name', '=', name)
      .executeTakeFirst();
    if (existing) await trx.updateTable('registry_policies').set(values).where('name', '=', name).execute();
    else
      await trx
        .insertInto('registry_policies')
        .values({ name, ...values })
        .execute();
    for (const alias of policy.aliases) {
      const isProtected = await trx
        .selectFrom('registry_protected_aliases')
        .select('alias')
        .where('name', '=', name)
        .where('alias', '=', alias)
        .executeTakeFirst();
      if (!isProtected) {
        await trx
          .insertInto('registry_protected_aliases')
          .values({ name, alias, actor: actor.user, time: now })
          .execute();
        await appendAudit(trx, {
          actor: actor.user,
          action: 'alias.protect',
          target: `models:/${name}@${alias}`,
          detail: { by_policy: true },
        });
      }
    }
    await appendAudit(trx, {
      actor: actor.user,
      action: 'policy.set',
      target: `models:/${name}`,
      detail: {
        before: existing ? { sha256: createHash('sha256').update(existing.policy_yaml).digest('hex') } : null,
        after: { sha256 },
        policy,
      },
    });
  });
  return (await getPromotionPolicy(registry, name))!;
}

export async function getPromotionPolicy(
  registry: SqlModelRegistry,
  name: string,
): Promise<StoredPolicy | undefined> {
  checkModelName(name);
  const row = await registry.db
    .selectFrom('registry_policies')
    .selectAll()
    .where('name', '=', name)
    .executeTakeFirst();
  if (!row) return undefined;
  return {
    name: row.name,
    policy: PromotionPolicySchema.parse(JSON.parse(row.policy_json)),
    yaml: row.policy_yaml,
    sha256: createHash('sha256').update(row.policy_yaml).digest('hex'),
    updated_by: row.updated_by,
    updated_time: Number(row.updated_time),
  };
}

import { z } from 'zod';
import { KilnError } from '../../errors.js';
import {
  type CheckResult,
  checkAlerts,
  checkDrift,
  checkPerformance,
  type MonitorContext,
  parseDuration,
} from '../../monitor/index.js';
import type { StepContext, StepKind } from '../types.js';
import { registryOf } from './register.js';

const params = z
  .object({
    /**
     * `alerts`: a registered model NAME whose alert rules are evaluated (as `kiln monitor check`:
     * firing and resolving are stored and published). `drift`: NAME@ALIAS or NAME/VERSION, its
     * drift and live performance over `window` read without storing anything.
     */
    check: z.enum(['alerts', 'drift']).default('alerts'),
    model: z.string().min(1),
    /** drift: the window (`24h`, `30m`), ending at `end` (ISO time, default now). */
    window: z
      .string()
      .default('24h')
      .superRefine((w, c) => {
        try {
          parseDuration(w, 'window');
        } catch (e) {
          c.addIssue({ code: 'custom', message: (e as Error).message });
        }
      }),
    end: z
      .string()
      .refine((s) => Number.isFinite(Date.parse(s)), 'an ISO time, e.g. 2026-06-02T00:00:00Z')
      .optional(),
    /** drift: share of drifted features that makes dataset drift (default 0.5). */
    share: z.number().gt(0).lte(1).optional(),
    /** true: the step fails when a rule is firing (alerts) or the dataset drifts (drift). */
    fail_on_alert: z.boolean().default(false),
  })
  .strict();

function monitorContext(ctx: StepContext): MonitorContext {
  const registry = registryOf(ctx);
  const { store, artifacts } = ctx.workspace;
  if (!store || !artifacts)
    throw new KilnError(
      'INVALID_STATE',
      `step ${ctx.step}: monitoring is reached only in a local or database workspace`,
    );
  return { store, artifacts, registry };
}

/**
 * Monitoring as a step: a pipeline can look at a served model before (or instead of)
 * retraining, and stop when it is healthy (`fail_on_alert`) or pass the numbers on
 * (`${steps.check.outputs.share}`, `…auc`). Never cached by default: the window moves with
 * the clock and the log grows, neither of which is an input of the step.
 */
export const monitorCheckStep: StepKind<z.infer<typeof params>> = {
  kind: 'monitor-check',
  params,
  cachedByDefault: false,
  keyInputs: () => [],
  async run(p, ctx) {
    const mc = monitorContext(ctx);
    const end = p.end ? Date.parse(p.end) : Date.now();
    if (p.check === 'alerts') {
      const r: CheckResult = await checkAlerts(mc, p.model, end, 'kiln pipeline');
      const firing = r.rules.filter((o) => o.condition === 'firing').map((o) => o.rule);
      for (const o of r.rules)
        ctx.log(
          `${o.rule} (${o.kind}): ${o.condition}${o.value !== undefined ? ` ${o.value}` : ''}, ${o.action}`,
        );
      if (firing.length > 0 && p.fail_on_alert)
        throw new KilnError('INVALID_STATE', `${p.model}: alert rules firing: ${firing.join(', ')}`);
      return {
        model: p.model,
        version: r.version,
        firing,
        fired: r.rules.filter((o) => o.action === 'fired').map((o) => o.rule),
        share: null,
        dataset_drift: null,
        drifted: null,
        rows: null,
        labelled: null,
        auc: null,
      };
    }
    const windowMs = parseDuration(p.window, 'window');
    const drift = await checkDrift(
      mc,
      p.model,
      { windowMs, end },
      p.share ? { shareThreshold: p.share } : {},
    );
    const perf = await checkPerformance(mc, p.model, { windowMs, end, buckets: 1 });
    const drifted = drift.features.filter((f) => f.drifted).map((f) => f.column);
    for (const f of drift.features)
      ctx.log(
        `${f.column}: ${f.status === 'tested' ? `${f.test} ${f.score} (threshold ${f.threshold})${f.drifted ? ' DRIFT' : ''}` : f.reason}`,
      );
    ctx.log(
      `dataset drift: ${drift.dataset.drifted ? 'yes' : 'no'} (${drift.dataset.driftedFeatures}/${drift.dataset.testedFeatures}, ${drift.window.rows} rows)`,
    );
    const auc = perf.measured?.auc;
    ctx.log(
      `labels: ${perf.labels.labelled} labelled, ${perf.labels.unparsable} unparsable${auc !== undefined ? `; measured auc ${auc}` : ''}`,
    );
    if (drift.dataset.drifted && p.fail_on_alert)
      throw new KilnError(
        'INVALID_STATE',
        `${p.model}: dataset drift over ${p.window}: ${drifted.join(', ')} (${drift.dataset.driftedFeatures}/${drift.dataset.testedFeatures} features)`,
      );
    return {
      model: drift.model.uri.replace(/^models:\//, ''),
      version: drift.model.version,
      firing: null,
      fired: null,
      share: drift.dataset.share,
      dataset_drift: drift.dataset.drifted,
      drifted,
      rows: drift.window.rows,
      labelled: perf.labels.labelled,
      auc: auc ?? null,
    };
  },
};

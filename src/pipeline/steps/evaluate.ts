import { z } from 'zod';
import { KilnError } from '../../errors.js';
import { parseConstraint } from '../train/spec.js';
import type { StepKind } from '../types.js';

const params = z
  .object({
    /** The run whose held-out metrics are judged (e.g. `${steps.train.outputs.run_id}`). */
    run: z.string().regex(/^[0-9a-f]{32}$/, 'a run id: 32 hex characters'),
    /** Bounds the run's metrics must meet, e.g. `test.auc >= 0.7`, `p99_latency_us <= 200`. */
    require: z.array(z.string().min(1)).min(1),
    /** false: a missed bound is an output (`passed: false`), not a failed step. */
    fail_on_miss: z.boolean().default(true),
  })
  .strict();

/**
 * A quality gate on a run's logged metrics: the train step already evaluated the model on
 * its held-out parts; this checks those numbers against bounds before anything is registered.
 * (Scoring a stored model on new data is not built yet.)
 */
export const evaluateStep: StepKind<z.infer<typeof params>> = {
  kind: 'evaluate',
  params,
  cachedByDefault: true,
  keyInputs: () => [],
  async run(p, ctx) {
    const bounds = p.require.map((text) => parseConstraint(text));
    const run = await ctx.client.getRun(p.run);
    const metrics = new Map(run.data.metrics.map((m) => [m.key, m.value]));
    const misses: string[] = [];
    for (const b of bounds) {
      const v = metrics.get(b.name);
      const ok = v !== undefined && (b.op === '<=' ? v <= b.bound : v >= b.bound);
      ctx.log(`${b.text}: ${v === undefined ? 'not logged' : v} ${ok ? 'ok' : 'MISSED'}`);
      if (!ok) misses.push(`${b.text} (${v === undefined ? 'not logged' : v})`);
    }
    if (misses.length > 0 && p.fail_on_miss)
      throw new KilnError('INVALID_STATE', `run ${p.run} misses ${misses.join(', ')}`);
    return { run_id: p.run, passed: misses.length === 0 };
  },
};

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadTrainSpec, tuneFromSpec } from '../src/pipeline/index.js';
import { connect } from '../src/sdk/index.js';
import { openStore } from '../src/store/index.js';

const here = dirname(fileURLToPath(import.meta.url));

/**
 * The end-to-end part of bench/tune.ts: examples/flights/tune.yaml (TPE, ASHA η = 4 on
 * boosting rounds, latency and size constraints) run for `trials` trials in a fresh home.
 * `days` widens the flights slice (`day(date) <= days` of each month).
 */
export async function runTuneE2e(options: {
  trials: number;
  days: number;
}): Promise<Record<string, unknown>> {
  const spec = loadTrainSpec(join(here, '../examples/flights/tune.yaml'));
  const data = { ...spec.data, where: `day(date) <= ${options.days}` } as typeof spec.data;
  const search = {
    ...(spec.search as NonNullable<typeof spec.search>),
    trials: options.trials,
    study: 'bench-e2e',
  };
  const home = mkdtempSync(join(tmpdir(), 'kiln-bench-tune-'));
  const client = await connect(home);
  const store = await openStore({ db: join(home, 'kiln.db') });
  const started = Date.now();
  const cpu0 = process.cpuUsage();
  try {
    const result = await tuneFromSpec({ ...spec, data, search }, { store, client, study: 'bench-e2e' });
    const cpu = process.cpuUsage(cpu0);
    const counts = result.summary.counts;
    const finished = counts.COMPLETE + counts.PRUNED + counts.FAILED;
    const bestFeasible = result.summary.best[0];
    const allComplete = result.finished.filter((t) => t.state === 'COMPLETE' && t.values);
    return {
      spec: `examples/flights/tune.yaml with day(date) <= ${options.days}`,
      trials: finished,
      complete: counts.COMPLETE,
      pruned: counts.PRUNED,
      failed: counts.FAILED,
      pruned_share: finished > 0 ? counts.PRUNED / finished : 0,
      best_feasible_valid_auc: bestFeasible?.values?.[0] ?? null,
      best_any_valid_auc: allComplete.length
        ? Math.max(...allComplete.map((t) => (t.values as number[])[0]))
        : null,
      feasible_complete: result.finished.filter(
        (t) => t.state === 'COMPLETE' && (t.constraints ?? []).every((c) => c <= 0),
      ).length,
      wall_seconds: (Date.now() - started) / 1000,
      cpu_seconds: (cpu.user + cpu.system) / 1e6,
    };
  } finally {
    await store.close();
    await client.close();
    rmSync(home, { recursive: true, force: true });
  }
}

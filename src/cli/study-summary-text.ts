import { formatMoney } from '../registry/index.js';
import { MIN_TRIALS_FOR_IMPORTANCE, type StudySummary } from '../tune/index.js';

/** Extra lines a caller knows and the stored summary does not. */
export interface StudySummaryContext {
  /** e.g. "this process ran 6 in 14.1 s" */
  processLine?: string;
  parentRunId?: string | null;
  constraints?: readonly string[];
}

/**
 * The readable form of a study, shared by `kiln tune show` and the end of `kiln tune
 * spec.yaml`: counts, best trials (or the Pareto front), importances, constraints.
 */
export function renderStudySummary(s: StudySummary, context: StudySummaryContext = {}): string {
  const total = Object.values(s.counts).reduce((a, b) => a + b, 0);
  const counts = Object.entries(s.counts)
    .filter(([, n]) => n > 0)
    .map(([k, n]) => `${n} ${k.toLowerCase()}`)
    .join(', ');
  const lines = [
    `study ${s.name}: ${s.directions.join(', ')} · sampler ${s.sampler} · pruner ${s.pruner ?? 'none'}`,
    `trials: ${total}${counts ? ` (${counts})` : ''}${context.processLine ? `; ${context.processLine}` : ''}`,
  ];
  if (context.parentRunId) lines.push(`parent run: ${context.parentRunId}`);
  if (s.usage) {
    const u = s.usage;
    lines.push(
      `compute: ${u.cpuSeconds.toFixed(1)} CPU-s over ${u.trials} trials (${u.wallSeconds.toFixed(1)} s of trial wall time, peak RSS ${u.peakRssMb.toFixed(0)} MB) = ${formatMoney(u.computeCost, u.currency)}`,
    );
  }
  const single = s.directions.length === 1;
  lines.push('', single ? 'best trials' : 'Pareto front');
  const rows = single ? s.best : s.paretoFront;
  if (rows.length === 0) lines.push('  (none)');
  for (const t of rows) {
    const params = Object.entries(t.params)
      .map(([k, v]) => `${k}=${formatValue(v)}`)
      .join(' ');
    const run = t.runId ? `  run ${t.runId}` : '';
    lines.push(`  #${t.number}  ${(t.values ?? []).map(formatValue).join(', ')}  ${params}${run}`);
  }
  const importances = Object.entries(s.importances);
  if (importances.length === 0) {
    lines.push('', `parameter importances: need at least ${MIN_TRIALS_FOR_IMPORTANCE} complete trials`);
  } else {
    lines.push('', 'parameter importances (variance of binned marginals)');
    for (const [k, v] of importances) lines.push(`  ${k.padEnd(24)} ${v.toFixed(3)}`);
  }
  if (context.constraints?.length) lines.push('', `constraints: ${context.constraints.join('; ')}`);
  return `${lines.join('\n')}\n`;
}

function formatValue(v: unknown): string {
  return typeof v === 'number' ? (Number.isInteger(v) ? String(v) : v.toPrecision(6)) : String(v);
}

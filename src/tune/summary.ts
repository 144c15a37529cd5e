import { parameterImportances } from './importance.js';
import { paretoFront } from './pareto.js';
import type { Study } from './study.js';
import { constraintViolation, type FrozenTrial, type ParamValue, type TrialState } from './types.js';

/** What `kiln tune show` prints: counts, best trial(s) or Pareto front, importances. */
export interface StudySummary {
  name: string;
  directions: string[];
  sampler: string;
  pruner: string | null;
  counts: Record<TrialState, number>;
  best: TrialSummary[];
  /** Pareto front (several objectives), else the best trial alone. */
  paretoFront: TrialSummary[];
  importances: Record<string, number>;
  parentRunId: string | null;
  /**
   * What the study's trials used and cost, from the user attributes kiln's training objective
   * sets on every trial that trained (`cpu_seconds`, `wall_seconds`, `peak_rss_mb`,
   * `compute_cost`, `currency`): sums, and the highest peak. Absent when no trial has them.
   */
  usage?: StudyUsage;
}

export interface StudyUsage {
  /** Trials with usage figures (complete and pruned ones; a failed trial may have none). */
  trials: number;
  cpuSeconds: number;
  wallSeconds: number;
  computeCost: number;
  peakRssMb: number;
  currency: string;
}

export interface TrialSummary {
  number: number;
  state: TrialState;
  values: number[] | null;
  params: Record<string, ParamValue>;
  constraints: number[] | null;
  feasible: boolean;
  runId: string | null;
}

export function trialSummary(t: FrozenTrial): TrialSummary {
  return {
    number: t.number,
    state: t.state,
    values: t.values,
    params: t.params,
    constraints: t.constraints,
    feasible: constraintViolation(t.constraints) === 0,
    runId: t.runId,
  };
}

/** Summarises a study as this process sees it (call `study.refresh()` first). */
export function studySummary(study: Study, top = 5): StudySummary {
  const trials = study.trials();
  const counts: Record<TrialState, number> = { WAITING: 0, RUNNING: 0, COMPLETE: 0, PRUNED: 0, FAILED: 0 };
  for (const t of trials) counts[t.state]++;
  const front = paretoFront(trials, study.directions);
  let best: FrozenTrial[];
  if (study.directions.length === 1) {
    const sign = study.directions[0] === 'maximize' ? -1 : 1;
    best = trials
      .filter((t) => t.state === 'COMPLETE' && t.values && constraintViolation(t.constraints) === 0)
      .sort((a, b) => sign * ((a.values as number[])[0] - (b.values as number[])[0]) || a.number - b.number)
      .slice(0, top);
  } else {
    best = front;
  }
  return {
    name: study.name,
    directions: [...study.directions],
    sampler: study.sampler.name,
    pruner: study.pruner?.name ?? null,
    counts,
    best: best.map(trialSummary),
    paretoFront: front.map(trialSummary),
    importances: parameterImportances(trials, study.directions),
    parentRunId: study.record.parentRunId,
    ...usageOf(trials),
  };
}

function usageOf(trials: FrozenTrial[]): { usage?: StudyUsage } {
  const usage: StudyUsage = {
    trials: 0,
    cpuSeconds: 0,
    wallSeconds: 0,
    computeCost: 0,
    peakRssMb: 0,
    currency: '',
  };
  const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : 0);
  for (const t of trials) {
    const a = t.userAttrs;
    if (typeof a.cpu_seconds !== 'number') continue;
    usage.trials++;
    usage.cpuSeconds += num(a.cpu_seconds);
    usage.wallSeconds += num(a.wall_seconds);
    usage.computeCost += num(a.compute_cost);
    usage.peakRssMb = Math.max(usage.peakRssMb, num(a.peak_rss_mb));
    if (typeof a.currency === 'string') usage.currency = a.currency;
  }
  return usage.trials > 0 ? { usage } : {};
}

import { costModelSettings, resolveConfig } from '../config.js';
import { KilnError } from '../errors.js';
import { WORK_BOUNDS } from '../learn/index.js';
import { loadTrainSpec, type TrainSpec, type TuneResult, tuneFromSpec } from '../pipeline/index.js';
import type { FrozenTrial } from '../tune/index.js';
import { withRunsEndedOnInterrupt } from './interrupt.js';
import { renderStudySummary } from './study-summary-text.js';
import { printJson } from './table.js';
import { type WorkspaceCommandOptions, withWorkspace } from './tracking-connection.js';

/** Flags of `kiln tune spec.yaml` / `kiln train spec.yaml --tune` / a worker on a training-spec study. */
export interface TuneSpecCommandOptions extends WorkspaceCommandOptions {
  trials?: string;
  parallel?: string;
  timeout?: string;
  /** Continue (or join, as a worker) this stored study. */
  resume?: string;
  /** Name for a new study (default: the spec's search.study, else spec name + time). */
  study?: string;
  /** local (trials in this process) or bullmq (trials as jobs for `kiln worker` processes). */
  executor?: string;
  redis?: string;
  queue?: string;
}

/**
 * Where a study's trials run: `--executor bullmq` sends them to `kiln worker` processes on the
 * queue `--redis` (or KILN_REDIS) names; local (the default, even with KILN_REDIS set: a
 * `kiln tune` that silently stopped running trials itself would surprise) runs them here.
 */
export function trialQueueFor(opts: {
  executor?: string;
  redis?: string;
  queue?: string;
}): { redis: string; queue?: string } | undefined {
  const kind = opts.executor ?? 'local';
  if (kind === 'local') {
    if (opts.redis !== undefined || opts.queue !== undefined)
      throw new KilnError('INVALID_PARAMETER_VALUE', '--redis and --queue go with --executor bullmq');
    return undefined;
  }
  if (kind !== 'bullmq')
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      `--executor: expected local or bullmq, got '${kind.slice(0, 40)}'`,
    );
  const redis = opts.redis ?? resolveConfig().redis;
  if (!redis)
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      '--executor bullmq: name the queue with --redis redis://host:port or KILN_REDIS',
    );
  return { redis, ...(opts.queue ? { queue: opts.queue } : {}) };
}

/**
 * Runs a study over a training spec's `search` section, or continues a stored one. This is
 * what `kiln tune spec.yaml --trials N --parallel P [--resume STUDY]` does; the tune command
 * can call it for a spec argument, and for `--worker STUDY` / `--resume STUDY` when the study
 * was created from a training spec (`isTrainingSpecStudy`).
 */
export async function runTuneSpecCommand(
  file: string | undefined,
  opts: TuneSpecCommandOptions,
): Promise<TuneResult> {
  if (!file && !opts.resume)
    throw new KilnError('INVALID_PARAMETER_VALUE', 'kiln tune: give a training spec or --resume STUDY');
  costModelSettings(); // a bad price is refused before any trial starts, not inside each one
  const queue = trialQueueFor(opts);
  const spec = file ? loadTrainSpec(file) : undefined;
  if (spec && !spec.search) {
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      `${file}: search: the spec has no search section to tune over`,
    );
  }
  const started = Date.now();
  // Studies, trial runs and a stored dataset all come from the one workspace the flags name:
  // a local one shares one connection, a kiln server is reached over REST for all three.
  return withWorkspace(opts, async (client, workspace) => {
    const result = await withRunsEndedOnInterrupt(client, (signal) =>
      tuneFromSpec(spec, {
        signal,
        storage: workspace.studies,
        client,
        data: workspace.datasets,
        ...(opts.resume ? { resume: opts.resume } : {}),
        ...(opts.study ? { study: opts.study } : {}),
        ...(opts.trials !== undefined
          ? { trials: positiveInt(opts.trials, '--trials', WORK_BOUNDS.iterations) }
          : {}),
        ...(opts.parallel !== undefined
          ? { parallel: positiveInt(opts.parallel, '--parallel', WORK_BOUNDS.threads) }
          : {}),
        ...(opts.timeout !== undefined ? { timeoutSeconds: Number(opts.timeout) } : {}),
        ...(queue ? { queue } : {}),
        onTrialFinished: (t) => {
          if (!opts.json) process.stderr.write(`${trialLine(t, started)}\n`);
        },
      }),
    );
    if (opts.json) printJson(result.summary);
    else process.stdout.write(summaryText(result, spec));
    return result;
  });
}

function trialLine(t: FrozenTrial, started: number): string {
  const params = Object.entries(t.params)
    .map(([k, v]) => `${k}=${typeof v === 'number' && !Number.isInteger(v) ? v.toPrecision(4) : v}`)
    .join(' ');
  const values = t.values ? t.values.map((v) => v.toPrecision(5)).join(', ') : '-';
  const feasible = t.constraints ? (t.constraints.every((c) => c <= 0) ? '' : ' (infeasible)') : '';
  return `trial ${t.number} ${t.state.padEnd(8)} ${values}${feasible}  ${params}  [${((Date.now() - started) / 1000).toFixed(1)} s]`;
}

function summaryText(r: TuneResult, spec: TrainSpec | undefined): string {
  return renderStudySummary(r.summary, {
    processLine: `this process ran ${r.finished.length} in ${r.wallSeconds.toFixed(1)} s`,
    parentRunId: r.parentRunId,
    constraints: spec?.search?.constraints,
  });
}

function positiveInt(text: string, flag: string, max = Number.MAX_SAFE_INTEGER): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1)
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      `${flag} must be a positive integer, got '${text.slice(0, 40)}'`,
    );
  if (n > max) throw new KilnError('INVALID_PARAMETER_VALUE', `${flag} must be at most ${max}, got ${text}`);
  return n;
}

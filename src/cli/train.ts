import cliProgress from 'cli-progress';
import type { Command } from 'commander';
import { costModelSettings } from '../config.js';
import {
  loadTrainSpec,
  runTraining,
  type TrainingProgress,
  type TrainingResult,
  type TrainSpec,
} from '../pipeline/index.js';
import { formatMoney } from '../registry/index.js';
import { withRunsEndedOnInterrupt } from './interrupt.js';
import { formatNumber, printJson, renderKeyValues } from './table.js';
import { addWorkspaceOptions, type WorkspaceCommandOptions, withWorkspace } from './tracking-connection.js';
import { runTuneSpecCommand } from './tune-spec.js';

interface TrainCommandOptions extends WorkspaceCommandOptions {
  experiment?: string;
  name?: string;
  progress?: boolean;
  tune?: boolean;
  trials?: string;
  parallel?: string;
  timeout?: string;
  resume?: string;
  study?: string;
}

/**
 * `kiln train spec.yaml`: one tracked training run from a spec, with a progress bar over
 * boosting rounds / epochs and a summary (or the result as JSON).
 */
export function registerTrainCommand(program: Command): void {
  const command = program
    .command('train <spec>')
    .description('train a model from a YAML training spec and track the run')
    .option('--experiment <name>', 'experiment to log the run to (default: the spec’s, else Default)')
    .option('--name <name>', 'run name (default: the spec’s name, else its file name)')
    .option('--no-progress', 'no progress bar')
    .option('--tune', 'run the spec’s search section as a study (same as `kiln tune spec.yaml`)')
    .option('--trials <n>', 'with --tune: trials this process runs (default: the spec’s search.trials)')
    .option('--parallel <p>', 'with --tune: trials run at once in this process')
    .option('--timeout <seconds>', 'with --tune: start no trial after this many seconds')
    .option('--study <name>', 'with --tune: name of the new study')
    .option('--resume <study>', 'with --tune: continue a stored study');
  addWorkspaceOptions(command).action(async (file: string, options: TrainCommandOptions) => {
    if (options.tune || options.resume) {
      await runTuneSpecCommand(options.resume && file === '-' ? undefined : file, options);
      return;
    }
    const costModel = costModelSettings(); // a bad price is refused before the data loads
    const spec = loadTrainSpec(file);
    // The run is tracked in, and a stored dataset read from, the same workspace (--tracking-uri).
    const result = await withWorkspace(options, async (client, workspace) => {
      const bar =
        options.json || options.progress === false || !process.stderr.isTTY ? undefined : progressBar();
      try {
        return await withRunsEndedOnInterrupt(client, (signal) =>
          runTraining(spec, {
            signal,
            costModel,
            tracking: client,
            experiment: options.experiment,
            runName: options.name,
            data: workspace.datasets,
            onProgress: bar ? (p) => bar.update(p) : (p) => logPhase(p, options.json === true),
          }),
        );
      } finally {
        bar?.stop();
      }
    });
    if (options.json) printJson(summaryJson(result));
    else process.stdout.write(summaryText(spec, result, costModel.currency));
  });
}

function progressBar(): { update(p: TrainingProgress): void; stop(): void } {
  const bar = new cliProgress.SingleBar(
    {
      format: ' {phase} [{bar}] {value}/{total} {metric}',
      hideCursor: true,
      stream: process.stderr,
      clearOnComplete: false,
    },
    cliProgress.Presets.shades_classic,
  );
  let started: false | 'fit' | 'evaluate' = false;
  return {
    update(p) {
      if ((p.phase === 'fit' || p.phase === 'evaluate') && p.total !== undefined) {
        const metric = Object.entries(p.metrics ?? {})
          .filter(([k]) => k.startsWith('valid.'))
          .map(([k, v]) => `${k} ${v.toFixed(4)}`)
          .join(' ');
        // The bar restarts for each counted phase: fit counts rounds, evaluate data parts.
        if (started !== p.phase) {
          if (started) bar.stop();
          bar.start(p.total, 0, { phase: p.phase, metric: '' });
          started = p.phase;
        }
        bar.update((p.iteration ?? -1) + 1, { phase: p.phase, metric });
      } else if (started) {
        bar.update({ phase: p.phase });
      } else {
        process.stderr.write(`${p.phase}…\n`);
      }
    },
    stop() {
      if (started) bar.stop();
    },
  };
}

function logPhase(p: TrainingProgress, quiet: boolean): void {
  if (quiet || p.phase === 'fit') return;
  process.stderr.write(`${p.phase}…\n`);
}

function summaryJson(r: TrainingResult): unknown {
  return {
    run_id: r.runId,
    experiment_id: r.experimentId,
    task: r.task,
    iterations: r.iterations,
    stopped_early: r.stopped,
    metrics: r.metrics,
    signature: r.signature,
  };
}

function summaryText(spec: TrainSpec, r: TrainingResult, currency: string): string {
  const m = r.metrics;
  const metricRows: [string, string][] = Object.keys(m)
    // The confusion counts are for the gate's value rule; the rates above them say it better.
    .filter((k) => /^(train|valid|test)\./.test(k) && !/\.(tp|fp|tn|fn)$/.test(k))
    .sort()
    .map((k) => [k, formatNumber(m[k]!)]);
  const pairs: [string, string][] = [
    ['run', r.runId],
    ['experiment', r.experimentId],
    [
      'learner',
      `${spec.learner.name} (${r.task}), ${r.iterations} iterations${r.stopped ? ', stopped early' : ''}`,
    ],
    ...metricRows,
    ...(m.cost_per_1k !== undefined
      ? ([['cost per 1k', formatNumber(m.cost_per_1k)]] as [string, string][])
      : []),
    [
      'latency p50 / p99',
      `${m.p50_latency_us!.toFixed(1)} / ${m.p99_latency_us!.toFixed(1)} µs (single row)`,
    ],
    ['throughput', `${formatNumber(Math.round(m.throughput_rows_per_s!))} rows/s (batch)`],
    ['model size', `${(m.model_size_bytes! / 1024).toFixed(1)} KiB`],
    ...(m.compute_cost !== undefined
      ? ([
          [
            'cost',
            `training ${formatMoney(m.compute_cost, currency)}, serving ${formatMoney(m.cost_per_1k_predictions, currency)} per 1k predictions, storage ${formatMoney(m.storage_cost_per_month, currency)}/month`,
          ],
        ] as [string, string][])
      : []),
    [
      'time',
      `${m.wall_seconds!.toFixed(1)} s wall (fit ${m.train_seconds!.toFixed(1)} s), ${m.cpu_seconds!.toFixed(1)} s CPU`,
    ],
    [
      'phases',
      (['load', 'fit', 'evaluate', 'measure', 'log'] as const)
        .filter((phase) => m[`${phase}_seconds`] !== undefined)
        .map((phase) => {
          const cpu = m[`${phase}_cpu_seconds`];
          return `${phase} ${m[`${phase}_seconds`]!.toFixed(1)} s${cpu === undefined ? '' : ` (${cpu.toFixed(1)} CPU s)`}`;
        })
        .join(', '),
    ],
  ];
  return renderKeyValues(pairs);
}

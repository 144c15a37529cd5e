import type { Command } from 'commander';
import { invalidParam } from '../errors.js';
import { WORK_BOUNDS } from '../learn/index.js';
import { DEFAULT_QUEUE, isTrainingSpecStudy, runTrialsOnQueue } from '../pipeline/index.js';
import {
  benchmarkObjective,
  createStudy,
  type Direction,
  type FrozenTrial,
  loadStudy,
  type Objective,
  type Study,
  type StudySpec,
  type StudyStorage,
  studySummary,
} from '../tune/index.js';
import { renderStudySummary } from './study-summary-text.js';
import { addWorkspaceOptions, type WorkspaceCommandOptions, withWorkspace } from './tracking-connection.js';
import { runTuneSpecCommand, type TuneSpecCommandOptions, trialQueueFor } from './tune-spec.js';

/**
 * `kiln tune` commands:
 * - `kiln tune spec.yaml [--trials N --parallel P]` runs a training spec's search section
 *   (the pipeline area's runTuneSpecCommand);
 * - `kiln tune create STUDY --objective branin …` stores a study (built-in objectives for now);
 * - `kiln tune --worker STUDY` works on a stored study until its trial budget is reached;
 *   start as many as you like, on one machine or many against one Postgres, or against a
 *   `kiln server` (`--tracking-uri http://…`) with no database credentials at all;
 * - `kiln tune --resume STUDY` is the same, for continuing a study after a stop;
 * - `kiln tune show STUDY [--json]` prints best trials, the Pareto front and importances.
 * The objective of a worker comes from the study's stored spec: a training spec (run by the
 * pipeline area) or a built-in benchmark function.
 */
export function registerTuneCommands(program: Command): void {
  const tune = program.command('tune');
  addWorkspaceOptions(tune)
    .description('hyperparameter search: stored studies shared by worker processes')
    .argument('[spec]', 'a training spec (YAML) with a search section')
    .option('--worker <study>', 'work on a stored study until its trial budget is reached')
    .option('--resume <study>', 'continue a stored study')
    .option('--trials <n>', 'stop this process after n trials')
    .option('--parallel <p>', 'trials run concurrently in this process')
    .option('--study <name>', 'with a spec: name of the new study')
    .option('--timeout <seconds>', 'stop starting trials after this many seconds')
    .option(
      '--executor <name>',
      'local (trials in this process) or bullmq (trials as jobs for kiln worker processes)',
      'local',
    )
    .option('--redis <url>', 'with --executor bullmq: redis://host:port of the queue (default KILN_REDIS)')
    .option('--queue <name>', `with --executor bullmq: queue name (default ${DEFAULT_QUEUE})`)
    .action(async (spec: string | undefined, opts: WorkerOptions) => {
      const studyName = opts.worker ?? opts.resume;
      if (studyName && spec)
        throw invalidParam('kiln tune: give a spec or --worker/--resume STUDY, not both');
      const queue = trialQueueFor(opts);
      if (queue && opts.worker)
        throw invalidParam(
          "kiln tune --worker runs trials in this process: to send a stored study's trials to kiln workers, use --resume STUDY --executor bullmq",
        );
      if (!studyName) {
        if (!spec)
          throw invalidParam(
            'kiln tune: give a training spec, --worker STUDY, --resume STUDY, or a subcommand (create, show)',
          );
        await runTuneSpecCommand(spec, specOptions(opts));
        return;
      }
      // A study created from a training spec runs the training objective (pipeline area);
      // built-in benchmark objectives run here.
      const fromSpec = await withStudies(opts, async (storage) =>
        isTrainingSpecStudy(await loadStudy({ storage, name: studyName })),
      );
      if (fromSpec) {
        await runTuneSpecCommand(undefined, { ...specOptions(opts), resume: studyName });
        return;
      }
      await withStudies(opts, async (storage) => {
        // The heartbeat thread beats on its own connection to the same storage.
        const study = await loadStudy({ storage, name: studyName });
        const onTrialFinished = (t: FrozenTrial) => {
          if (!opts.json) {
            process.stdout.write(
              `trial ${t.number} ${t.state}${t.values ? ` ${t.values.join(', ')}` : ''}\n`,
            );
          }
        };
        const done = queue
          ? await runTrialsOnQueue(study, {
              ...queue,
              ...(opts.trials === undefined
                ? {}
                : { trials: positiveInt(opts.trials, '--trials', WORK_BOUNDS.iterations) }),
              ...(opts.parallel === undefined
                ? {}
                : { parallel: positiveInt(opts.parallel, '--parallel', WORK_BOUNDS.threads) }),
              onTrialFinished,
            })
          : await study.optimize(objectiveOf(study), {
              nTrials:
                opts.trials === undefined
                  ? undefined
                  : positiveInt(opts.trials, '--trials', WORK_BOUNDS.iterations),
              parallel:
                opts.parallel === undefined
                  ? 1
                  : positiveInt(opts.parallel, '--parallel', WORK_BOUNDS.threads),
              timeout: opts.timeout === undefined ? undefined : Number(opts.timeout),
              onTrialFinished,
            });
        await study.refresh();
        const summary = studySummary(study);
        if (opts.json) {
          process.stdout.write(
            `${JSON.stringify({ worker: study.workerId, trials: done.map((t) => t.number), summary })}\n`,
          );
        } else {
          process.stdout.write(
            queue
              ? `${done.length} trial(s) ran on kiln workers\n`
              : `worker ${study.workerId} ran ${done.length} trial(s)\n`,
          );
        }
      });
    });

  addWorkspaceOptions(tune.command('create'))
    .description('store a new study (objective: a built-in benchmark function for now)')
    .argument('<study>', 'study name')
    .requiredOption('--objective <name>', 'branin | hartmann6 | schaffer')
    .option('--sampler <name>', 'tpe | random | nsga2', 'tpe')
    .option('--pruner <name>', 'median | asha | none', 'none')
    .option('--trials <n>', 'total trials the study should hold')
    .option('--direction <d...>', 'minimize | maximize, one per objective')
    .option('--seed <n>', 'sampler seed')
    .option('--sleep-ms <ms>', 'built-in objectives: sleep per trial (for demos and tests)')
    .option('--heartbeat-ms <ms>', 'worker heartbeat interval', '10000')
    .option('--grace-ms <ms>', 'a RUNNING trial without heartbeat this long is FAILED and retried', '120000')
    .action(async (name: string, _local: CreateOptions, cmd: Command) => {
      // The parent `tune` declares the workspace flags too; commander hands them to it.
      const opts = cmd.optsWithGlobals<CreateOptions>();
      const directions = (opts.direction ??
        (opts.objective === 'schaffer' ? ['minimize', 'minimize'] : ['minimize'])) as Direction[];
      benchmarkObjective(opts.objective); // validates the name before anything is stored
      const spec: StudySpec = {
        sampler: {
          name: opts.sampler ?? 'tpe',
          options: opts.seed === undefined ? {} : { seed: Number(opts.seed) },
        },
        pruner: opts.pruner && opts.pruner !== 'none' ? { name: opts.pruner } : null,
        objective: {
          name: opts.objective,
          options: opts.sleepMs === undefined ? {} : { sleepMs: Number(opts.sleepMs) },
        },
        maxTrials:
          opts.trials === undefined
            ? undefined
            : positiveInt(opts.trials, '--trials', WORK_BOUNDS.iterations),
        heartbeatIntervalMs: positiveInt(opts.heartbeatMs ?? '10000', '--heartbeat-ms'),
        gracePeriodMs: positiveInt(opts.graceMs ?? '120000', '--grace-ms'),
      };
      await withStudies(opts, async (storage) => {
        const study = await createStudy({ storage, name, directions, spec });
        const out = { study: study.name, directions, spec };
        process.stdout.write(opts.json ? `${JSON.stringify(out)}\n` : `created study ${study.name}\n`);
      });
    });

  addWorkspaceOptions(tune.command('show'))
    .description('best trials, Pareto front and parameter importances of a study')
    .argument('<study>', 'study name')
    .option('--top <n>', 'best trials to list', '5')
    .action(async (name: string, _local: unknown, cmd: Command) => {
      const opts = cmd.optsWithGlobals<WorkspaceCommandOptions & { top?: string }>();
      await withStudies(opts, async (storage) => {
        const study = await loadStudy({ storage, name });
        const summary = studySummary(study, positiveInt(opts.top ?? '5', '--top'));
        process.stdout.write(
          opts.json ? `${JSON.stringify(summary, null, 2)}\n` : renderStudySummary(summary),
        );
      });
    });
}

interface WorkerOptions extends WorkspaceCommandOptions {
  study?: string;
  worker?: string;
  resume?: string;
  trials?: string;
  parallel?: string;
  timeout?: string;
  executor?: string;
  redis?: string;
  queue?: string;
}
interface CreateOptions extends WorkspaceCommandOptions {
  objective: string;
  sampler?: string;
  pruner?: string;
  trials?: string;
  direction?: string[];
  seed?: string;
  sleepMs?: string;
  heartbeatMs?: string;
  graceMs?: string;
}

/** The study storage of the workspace the flags name (SQL, or a kiln server's REST API). */
function withStudies<T>(
  opts: WorkspaceCommandOptions,
  fn: (storage: StudyStorage) => Promise<T>,
): Promise<T> {
  return withWorkspace(opts, (_client, workspace) => fn(workspace.studies));
}

function specOptions(opts: WorkerOptions): TuneSpecCommandOptions {
  const out: TuneSpecCommandOptions = {};
  const keys = [
    'trials',
    'parallel',
    'timeout',
    'study',
    'trackingUri',
    'db',
    'home',
    'artifacts',
    'json',
    'executor',
    'redis',
    'queue',
  ] as const;
  for (const k of keys) {
    if (opts[k] !== undefined) (out as Record<string, unknown>)[k] = opts[k];
  }
  return out;
}

function objectiveOf(study: Study): Objective {
  const o = study.record.spec.objective;
  if (!o) throw invalidParam(`study '${study.name}': its spec names no objective, so a worker cannot run it`);
  return benchmarkObjective(o.name, o.options ?? {});
}

function positiveInt(text: string, flag: string, max = Number.MAX_SAFE_INTEGER): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1)
    throw invalidParam(`${flag} must be a positive integer, got '${text.slice(0, 40)}'`);
  if (n > max) throw invalidParam(`${flag} must be at most ${max}, got ${text}`);
  return n;
}

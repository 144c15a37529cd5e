import type { Command } from 'commander';
import { invalidParam } from '../errors.js';
import { WORK_BOUNDS } from '../learn/index.js';
import { isTrainingSpecStudy } from '../pipeline/index.js';
import { openStore, type Store } from '../store/index.js';
import {
  benchmarkObjective,
  createStudy,
  type Direction,
  loadStudy,
  type Objective,
  type Study,
  type StudySpec,
  studySummary,
} from '../tune/index.js';
import { renderStudySummary } from './study-summary-text.js';
import { runTuneSpecCommand, studyStoreConfig, type TuneSpecCommandOptions } from './tune-spec.js';

/**
 * `kiln tune` commands:
 * - `kiln tune spec.yaml [--trials N --parallel P]` runs a training spec's search section
 *   (the pipeline area's runTuneSpecCommand);
 * - `kiln tune create STUDY --objective branin …` stores a study (built-in objectives for now);
 * - `kiln tune --worker STUDY` works on a stored study until its trial budget is reached;
 *   start as many as you like, on one machine or many against one Postgres;
 * - `kiln tune --resume STUDY` is the same, for continuing a study after a stop;
 * - `kiln tune show STUDY [--json]` prints best trials, the Pareto front and importances.
 * The objective of a worker comes from the study's stored spec: a training spec (run by the
 * pipeline area) or a built-in benchmark function.
 */
export function registerTuneCommands(program: Command): void {
  const tune = program
    .command('tune')
    .description('hyperparameter search: stored studies shared by worker processes')
    .argument('[spec]', 'a training spec (YAML) with a search section')
    .option('--worker <study>', 'work on a stored study until its trial budget is reached')
    .option('--resume <study>', 'continue a stored study')
    .option('--trials <n>', 'stop this process after n trials')
    .option('--parallel <p>', 'trials run concurrently in this process')
    .option('--study <name>', 'with a spec: name of the new study')
    .option('--tracking-uri <uri>', 'with a training spec: where trial runs are tracked')
    .option('--timeout <seconds>', 'stop starting trials after this many seconds')
    .option('--db <uri>', 'SQLite file or postgres:// URI (default $KILN_DB)')
    .option('--home <dir>', 'KILN_HOME for the embedded store')
    .option('--json', 'print JSON')
    .action(async (spec: string | undefined, opts: WorkerOptions) => {
      const studyName = opts.worker ?? opts.resume;
      if (studyName && spec)
        throw invalidParam('kiln tune: give a spec or --worker/--resume STUDY, not both');
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
      const fromSpec = await withStore(opts, async (store) =>
        isTrainingSpecStudy(await loadStudy({ store, name: studyName })),
      );
      if (fromSpec) {
        await runTuneSpecCommand(undefined, { ...specOptions(opts), resume: studyName });
        return;
      }
      await withStore(opts, async (store) => {
        // The heartbeat thread connects with the store's own full URI (Store.connectionUri).
        const study = await loadStudy({ store, name: studyName });
        const objective = objectiveOf(study);
        const done = await study.optimize(objective, {
          nTrials:
            opts.trials === undefined
              ? undefined
              : positiveInt(opts.trials, '--trials', WORK_BOUNDS.iterations),
          parallel:
            opts.parallel === undefined ? 1 : positiveInt(opts.parallel, '--parallel', WORK_BOUNDS.threads),
          timeout: opts.timeout === undefined ? undefined : Number(opts.timeout),
          onTrialFinished: (t) => {
            if (!opts.json) {
              process.stdout.write(
                `trial ${t.number} ${t.state}${t.values ? ` ${t.values.join(', ')}` : ''}\n`,
              );
            }
          },
        });
        await study.refresh();
        const summary = studySummary(study);
        if (opts.json) {
          process.stdout.write(
            `${JSON.stringify({ worker: study.workerId, trials: done.map((t) => t.number), summary })}\n`,
          );
        } else {
          process.stdout.write(`worker ${study.workerId} ran ${done.length} trial(s)\n`);
        }
      });
    });

  tune
    .command('create')
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
    .option('--db <uri>', 'SQLite file or postgres:// URI (default $KILN_DB)')
    .option('--home <dir>', 'KILN_HOME for the embedded store')
    .option('--json', 'print JSON')
    .action(async (name: string, _local: CreateOptions, cmd: Command) => {
      // The parent `tune` declares --db/--home/--json too; commander hands them to it.
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
      await withStore(opts, async (store) => {
        const study = await createStudy({ store, name, directions, spec });
        const out = { study: study.name, directions, spec };
        process.stdout.write(opts.json ? `${JSON.stringify(out)}\n` : `created study ${study.name}\n`);
      });
    });

  tune
    .command('show')
    .description('best trials, Pareto front and parameter importances of a study')
    .argument('<study>', 'study name')
    .option('--top <n>', 'best trials to list', '5')
    .option('--tracking-uri <uri>', 'a postgres:// database or folder holding the study (as for a spec)')
    .option('--db <uri>', 'SQLite file or postgres:// URI (default $KILN_DB)')
    .option('--home <dir>', 'KILN_HOME for the embedded store')
    .option('--json', 'print JSON')
    .action(async (name: string, _local: unknown, cmd: Command) => {
      const opts = cmd.optsWithGlobals<{
        top?: string;
        db?: string;
        home?: string;
        json?: boolean;
        trackingUri?: string;
      }>();
      await withStore(opts, async (store) => {
        const study = await loadStudy({ store, name });
        const summary = studySummary(study, positiveInt(opts.top ?? '5', '--top'));
        process.stdout.write(
          opts.json ? `${JSON.stringify(summary, null, 2)}\n` : renderStudySummary(summary),
        );
      });
    });
}

interface StoreOptions {
  db?: string;
  home?: string;
  json?: boolean;
}
interface WorkerOptions extends StoreOptions {
  study?: string;
  trackingUri?: string;
  worker?: string;
  resume?: string;
  trials?: string;
  parallel?: string;
  timeout?: string;
}
interface CreateOptions extends StoreOptions {
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

async function withStore<T>(
  opts: StoreOptions & { trackingUri?: string },
  fn: (store: Store) => Promise<T>,
): Promise<T> {
  const config = studyStoreConfig(opts);
  const store = await openStore({ db: config.db });
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

function specOptions(opts: WorkerOptions): TuneSpecCommandOptions {
  const out: TuneSpecCommandOptions = {};
  for (const k of ['trials', 'parallel', 'timeout', 'study', 'trackingUri', 'db', 'home', 'json'] as const) {
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

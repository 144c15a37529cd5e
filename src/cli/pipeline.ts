import cliProgress from 'cli-progress';
import type { Command } from 'commander';
import { localUser } from '../auth/index.js';
import { resolveConfig } from '../config.js';
import { KilnError } from '../errors.js';
import {
  addSchedule,
  addTrigger,
  BullmqExecutor,
  DEFAULT_QUEUE,
  explainPipeline,
  nextFireTime,
  type PipelineEvent,
  type PipelineRunOptions,
  type PipelineRunSummary,
  resumePipeline,
  runPipeline,
  SqlPipelineStore,
  type StepExecutor,
  type StepRecord,
  type TrackingServer,
} from '../pipeline/index.js';
import { buildApp } from '../server/index.js';
import { isLocalWorkspace, type Workspace } from '../workspace.js';
import {
  escapeControlCharacters,
  formatDuration,
  formatTimestamp,
  printJson,
  renderKeyValues,
  renderTable,
} from './table.js';
import {
  addWorkspaceOptions,
  collect,
  parseKeyValue,
  parsePositiveInt,
  type WorkspaceCommandOptions,
  withWorkspace,
  workspaceTarget,
} from './tracking-connection.js';

interface RunCommandOptions extends WorkspaceCommandOptions {
  param: string[];
  executor?: string;
  redis?: string;
  queue?: string;
  cache?: boolean;
  rerun: string[];
  concurrency?: string;
  logs?: boolean;
  progress?: boolean;
}

/**
 * Serves the workspace's MLflow-compatible API on a loopback port for the length of a run,
 * so a command step's MLflow client (MLFLOW_TRACKING_URI, MLFLOW_RUN_ID) logs into its step's run.
 */
export async function serveWorkspaceTracking(workspace: Workspace): Promise<TrackingServer> {
  // A remote workspace already is a server: command steps log to it.
  if (!isLocalWorkspace(workspace)) return { uri: workspace.location, close: async () => {} };
  const app = await buildApp({
    workspace,
    config: resolveConfig({ host: '127.0.0.1', port: 0 }),
    logger: false,
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return { uri: `http://127.0.0.1:${port}`, close: () => app.close() };
}

function paramOverrides(list: string[]): Record<string, string> {
  return Object.fromEntries(list.map((t) => parseKeyValue('--param', t)));
}

/**
 * Where steps run: `--executor`, else bullmq when a queue is named (--redis, KILN_REDIS), else
 * local. The bullmq executor needs a queue; a local run ignores KILN_REDIS only when told to.
 */
export function executorFor(opts: {
  executor?: string;
  redis?: string;
  queue?: string;
}): StepExecutor | undefined {
  const redis = opts.redis ?? resolveConfig().redis;
  const kind = opts.executor ?? (redis ? 'bullmq' : 'local');
  if (kind === 'local') return undefined;
  if (kind !== 'bullmq')
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      `--executor: expected local or bullmq, got '${kind.slice(0, 40)}'`,
    );
  if (!redis)
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      '--executor bullmq: name the queue with --redis redis://host:port or KILN_REDIS',
    );
  return new BullmqExecutor({ redis, ...(opts.queue ? { queue: opts.queue } : {}) }).withTracking(true);
}

function runOptions(opts: RunCommandOptions): PipelineRunOptions {
  const executor = executorFor(opts);
  return {
    ...(executor ? { executor } : {}),
    workspace: workspaceTarget(opts),
    params: paramOverrides(opts.param),
    noCache: opts.cache === false ? true : opts.rerun.length > 0 ? opts.rerun : false,
    ...(opts.concurrency !== undefined
      ? { concurrency: parsePositiveInt('--concurrency', opts.concurrency) }
      : {}),
    serveTracking: serveWorkspaceTracking,
  };
}

const STATUS_TEXT: Record<string, string> = {
  pending: 'waiting',
  running: 'running',
  succeeded: 'done',
  cached: 'cached',
  failed: 'FAILED',
  skipped: 'skipped',
};

/**
 * Live progress: one bar per step on a terminal (stderr), a line per change otherwise; with
 * --json every event is a JSON line on stdout and the summary the last line.
 */
function progressReporter(opts: RunCommandOptions): { onEvent: (e: PipelineEvent) => void; stop(): void } {
  if (opts.json) {
    return {
      onEvent: (e) => {
        if (e.type !== 'log' || opts.logs) process.stdout.write(`${JSON.stringify(e)}\n`);
      },
      stop: () => {},
    };
  }
  const tty = process.stderr.isTTY && opts.progress !== false && !opts.logs;
  if (!tty) {
    return {
      onEvent: (e) => {
        if (e.type === 'run') process.stderr.write(`pipeline ${e.name}: run ${e.runId}\n`);
        if (e.type === 'step')
          process.stderr.write(
            `  ${e.step}: ${STATUS_TEXT[e.status]}${e.attempt && e.attempt > 1 ? ` (attempt ${e.attempt})` : ''}${e.error ? `: ${e.error}` : ''}\n`,
          );
        if (e.type === 'log' && opts.logs)
          process.stderr.write(`  [${e.step}] ${escapeControlCharacters(e.line)}\n`);
      },
      stop: () => {},
    };
  }
  const multi = new cliProgress.MultiBar(
    {
      format: ' {step} [{bar}] {status}',
      stream: process.stderr,
      hideCursor: true,
      clearOnComplete: false,
      barsize: 10,
    },
    cliProgress.Presets.shades_classic,
  );
  const bars = new Map<string, cliProgress.SingleBar>();
  let width = 0;
  return {
    onEvent: (e) => {
      if (e.type === 'run') {
        width = Math.max(...e.steps.map((s) => s.length));
        for (const s of e.steps)
          bars.set(s, multi.create(1, 0, { step: s.padEnd(width), status: 'waiting' }));
      }
      if (e.type === 'step') {
        const done = e.status !== 'pending' && e.status !== 'running';
        const status = `${STATUS_TEXT[e.status]}${e.attempt && e.attempt > 1 ? ` (attempt ${e.attempt})` : ''}${e.error ? `: ${e.error.slice(0, 120)}` : ''}`;
        bars.get(e.step)?.update(done ? 1 : 0, { step: e.step.padEnd(width), status });
      }
    },
    stop: () => multi.stop(),
  };
}

function summaryText(r: PipelineRunSummary): string {
  const table = renderTable(r.steps, [
    { header: 'STEP', value: (s) => s.step },
    { header: 'KIND', value: (s) => s.kind },
    { header: 'STATUS', value: (s) => s.status },
    { header: 'TRIES', value: (s) => String(s.attempts) },
    { header: 'KEY', value: (s) => (s.cacheKey ?? '').slice(0, 12) },
    {
      header: 'NOTE',
      value: (s) => s.error ?? (s.cachedFrom ? `from run ${s.cachedFrom.slice(0, 12)}` : ''),
    },
  ]);
  return `pipeline ${r.name} run ${r.runId}: ${r.status}\n${table}`;
}

async function runAndReport(
  opts: RunCommandOptions,
  body: (o: PipelineRunOptions) => Promise<PipelineRunSummary>,
) {
  const reporter = progressReporter(opts);
  let result: PipelineRunSummary;
  try {
    result = await body({ ...runOptions(opts), onEvent: reporter.onEvent });
  } finally {
    reporter.stop();
  }
  if (opts.json) process.stdout.write(`${JSON.stringify({ type: 'summary', ...result })}\n`);
  else process.stdout.write(summaryText(result));
  if (result.status !== 'SUCCEEDED') process.exitCode = 1;
}

function withPipelines<T>(
  opts: WorkspaceCommandOptions,
  body: (p: SqlPipelineStore, ws: Workspace) => Promise<T>,
): Promise<T> {
  return withWorkspace(opts, (_client, workspace) => {
    if (!workspace.store)
      throw new KilnError(
        'INVALID_STATE',
        `pipeline runs live in a local or database workspace, not ${workspace.location}`,
      );
    return body(new SqlPipelineStore(workspace.store), workspace);
  });
}

function stepsTable(steps: StepRecord[]): string {
  return renderTable(steps, [
    { header: 'STEP', value: (s) => s.step },
    { header: 'KIND', value: (s) => s.kind },
    { header: 'STATUS', value: (s) => s.status },
    { header: 'TRIES', value: (s) => String(s.attempts) },
    {
      header: 'TIME',
      value: (s) => (s.startTime && s.endTime ? formatDuration(s.endTime - s.startTime) : ''),
    },
    { header: 'KEY', value: (s) => (s.cacheKey ?? '').slice(0, 12) },
    { header: 'RUN', value: (s) => s.trackingRunId ?? '' },
    {
      header: 'OUTPUTS / ERROR',
      value: (s) =>
        s.error ??
        Object.entries(s.outputs ?? {})
          .map(
            ([k, v]) =>
              `${k}=${'value' in v ? JSON.stringify(v.value) : `file ${v.file.sha256.slice(0, 8)}`}`,
          )
          .join(' '),
    },
  ]);
}

/** `kiln pipeline …`: run, resume, ls, show, explain, logs, schedule, trigger. */
export function registerPipelineCommands(program: Command): void {
  const pipeline = program
    .command('pipeline')
    .description('declared, cached, resumable workflows (kiln.yaml)');

  const runFlags = (c: Command) =>
    addWorkspaceOptions(c)
      .option('--param <k=v>', 'override a declared parameter (repeatable)', collect, [])
      .option('--no-cache', 'run every step; read and write no cache entry')
      // Commander reads any --no-… flag as a negated boolean, so the per-step form has its own name.
      .option('--rerun <step>', 'no cache for this step: run it even if cached (repeatable)', collect, [])
      .option('--concurrency <n>', 'steps run at once (default: the spec’s, else 2)')
      .option('--logs', 'stream each step’s log lines to stderr (with --json: as log events)')
      .option(
        '--executor <name>',
        'local (steps in processes here) or bullmq (steps on kiln worker processes); default bullmq when a queue is named, else local',
      )
      .option('--redis <url>', 'redis://host:port of the step queue (default KILN_REDIS)')
      .option('--queue <name>', `queue name (default ${DEFAULT_QUEUE})`)
      .option('--no-progress', 'no progress bars');

  runFlags(
    pipeline
      .command('run')
      .argument('[spec]', 'the pipeline spec', 'kiln.yaml')
      .description('run the pipeline: independent steps in parallel, cached steps skipped'),
  ).action(async (spec: string, opts: RunCommandOptions) => {
    await runAndReport(opts, (o) => runPipeline(spec, o));
  });

  runFlags(
    pipeline
      .command('resume')
      .argument('<run>', 'pipeline run id (or a unique prefix)')
      .description('continue a failed run: finished steps keep their outputs, the rest run'),
  ).action(async (run: string, opts: RunCommandOptions) => {
    await runAndReport(opts, (o) => resumePipeline(run, o));
  });

  addWorkspaceOptions(
    pipeline
      .command('explain')
      .argument('[spec]', 'the pipeline spec', 'kiln.yaml')
      .option('--param <k=v>', 'override a declared parameter (repeatable)', collect, [])
      .description('show each step’s cache key, what went into it, and whether it is cached'),
  ).action(async (spec: string, opts: WorkspaceCommandOptions & { param: string[] }) => {
    const steps = await explainPipeline(spec, {
      workspace: workspaceTarget(opts),
      params: paramOverrides(opts.param),
    });
    if (opts.json) return printJson(steps);
    const lines: string[] = [];
    for (const s of steps) {
      lines.push(
        `${s.step} (${s.kind}): ${s.key ? `${s.key}${s.cached ? '  cached' : '  not cached'}` : s.note}`,
      );
      if (s.explain) for (const l of JSON.stringify(s.explain, null, 2).split('\n')) lines.push(`  ${l}`);
    }
    process.stdout.write(`${lines.join('\n')}\n`);
  });

  const schedule = pipeline
    .command('schedule')
    .description(
      'cron triggers: kiln server runs the pipeline at each tick (once, whatever the number of servers)',
    );
  addWorkspaceOptions(
    schedule
      .command('add')
      .argument('<name>', 'the schedule’s name')
      .requiredOption(
        '--cron <expr>',
        "cron expression in UTC: 5 fields, or 6 with seconds first ('0 3 * * *': 03:00 daily)",
      )
      .option('--spec <file>', 'the pipeline spec', 'kiln.yaml')
      .option('--param <k=v>', 'override a declared parameter at each run (repeatable)', collect, [])
      .description('add (or replace) a schedule; the spec and parameters are checked now'),
  ).action(
    async (name: string, opts: WorkspaceCommandOptions & { cron: string; spec: string; param: string[] }) => {
      const record = await withPipelines(opts, (p) =>
        addSchedule(p, {
          name,
          cron: opts.cron,
          spec: opts.spec,
          params: paramOverrides(opts.param),
          createdBy: localUser(),
        }),
      );
      const next = nextFireTime(record.cron, Date.now());
      if (opts.json) return printJson({ ...record, nextFireTime: next });
      process.stdout.write(
        `schedule '${record.name}': ${record.specPath} at '${record.cron}' (UTC); next ${next === null ? 'never' : formatTimestamp(next)}\nkiln server runs it (any server on this store)\n`,
      );
    },
  );
  addWorkspaceOptions(schedule.command('ls').description('schedules, their last and next firing')).action(
    async (opts: WorkspaceCommandOptions) => {
      const list = await withPipelines(opts, (p) => p.listSchedules());
      const now = Date.now();
      const rows = list.map((s) => ({ ...s, nextFireTime: s.enabled ? nextFireTime(s.cron, now) : null }));
      if (opts.json) return printJson(rows);
      process.stdout.write(
        rows.length === 0
          ? 'no schedules: kiln pipeline schedule add NAME --cron EXPR --spec kiln.yaml\n'
          : renderTable(rows, [
              { header: 'NAME', value: (r) => r.name },
              { header: 'CRON (UTC)', value: (r) => r.cron },
              { header: 'SPEC', value: (r) => r.specPath },
              { header: 'LAST FIRED', value: (r) => (r.lastFireTime ? formatTimestamp(r.lastFireTime) : '') },
              { header: 'LAST RUN', value: (r) => r.lastRunId ?? '' },
              { header: 'NEXT', value: (r) => (r.nextFireTime ? formatTimestamp(r.nextFireTime) : '') },
            ]),
      );
    },
  );
  addWorkspaceOptions(
    schedule.command('rm').argument('<name>', 'the schedule’s name').description('delete a schedule'),
  ).action(async (name: string, opts: WorkspaceCommandOptions) => {
    const removed = await withPipelines(opts, (p) => p.deleteSchedule(name));
    if (!removed)
      throw new KilnError('RESOURCE_DOES_NOT_EXIST', `schedule '${name.slice(0, 100)}' does not exist`);
    if (opts.json) return printJson({ deleted: name });
    process.stdout.write(`deleted schedule '${name}'\n`);
  });

  const trigger = pipeline
    .command('trigger')
    .description(
      'event triggers: kiln server runs the pipeline when a matching event is published (once, whatever the number of servers)',
    );
  addWorkspaceOptions(
    trigger
      .command('add')
      .argument('<name>', 'the trigger’s name')
      .requiredOption('--event <type>', 'the event type, e.g. alert.fired')
      .option(
        '--match <field=value>',
        'only events whose field has this value (subject, actor or payload.NAME; * matches any run of characters; repeatable)',
        collect,
        [],
      )
      .option('--spec <file>', 'the pipeline spec', 'kiln.yaml')
      .option('--param <k=v>', 'override a declared parameter at each run (repeatable)', collect, [])
      .option('--event-param <name>', 'the declared parameter that receives the event', 'event')
      .description('add (or replace) an event trigger; only events published from now on fire it'),
  ).action(
    async (
      name: string,
      opts: WorkspaceCommandOptions & {
        event: string;
        match: string[];
        spec: string;
        param: string[];
        eventParam: string;
      },
    ) => {
      const record = await withPipelines(opts, (p) =>
        addTrigger(p, {
          name,
          event: opts.event,
          match: Object.fromEntries(opts.match.map((t) => parseKeyValue('--match', t))),
          spec: opts.spec,
          params: paramOverrides(opts.param),
          eventParam: opts.eventParam,
          createdBy: localUser(),
        }),
      );
      if (opts.json) return printJson(record);
      process.stdout.write(
        `trigger '${record.name}': ${record.specPath} on ${record.eventType}${
          Object.keys(record.match).length
            ? ` where ${Object.entries(record.match)
                .map(([k, v]) => `${k}=${v}`)
                .join(', ')}`
            : ''
        }, the event in params.${record.eventParam}\nkiln server runs it (any server on this store)\n`,
      );
    },
  );
  addWorkspaceOptions(trigger.command('ls').description('event triggers and their latest firing')).action(
    async (opts: WorkspaceCommandOptions) => {
      const rows = await withPipelines(opts, async (p) =>
        Promise.all(
          (await p.listTriggers()).map(async (t) => ({
            ...t,
            firings: await p.listTriggerFirings(t.name, 5),
          })),
        ),
      );
      if (opts.json) return printJson(rows);
      process.stdout.write(
        rows.length === 0
          ? 'no triggers: kiln pipeline trigger add NAME --event alert.fired --spec kiln.yaml\n'
          : renderTable(rows, [
              { header: 'NAME', value: (r) => r.name },
              { header: 'EVENT', value: (r) => r.eventType },
              {
                header: 'MATCH',
                value: (r) =>
                  Object.entries(r.match)
                    .map(([k, v]) => `${k}=${v}`)
                    .join(' '),
              },
              { header: 'SPEC', value: (r) => r.specPath },
              {
                header: 'LAST FIRED',
                value: (r) => (r.firings[0] ? formatTimestamp(r.firings[0].fireTime) : ''),
              },
              { header: 'LAST RUN', value: (r) => r.firings[0]?.runId ?? r.firings[0]?.error ?? '' },
            ]),
      );
    },
  );
  addWorkspaceOptions(
    trigger.command('rm').argument('<name>', 'the trigger’s name').description('delete an event trigger'),
  ).action(async (name: string, opts: WorkspaceCommandOptions) => {
    const removed = await withPipelines(opts, (p) => p.deleteTrigger(name));
    if (!removed)
      throw new KilnError('RESOURCE_DOES_NOT_EXIST', `trigger '${name.slice(0, 100)}' does not exist`);
    if (opts.json) return printJson({ deleted: name });
    process.stdout.write(`deleted trigger '${name}'\n`);
  });

  addWorkspaceOptions(
    pipeline
      .command('ls')
      .option('--name <name>', 'only runs of this pipeline')
      .option('--limit <n>', 'at most this many runs', '50')
      .description('list pipeline runs, newest first'),
  ).action(async (opts: WorkspaceCommandOptions & { name?: string; limit: string }) => {
    const runs = await withPipelines(opts, (p) =>
      p.listRuns({ name: opts.name, limit: parsePositiveInt('--limit', opts.limit) }),
    );
    if (opts.json) return printJson(runs.map(({ spec: _s, ...r }) => r));
    process.stdout.write(
      runs.length === 0
        ? 'no pipeline runs yet: kiln pipeline run kiln.yaml\n'
        : renderTable(runs, [
            { header: 'RUN', value: (r) => r.runId },
            { header: 'PIPELINE', value: (r) => r.name },
            { header: 'STATUS', value: (r) => r.status },
            { header: 'STARTED', value: (r) => formatTimestamp(r.startTime) },
            { header: 'TIME', value: (r) => (r.endTime ? formatDuration(r.endTime - r.startTime) : '') },
            { header: 'TRIGGER', value: (r) => String(r.trigger.type ?? '') },
          ]),
    );
  });

  addWorkspaceOptions(
    pipeline
      .command('show')
      .argument('<run>', 'pipeline run id (or a unique prefix)')
      .description('a run: its parameters, and each step’s status, key, run and outputs'),
  ).action(async (id: string, opts: WorkspaceCommandOptions) => {
    const { run, steps } = await withPipelines(opts, async (p) => {
      const run = await p.getRun(id);
      return { run, steps: await p.listSteps(run.runId) };
    });
    const order = Object.keys((run.spec as { steps: Record<string, unknown> }).steps);
    steps.sort((a, b) => order.indexOf(a.step) - order.indexOf(b.step));
    if (opts.json) return printJson({ ...run, steps });
    process.stdout.write(
      `${renderKeyValues([
        ['run', run.runId],
        ['pipeline', run.name],
        ['status', run.status],
        ['spec', run.specPath],
        ['params', JSON.stringify(run.params)],
        ['trigger', JSON.stringify(run.trigger)],
        ['tracking run', run.trackingRunId ?? ''],
        ['started', formatTimestamp(run.startTime)],
        ['ended', run.endTime ? formatTimestamp(run.endTime) : ''],
      ])}\n${stepsTable(steps)}`,
    );
  });

  addWorkspaceOptions(
    pipeline
      .command('logs')
      .argument('<run>', 'pipeline run id (or a unique prefix)')
      .argument('<step>', 'the step')
      .description('print a step’s stored log (every attempt)'),
  ).action(async (id: string, stepName: string, opts: WorkspaceCommandOptions) => {
    await withPipelines(opts, async (p, ws) => {
      const run = await p.getRun(id);
      const step = (await p.listSteps(run.runId)).find((s) => s.step === stepName);
      if (!step)
        throw new KilnError('RESOURCE_DOES_NOT_EXIST', `pipeline run ${run.runId} has no step '${stepName}'`);
      if (!step.trackingRunId || !step.logPath)
        throw new KilnError(
          'RESOURCE_DOES_NOT_EXIST',
          `step ${stepName} of run ${run.runId} has no log (${step.status})`,
        );
      const inRun = step.logPath.replace(`runs:/${step.trackingRunId}/`, '');
      for await (const chunk of await ws.tracking.downloadArtifact(step.trackingRunId, inRun))
        process.stdout.write(chunk);
    });
  });
}

import type { Command } from 'commander';
import { runHeartbeatSettings } from '../config.js';
import { KilnError } from '../errors.js';
import { runCostLines, runCostOf } from '../registry/index.js';
import type { KilnClient } from '../sdk/index.js';
import type { Experiment, FileInfo, Run } from '../tracking/index.js';
import {
  type Cell,
  type Column,
  formatDuration,
  formatNumber,
  formatTimestamp,
  printJson,
  renderKeyValues,
  renderTable,
} from './table.js';
import {
  addWorkspaceOptions,
  collect,
  parseAge,
  parsePositiveInt,
  parseViewType,
  type WorkspaceCommandOptions,
  withWorkspace,
} from './tracking-connection.js';

interface ListOptions extends WorkspaceCommandOptions {
  experiment?: string[];
  filter?: string;
  orderBy?: string[];
  maxResults?: string;
  view?: string;
  pageToken?: string;
  metrics?: string;
  staleAfter?: string;
}

/** Metric columns `runs ls` shows besides the ones the filter and order-by name. */
const MAX_METRIC_COLUMNS = 6;

/** `kiln runs ls|show|compare`. */
export function registerRunsCommands(program: Command): void {
  const group = program.command('runs').description('list, inspect and compare tracked runs');

  addWorkspaceOptions(
    group
      .command('ls')
      .description('list runs, newest first unless --order-by says otherwise')
      .option('--experiment <name-or-id>', 'experiment to search (repeatable; default: all active)', collect)
      .option('--filter <expr>', 'MLflow filter, e.g. "metrics.auc > 0.9 and params.depth = \'6\'"')
      .option('--order-by <clause>', "e.g. 'metrics.auc DESC' (repeatable)", collect)
      .option('--max-results <n>', 'page size (default 100)')
      .option('--view <active|deleted|all>', 'which lifecycle stage to show (default active)')
      .option('--page-token <token>', 'continue from a previous page')
      .option(
        '--stale-after <age>',
        'a RUNNING run with no heartbeat this long is marked stale, e.g. 10m, 90s (default KILN_RUN_STALE_MS, else 2m)',
      )
      .option(
        '--metrics <keys>',
        'metric columns to show, comma-separated (default: those the filter and order-by name, then the first few)',
      ),
  ).action(async (opts: ListOptions) => {
    const maxResults = parsePositiveInt('--max-results', opts.maxResults) ?? 100;
    const viewType = parseViewType(opts.view);
    const staleAfterMs = parseAge('--stale-after', opts.staleAfter) ?? runHeartbeatSettings().staleAfterMs;
    const { page, experiments, heartbeats } = await withWorkspace(opts, async (kiln) => {
      const experiments = await resolveExperiments(kiln, opts.experiment);
      const page = await kiln.searchRuns({
        experimentIds: experiments.map((e) => e.experiment_id),
        filter: opts.filter,
        orderBy: opts.orderBy,
        maxResults,
        viewType,
        pageToken: opts.pageToken,
      });
      const running = page.runs.filter((r) => r.info.status === 'RUNNING').map((r) => r.info.run_id);
      const heartbeats = running.length > 0 ? await kiln.store.runHeartbeats(running) : {};
      return { page, experiments, heartbeats };
    });
    // A RUNNING run whose owner stopped beating: its process is gone (`kiln gc --stale` closes it).
    const now = Date.now();
    const staleSince = (r: Run): number | undefined => {
      const beat = heartbeats[r.info.run_id];
      return r.info.status === 'RUNNING' && beat !== undefined && now - beat > staleAfterMs
        ? beat
        : undefined;
    };
    if (opts.json) {
      const stale = page.runs.filter((r) => staleSince(r) !== undefined).map((r) => r.info.run_id);
      printJson({
        runs: page.runs,
        ...(page.nextPageToken ? { next_page_token: page.nextPageToken } : {}),
        stale_run_ids: stale,
      });
      return;
    }
    const nameOf = new Map(experiments.map((e) => [e.experiment_id, e.name]));
    const referenced = [opts.filter ?? '', ...(opts.orderBy ?? [])].join(' ');
    const chosenMetrics = opts.metrics
      ?.split(',')
      .map((k) => k.trim())
      .filter((k) => k !== '');
    const metricKeys =
      chosenMetrics ??
      pickKeys(
        page.runs.flatMap((r) => r.data.metrics.map((m) => m.key)),
        referencedKeys(referenced, 'metrics'),
        MAX_METRIC_COLUMNS,
      );
    const paramKeys = referencedKeys(referenced, 'params');
    const columns: Column<Run>[] = [
      { header: 'RUN ID', value: (r) => r.info.run_id },
      { header: 'NAME', value: (r) => r.info.run_name, maxWidth: 30 },
      ...(new Set(page.runs.map((r) => r.info.experiment_id)).size > 1
        ? [{ header: 'EXPERIMENT', value: (r: Run) => nameOf.get(r.info.experiment_id), maxWidth: 30 }]
        : []),
      {
        header: 'STATUS',
        value: (r) => {
          const beat = staleSince(r);
          return beat === undefined
            ? r.info.status
            : `RUNNING (stale: no heartbeat for ${formatDuration(now - beat)})`;
        },
      },
      { header: 'START (UTC)', value: (r) => formatTimestamp(r.info.start_time) },
      { header: 'DURATION', value: (r) => runDuration(r), align: 'right' },
      ...metricKeys.map((k) => ({
        header: `metrics.${k}`,
        value: (r: Run) => latestMetric(r, k),
        align: 'right' as const,
      })),
      ...paramKeys.map((k) => ({ header: `params.${k}`, value: (r: Run) => paramOf(r, k), maxWidth: 30 })),
    ];
    process.stdout.write(renderTable(page.runs, columns, { empty: 'no runs' }));
    if (page.nextPageToken) {
      process.stdout.write(`\nmore runs: add --page-token ${page.nextPageToken}\n`);
    }
  });

  addWorkspaceOptions(
    group.command('show <run-id>').description("a run's info, params, metrics, tags and artifacts"),
  ).action(async (runId: string, opts: WorkspaceCommandOptions) => {
    const { run, experiment, artifacts } = await withWorkspace(opts, async (kiln) => {
      const run = await kiln.getRun(runId);
      const experiment = await kiln.experiments.get(run.info.experiment_id).catch(() => undefined);
      const artifacts = await listArtifactsOrNothing(kiln, runId);
      return { run, experiment, artifacts };
    });
    const cost = runCostOf(run);
    if (opts.json) {
      printJson({ run, artifacts, ...(cost ? { cost } : {}) });
      return;
    }
    const { info, data } = run;
    const out: string[] = [];
    out.push(
      renderKeyValues([
        ['run id', info.run_id],
        ['name', info.run_name],
        ['experiment', experiment ? `${experiment.name} (${info.experiment_id})` : info.experiment_id],
        ['status', info.status],
        ['user', info.user_id],
        ['start (UTC)', formatTimestamp(info.start_time)],
        ['end (UTC)', formatTimestamp(info.end_time)],
        ['duration', runDuration(run)],
        ['lifecycle', info.lifecycle_stage],
        ['artifact uri', info.artifact_uri],
      ]),
    );
    if (cost) {
      out.push(section(`cost (${cost.currency})`));
      out.push(renderKeyValues(runCostLines(cost)));
    }
    const byKey = <T extends { key: string }>(a: T, b: T) => a.key.localeCompare(b.key);
    out.push(section('params'));
    out.push(
      renderTable(
        [...data.params].sort(byKey),
        [
          { header: 'KEY', value: (p) => p.key },
          { header: 'VALUE', value: (p) => p.value, maxWidth: 80 },
        ],
        { empty: '(none)' },
      ),
    );
    out.push(section('metrics (latest)'));
    out.push(
      renderTable(
        [...data.metrics].sort(byKey),
        [
          { header: 'KEY', value: (m) => m.key },
          { header: 'VALUE', value: (m) => m.value },
          { header: 'STEP', value: (m) => m.step },
          { header: 'TIME (UTC)', value: (m) => formatTimestamp(m.timestamp) },
        ],
        { empty: '(none)' },
      ),
    );
    out.push(section('tags'));
    out.push(
      renderTable(
        [...data.tags].sort(byKey),
        [
          { header: 'KEY', value: (t) => t.key },
          { header: 'VALUE', value: (t) => t.value, maxWidth: 80 },
        ],
        { empty: '(none)' },
      ),
    );
    out.push(section('artifacts'));
    out.push(
      renderTable(
        artifacts,
        [
          { header: 'PATH', value: (f) => (f.is_dir ? `${f.path}/` : f.path), maxWidth: 80 },
          { header: 'SIZE', value: (f) => (f.is_dir ? '' : f.file_size), align: 'right' },
        ],
        { empty: '(none)' },
      ),
    );
    process.stdout.write(out.join(''));
  });

  addWorkspaceOptions(
    group
      .command('compare <run-ids...>')
      .description(
        "runs side by side: info, then every param and metric (latest); '*' marks rows that differ",
      ),
  ).action(async (runIds: string[], opts: WorkspaceCommandOptions) => {
    if (runIds.length < 2) {
      throw new KilnError('INVALID_PARAMETER_VALUE', 'runs compare needs at least two run ids');
    }
    const runs = await withWorkspace(opts, (kiln) => Promise.all(runIds.map((id) => kiln.getRun(id))));
    const paramKeys = [...new Set(runs.flatMap((r) => r.data.params.map((p) => p.key)))].sort();
    const metricKeys = [...new Set(runs.flatMap((r) => r.data.metrics.map((m) => m.key)))].sort();
    if (opts.json) {
      printJson({
        runs,
        params: Object.fromEntries(paramKeys.map((k) => [k, runs.map((r) => paramOf(r, k) ?? null)])),
        metrics: Object.fromEntries(metricKeys.map((k) => [k, runs.map((r) => latestMetric(r, k) ?? null)])),
      });
      return;
    }
    type Row = { field: string; values: Cell[] };
    const rows: Row[] = [
      { field: 'name', values: runs.map((r) => r.info.run_name) },
      { field: 'experiment id', values: runs.map((r) => r.info.experiment_id) },
      { field: 'status', values: runs.map((r) => r.info.status) },
      { field: 'start (UTC)', values: runs.map((r) => formatTimestamp(r.info.start_time)) },
      { field: 'duration', values: runs.map((r) => runDuration(r)) },
      ...paramKeys.map((k) => ({ field: `params.${k}`, values: runs.map((r) => paramOf(r, k)) })),
      ...metricKeys.map((k) => ({ field: `metrics.${k}`, values: runs.map((r) => latestMetric(r, k)) })),
    ];
    const differs = (row: Row) =>
      (row.field.startsWith('params.') || row.field.startsWith('metrics.')) &&
      new Set(row.values.map((v) => (typeof v === 'number' ? formatNumber(v) : String(v ?? '')))).size > 1;
    const columns: Column<Row>[] = [
      { header: '', value: (row) => (differs(row) ? '*' : '') },
      { header: 'FIELD', value: (row) => row.field },
      ...runs.map((r, i) => ({
        header: r.info.run_id.slice(0, 8),
        value: (row: Row) => row.values[i],
        // One alignment per column: a column mixes names, dates and numbers.
        align: 'left' as const,
        maxWidth: 40,
      })),
    ];
    process.stdout.write(renderTable(rows, columns));
  });
}

/** `--experiment` values: names first; a number that names no experiment is taken as an id. */
async function resolveExperiments(kiln: KilnClient, values: string[] | undefined): Promise<Experiment[]> {
  if (!values || values.length === 0) return kiln.experiments.list();
  const out: Experiment[] = [];
  for (const v of values) {
    try {
      out.push(await kiln.experiments.getByName(v));
    } catch (e) {
      if (!(e instanceof KilnError) || e.code !== 'RESOURCE_DOES_NOT_EXIST') throw e;
      if (!/^\d+$/.test(v))
        throw new KilnError('RESOURCE_DOES_NOT_EXIST', `--experiment: no experiment named '${v}'`);
      out.push(await kiln.experiments.get(v));
    }
  }
  return out;
}

async function listArtifactsOrNothing(kiln: KilnClient, runId: string): Promise<FileInfo[]> {
  try {
    return (await kiln.store.listArtifacts(runId)).files;
  } catch {
    // A server that cannot list artifacts should not hide the rest of the run.
    return [];
  }
}

/** `metrics.auc`, `metrics."val loss"`, `metrics.\`a b\`` named in a filter or order-by. */
function referencedKeys(text: string, entity: 'metrics' | 'params'): string[] {
  const re = new RegExp(`\\b${entity}\\.(?:"([^"]+)"|\`([^\`]+)\`|([\\w./:-]+))`, 'gi');
  const keys: string[] = [];
  for (const m of text.matchAll(re)) {
    const key = m[1] ?? m[2] ?? m[3];
    if (!keys.includes(key)) keys.push(key);
  }
  return keys;
}

function pickKeys(all: string[], first: string[], max: number): string[] {
  const rest = [...new Set(all)].filter((k) => !first.includes(k)).sort();
  return [...first, ...rest.slice(0, Math.max(0, max - first.length))];
}

function latestMetric(run: Run, key: string): number | undefined {
  return run.data.metrics.find((m) => m.key === key)?.value;
}

function paramOf(run: Run, key: string): string | undefined {
  return run.data.params.find((p) => p.key === key)?.value;
}

function runDuration(run: Run): string {
  const { start_time, end_time, status } = run.info;
  if (end_time) return formatDuration(end_time - start_time);
  return status === 'RUNNING' ? `${formatDuration(Date.now() - start_time)}…` : '';
}

function section(title: string): string {
  return `\n${title}\n`;
}

import fs from 'node:fs';
import cliProgress from 'cli-progress';
import type { Command } from 'commander';
import { KilnError } from '../errors.js';
import {
  attachLabels,
  checkDrift,
  type DriftReport,
  type MonitorContext,
  parseDriftOptions,
  parseFeedback,
  parseWindowRequest,
  type RawDriftRequest,
} from '../monitor/index.js';
import { openWorkspace } from '../workspace.js';
import { common, type ModelsOptions, print } from './models.js';
import { formatNumber, renderTable } from './table.js';
import { workspaceTarget } from './tracking-connection.js';

type MonitorOptions = ModelsOptions & { json?: boolean };

/** Runs `fn` on the local workspace's stores; a remote one is reached over /api/kiln/monitor. */
async function withMonitor<T>(
  opts: MonitorOptions,
  command: string,
  route: string,
  fn: (ctx: MonitorContext) => Promise<T>,
): Promise<T> {
  const workspace = await openWorkspace(workspaceTarget(opts));
  try {
    if (!workspace.store || !workspace.artifacts || !workspace.registry) {
      throw new KilnError(
        'INVALID_PARAMETER_VALUE',
        `--tracking-uri ${workspace.location}: kiln monitor ${command} needs the workspace itself (a folder, sqlite:// or postgres://); against a server use ${route}`,
      );
    }
    return await fn({ store: workspace.store, artifacts: workspace.artifacts, registry: workspace.registry });
  } finally {
    await workspace.close();
  }
}

/** A bar on stderr while a window's rows are read (stdout stays clean for --json). */
export function rowProgress(label: string, quiet: boolean) {
  if (quiet || !process.stderr.isTTY) return { onProgress: () => {}, stop: () => {} };
  const bar = new cliProgress.SingleBar(
    {
      format: `${label} [{bar}] {value}/{total} rows`,
      stream: process.stderr,
      hideCursor: true,
      clearOnComplete: true,
    },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  return {
    onProgress: (done: number, total: number) => {
      if (!started) {
        bar.start(total, 0);
        started = true;
      }
      bar.update(done);
    },
    stop: () => {
      if (started) bar.stop();
    },
  };
}

const flag = (o: string) => `--${o}`;

export function describeDrift(r: DriftReport): string {
  const lines = [
    `${r.model.uri} (version ${r.model.version}) against ${r.reference.dataset} (${r.reference.rows} rows)`,
    `window ${r.window.from} .. ${r.window.to}: ${r.window.requests} requests, ${r.window.rows} rows`,
    `dataset drift: ${r.dataset.drifted ? 'YES' : 'no'} (${r.dataset.driftedFeatures}/${r.dataset.testedFeatures} features drifted, share ${formatNumber(r.dataset.share)}, threshold ${r.dataset.shareThreshold}${r.thresholds === 'chunks' ? ', chunk thresholds' : ''})`,
    '',
    renderTable(r.features, [
      { header: 'FEATURE', value: (f) => f.column },
      { header: 'TEST', value: (f) => f.test ?? f.status },
      { header: 'SCORE', value: (f) => (f.score === undefined ? '' : formatNumber(f.score)) },
      { header: '±', value: (f) => (f.errorBound === undefined ? '' : formatNumber(f.errorBound)) },
      {
        header: 'THRESHOLD',
        value: (f) =>
          f.chunkBand
            ? `band ≤ ${formatNumber(f.chunkBand.upper)}`
            : f.threshold === undefined
              ? ''
              : String(f.threshold),
      },
      { header: 'DRIFT', value: (f) => (f.drifted ? 'DRIFT' : '') },
      { header: 'MISSING', value: (f) => formatNumber(f.quality.missingShare) },
      {
        header: 'OUT OF RANGE',
        value: (f) =>
          f.quality.outOfRangeShare === undefined ? '' : formatNumber(f.quality.outOfRangeShare),
      },
      {
        header: 'UNSEEN',
        value: (f) =>
          f.quality.unseenCategoryShare === undefined ? '' : formatNumber(f.quality.unseenCategoryShare),
      },
    ]).trimEnd(),
    '',
    r.prediction.status === 'tested'
      ? `prediction drift: ${r.prediction.drifted ? 'YES' : 'no'} (${r.prediction.test} ${formatNumber(r.prediction.score!)}, threshold ${r.prediction.threshold}; mean ${formatNumber(r.prediction.referenceMean!)} → ${formatNumber(r.prediction.currentMean!)}; reference: ${r.prediction.reference})`
      : `prediction drift: ${r.prediction.status} (${r.prediction.reason})`,
  ];
  return `${lines.join('\n')}\n`;
}

/**
 * `kiln monitor …` on the workspace's metadata store (where `kiln serve --prediction-store`
 * logs). Against a server, POST /api/kiln/monitor/feedback does the same.
 */
export function registerMonitorCommands(program: Command): void {
  const monitor = program
    .command('monitor')
    .description('prediction log, labels (drift, performance and alerts: see docs/monitoring.md)');

  common(
    monitor
      .command('feedback')
      .description('attach ground truth to logged predictions (CSV request_id,label or JSON lines)'),
  )
    .argument('<file>', 'CSV with a request_id,label header, or JSON lines {"request_id","label"}')
    .action(async (file: string, opts: ModelsOptions & { json?: boolean }) => {
      let text: string;
      try {
        text = fs.readFileSync(file, 'utf8');
      } catch (e) {
        throw new KilnError(
          'RESOURCE_DOES_NOT_EXIST',
          `${file}: cannot read (${(e as NodeJS.ErrnoException).code ?? e})`,
        );
      }
      // Parsed whole before anything is written: a bad line applies nothing.
      const feedback = parseFeedback(text, file);
      const workspace = await openWorkspace(workspaceTarget(opts));
      try {
        if (!workspace.store) {
          throw new KilnError(
            'INVALID_PARAMETER_VALUE',
            `--tracking-uri ${workspace.location}: kiln monitor feedback needs the metadata store itself (a folder, sqlite:// or postgres://); against a server use POST /api/kiln/monitor/feedback`,
          );
        }
        const summary = await attachLabels(workspace.store, feedback);
        print(
          opts,
          summary,
          () =>
            `labelled ${summary.labelled}, unchanged ${summary.unchanged}, unknown ${summary.unknown}${summary.unknown ? ` (e.g. ${summary.unknown_ids.slice(0, 5).join(', ')})` : ''}\n`,
        );
      } finally {
        await workspace.close();
      }
    });

  common(
    monitor
      .command('drift')
      .description("drift of a model version's logged inputs and predictions against its training profile"),
  )
    .requiredOption('--model <model>', 'NAME@ALIAS or NAME/VERSION')
    .option('--window <duration>', 'how far back from --end (7d, 24h, 30m)', '24h')
    .option('--end <time>', 'end of the window, ISO time (default now)')
    .option('--share <share>', 'dataset drift when at least this share of features drift', '0.5')
    .option(
      '--thresholds <kind>',
      "'test' (each test's threshold) or 'chunks' (NannyML: mean ± 3σ of reference chunks)",
      'test',
    )
    .option('--chunks <n>', 'time chunks of the window with --thresholds chunks', '10')
    .option('--test <spec>', 'a test per feature: amount=ks,origin=psi:0.2')
    .action(async (opts: MonitorOptions & RawDriftRequest & { model: string }) => {
      const windowRequest = parseWindowRequest(opts, flag);
      const options = parseDriftOptions(opts, flag);
      const progress = rowProgress('kiln monitor drift', Boolean(opts.json));
      let report: DriftReport;
      try {
        report = await withMonitor(opts, 'drift', 'GET /api/kiln/monitor/drift', (ctx) =>
          checkDrift(ctx, opts.model, { ...windowRequest, onProgress: progress.onProgress }, options),
        );
      } finally {
        progress.stop();
      }
      print(opts, report, () => describeDrift(report));
    });
}

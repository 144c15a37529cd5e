import fs from 'node:fs';
import path from 'node:path';
import cliProgress from 'cli-progress';
import type { Command } from 'commander';
import { KilnError } from '../errors.js';
import {
  ackAlert,
  attachLabels,
  buildMonitorReport,
  type CheckResult,
  checkAlerts,
  checkDrift,
  checkPerformance,
  type DriftReport,
  listAlerts,
  type MonitorContext,
  type PerformanceReport,
  parseDriftOptions,
  parseDuration,
  parseFeedback,
  parseWindowRequest,
  type RawDriftRequest,
  renderMonitorReportHtml,
  type StoredAlert,
  setAlertRules,
  silenceRule,
} from '../monitor/index.js';
import { openWorkspace } from '../workspace.js';
import { actorOf, common, type ModelsOptions, print } from './models.js';
import { formatNumber, formatTimestamp, renderTable } from './table.js';
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

function readText(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new KilnError(
      'RESOURCE_DOES_NOT_EXIST',
      `${file}: cannot read (${(e as NodeJS.ErrnoException).code ?? e})`,
    );
  }
}

export function describeAlerts(alerts: StoredAlert[]): string {
  return renderTable(
    alerts,
    [
      { header: 'ID', value: (a) => a.id },
      { header: 'MODEL', value: (a) => `${a.model}${a.alias ? `@${a.alias}` : ''} v${a.version}` },
      { header: 'RULE', value: (a) => a.rule },
      { header: 'KIND', value: (a) => a.kind },
      { header: 'STATUS', value: (a) => a.status },
      { header: 'FIRED', value: (a) => formatTimestamp(a.fired_time) },
      { header: 'RESOLVED', value: (a) => formatTimestamp(a.resolved_time) },
      { header: 'ACKED BY', value: (a) => a.acked_by ?? '' },
    ],
    { empty: 'no alerts' },
  );
}

function metricLine(m: Record<string, number> | undefined): string {
  if (!m) return '-';
  return Object.entries(m)
    .filter(([k]) => k !== 'rows' && k !== 'positives')
    .map(([k, v]) => `${k} ${formatNumber(v)}`)
    .join(', ');
}

export function describePerformance(r: PerformanceReport): string {
  const lines = [
    `${r.model.uri} (version ${r.model.version}), ${r.task}${r.threshold !== undefined ? `, threshold ${r.threshold}` : ''}`,
    `window ${r.window.from} .. ${r.window.to}: ${r.window.requests} requests, ${r.labels.labelled} labelled${r.labels.unparsable ? `, ${r.labels.unparsable} labels not a class` : ''}${r.labels.skippedMultiRow ? `, ${r.labels.skippedMultiRow} multi-row labelled requests skipped` : ''}`,
    `measured:  ${metricLine(r.measured)}`,
    ...(r.training ? [`training (${r.training.part}): ${metricLine(r.training.metrics)}`] : []),
    ...(r.change ? [`change:    ${metricLine(r.change)}`] : []),
    ...(r.estimated ? [`estimated (CBPE, ${r.estimated.rows} rows): ${metricLine(r.estimated)}`] : []),
    ...(r.calibration
      ? [
          `assumption: ${r.calibration.assumption}`,
          ...(r.calibration.referenceEce !== undefined
            ? [
                `reference calibration: ECE ${formatNumber(r.calibration.referenceEce)}, largest bin gap ${formatNumber(r.calibration.referenceMaxGap!)} over ${r.calibration.referenceRows} rows`,
              ]
            : []),
          ...(r.calibration.warning ? [`WARNING: ${r.calibration.warning}`] : []),
        ]
      : []),
    '',
    renderTable(
      r.timeline,
      [
        { header: 'FROM', value: (b) => b.from },
        { header: 'ROWS', value: (b) => b.rows },
        { header: 'LABELLED', value: (b) => b.labelled },
        { header: 'MEASURED', value: (b) => metricLine(b.measured) },
        { header: 'ESTIMATED', value: (b) => metricLine(b.estimated) },
      ],
      { empty: 'no buckets' },
    ).trimEnd(),
  ];
  return `${lines.join('\n')}\n`;
}

export function describeCheck(r: CheckResult): string {
  return `${r.model}${r.alias ? `@${r.alias}` : ''} (version ${r.version}) checked ${formatTimestamp(r.checked_time)}\n${renderTable(
    r.rules,
    [
      { header: 'RULE', value: (o) => o.rule },
      { header: 'KIND', value: (o) => o.kind },
      { header: 'CONDITION', value: (o) => o.condition },
      { header: 'ACTION', value: (o) => o.action },
      { header: 'VALUE', value: (o) => (o.value === undefined ? '' : formatNumber(o.value)) },
      { header: 'ALERT', value: (o) => (o.alert_id === undefined ? '' : String(o.alert_id)) },
    ],
  )}`;
}

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
      { header: 'DRIFT', value: (f) => (f.drifted ? 'DRIFT' : f.undecided ? 'undecided' : '') },
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
        const summary = await attachLabels(workspace.store, feedback, Date.now(), workspace.artifacts);
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

  common(
    monitor
      .command('performance')
      .description(
        'live performance of a model version: measured on labelled requests, estimated (CBPE) before labels',
      ),
  )
    .requiredOption('--model <model>', 'NAME@ALIAS or NAME/VERSION')
    .option('--window <duration>', 'how far back from --end (7d, 24h, 30m)', '24h')
    .option('--end <time>', 'end of the window, ISO time (default now)')
    .option('--buckets <n>', 'time buckets of the timeline', '12')
    .action(async (opts: MonitorOptions & RawDriftRequest & { model: string; buckets: string }) => {
      const windowRequest = parseWindowRequest(opts, flag);
      const buckets = Number(opts.buckets);
      if (!Number.isInteger(buckets) || buckets < 1 || buckets > 1000)
        throw new KilnError(
          'INVALID_PARAMETER_VALUE',
          `--buckets: expected a whole number from 1 to 1000, got '${opts.buckets.slice(0, 40)}'`,
        );
      const progress = rowProgress('kiln monitor performance', Boolean(opts.json));
      let report: PerformanceReport;
      try {
        report = await withMonitor(opts, 'performance', 'GET /api/kiln/monitor/performance', (ctx) =>
          checkPerformance(ctx, opts.model, { ...windowRequest, buckets, onProgress: progress.onProgress }),
        );
      } finally {
        progress.stop();
      }
      print(opts, report, () => describePerformance(report));
    });

  common(
    monitor
      .command('report')
      .description(
        'a self-contained HTML report (drift, histograms, performance, latency, alerts) and its JSON',
      ),
  )
    .requiredOption('--model <model>', 'NAME@ALIAS or NAME/VERSION')
    .option('--window <duration>', 'how far back from --end (7d, 24h, 30m)', '7d')
    .option('--end <time>', 'end of the window, ISO time (default now)')
    .option('--buckets <n>', 'time buckets of the charts', '24')
    .option('--share <share>', 'dataset drift when at least this share of features drift', '0.5')
    .option('--thresholds <kind>', "'test' or 'chunks' (NannyML)", 'test')
    .requiredOption('--out <file>', 'the HTML file; the JSON goes next to it (same name, .json)')
    .action(
      async (opts: MonitorOptions & RawDriftRequest & { model: string; buckets: string; out: string }) => {
        const windowRequest = parseWindowRequest(opts, flag);
        const options = parseDriftOptions(opts, flag);
        const buckets = Number(opts.buckets);
        if (!Number.isInteger(buckets) || buckets < 1 || buckets > 1000)
          throw new KilnError(
            'INVALID_PARAMETER_VALUE',
            `--buckets: expected a whole number from 1 to 1000, got '${opts.buckets.slice(0, 40)}'`,
          );
        const out = path.resolve(opts.out);
        if (!fs.existsSync(path.dirname(out)))
          throw new KilnError(
            'RESOURCE_DOES_NOT_EXIST',
            `--out ${opts.out}: folder ${path.dirname(out)} does not exist`,
          );
        const jsonOut = out.replace(/\.html?$/i, '') + '.json';
        const progress = rowProgress('kiln monitor report', Boolean(opts.json));
        let report: Awaited<ReturnType<typeof buildMonitorReport>>;
        try {
          report = await withMonitor(opts, 'report', 'GET /api/kiln/monitor/drift and /performance', (ctx) =>
            buildMonitorReport(
              ctx,
              opts.model,
              { ...windowRequest, buckets, onProgress: progress.onProgress },
              { ...options, ...(options.thresholds === 'chunks' ? { chunks: buckets } : {}) },
            ),
          );
        } finally {
          progress.stop();
        }
        fs.writeFileSync(out, renderMonitorReportHtml(report));
        fs.writeFileSync(jsonOut, `${JSON.stringify(report, null, 2)}\n`);
        print(
          opts,
          { html: out, json: jsonOut, drifted: report.drift.dataset.drifted, alerts: report.alerts.length },
          () => `wrote ${out} and ${jsonOut}\n${describeDrift(report.drift)}`,
        );
      },
    );

  common(
    monitor
      .command('check')
      .description(
        "evaluate a model's alert rules now: fire and resolve alerts (events alert.fired / alert.resolved)",
      ),
  )
    .argument('<model>', 'registered model name')
    .action(async (model: string, opts: MonitorOptions) => {
      const result = await withMonitor(opts, 'check', 'POST /api/kiln/monitor/check', (ctx) =>
        checkAlerts(ctx, model, Date.now(), actorOf(opts).user),
      );
      print(opts, result, () => describeCheck(result));
    });

  const alerts = monitor
    .command('alerts')
    .description('alert rules (YAML, per model), alerts, acknowledgements and silences');
  common(
    alerts
      .command('set')
      .description("replace a model's alert rules with a YAML file (see docs/monitoring.md)"),
  )
    .argument('<model>', 'registered model name')
    .argument('<file>', 'rules YAML')
    .action(async (model: string, file: string, opts: MonitorOptions) => {
      const text = readText(file);
      const set = await withMonitor(opts, 'alerts set', 'PUT /api/kiln/monitor/alerts/rules/{model}', (ctx) =>
        setAlertRules(ctx, model, text, file, actorOf(opts).user),
      );
      print(
        opts,
        set,
        () =>
          `${model}: ${set.rules.length} rule(s) watching ${set.version !== undefined ? `version ${set.version}` : `@${set.alias}`} over ${set.window}: ${set.rules.map((r) => r.name).join(', ')}\n`,
      );
    });
  common(alerts.command('ls').description('list alerts, newest first'))
    .argument('[model]', 'only this model')
    .option('--status <status>', 'firing or resolved')
    .option('--limit <n>', 'at most this many', '100')
    .action(async (model: string | undefined, opts: MonitorOptions & { status?: string; limit: string }) => {
      const limit = Number(opts.limit);
      const list = await withMonitor(opts, 'alerts ls', 'GET /api/kiln/monitor/alerts', (ctx) =>
        listAlerts(ctx, {
          ...(model ? { model } : {}),
          ...(opts.status ? { status: opts.status as 'firing' } : {}),
          limit,
        }),
      );
      print(opts, list, () => describeAlerts(list));
    });
  common(
    alerts.command('ack').description('acknowledge an alert (it stays firing until its condition clears)'),
  )
    .argument('<id>', 'alert id')
    .action(async (id: string, opts: MonitorOptions) => {
      if (!/^\d{1,15}$/.test(id))
        throw new KilnError(
          'INVALID_PARAMETER_VALUE',
          `alert id: expected a positive whole number, got '${id.slice(0, 40)}'`,
        );
      const alert = await withMonitor(opts, 'alerts ack', 'POST /api/kiln/monitor/alerts/{id}/ack', (ctx) =>
        ackAlert(ctx, Number(id), actorOf(opts).user),
      );
      print(
        opts,
        alert,
        () => `alert ${alert.id} (${alert.model} ${alert.rule}) acknowledged by ${alert.acked_by}\n`,
      );
    });
  common(alerts.command('silence').description('stop a rule from firing for a while'))
    .argument('<model>', 'registered model name')
    .argument('<rule>', 'rule name')
    .requiredOption('--for <duration>', 'how long (2h, 30m, 1d)')
    .action(async (model: string, rule: string, opts: MonitorOptions & { for: string }) => {
      const forMs = parseDuration(opts.for, '--for');
      const s = await withMonitor(opts, 'alerts silence', 'POST /api/kiln/monitor/alerts/silence', (ctx) =>
        silenceRule(ctx, model, rule, forMs, actorOf(opts).user),
      );
      print(
        opts,
        s,
        () => `${model} ${rule}: silenced until ${formatTimestamp(s.silenced_until)} by ${s.silenced_by}\n`,
      );
    });
}

import type { ColumnProfile } from '../data/index.js';
import { listAlerts, type StoredAlert } from './alerts.js';
import { loadMonitorWindow, type WindowRequest } from './drift-check.js';
import type { MonitorContext } from './model-reference.js';
import { type PerformanceReport, performanceReport } from './performance.js';
import { type DriftOptions, type DriftReport, driftReport } from './window-drift.js';
import type { WindowData } from './window-scan.js';

/**
 * `kiln monitor report`: one pass over the window gives the drift table, per-feature reference
 * vs current histograms (numeric: the reference profile's histogram edges, which the window's
 * profile shares; categorical: the reference's top categories and the rest), performance
 * measured and estimated over time, volume and latency over time, and the model's alerts in
 * the window. As JSON, and as one self-contained HTML page (inline SVG and CSS, no scripts, no
 * requests), so it can be attached to a ticket or an email.
 */
export interface FeatureHistogram {
  column: string;
  kind: 'numeric' | 'categorical';
  /** Bin labels: `[lo, hi)` for numbers, the category otherwise. */
  bins: string[];
  /** Shares of present values per bin (numeric: plus `below` / `above` the reference's range). */
  reference: number[];
  current: number[];
}

export interface OperationalBucket {
  from: string;
  to: string;
  requests: number;
  rows: number;
  latencyP50?: number;
  latencyP99?: number;
}

export interface MonitorReport {
  kind: 'kiln.monitor-report';
  version: 1;
  created: string;
  drift: DriftReport;
  performance?: PerformanceReport;
  performanceError?: string;
  histograms: FeatureHistogram[];
  operational: OperationalBucket[];
  alerts: StoredAlert[];
}

export async function buildMonitorReport(
  ctx: MonitorContext,
  target: string,
  w: WindowRequest,
  options: DriftOptions = {},
): Promise<MonitorReport> {
  const { reference, data } = await loadMonitorWindow(ctx, target, { ...w, buckets: w.buckets ?? 24 });
  const drift = driftReport(reference, data, options);
  let performance: PerformanceReport | undefined;
  let performanceError: string | undefined;
  try {
    performance = performanceReport(reference, data);
  } catch (e) {
    performanceError = (e as Error).message;
  }
  const alerts = (await listAlerts(ctx, { model: reference.model.name, limit: 1000 })).filter(
    (a) => a.fired_time < data.to && (a.resolved_time === undefined || a.resolved_time >= data.from),
  );
  const byName = new Map(reference.profile.columns.map((c) => [c.name, c]));
  return {
    kind: 'kiln.monitor-report',
    version: 1,
    created: new Date().toISOString(),
    drift,
    ...(performance ? { performance } : {}),
    ...(performanceError ? { performanceError } : {}),
    histograms: data.profile.columns.map((cur) => featureHistogram(byName.get(cur.name)!, cur)),
    operational: operational(data),
    alerts,
  };
}

function shares(counts: number[]): number[] {
  const total = counts.reduce((a, b) => a + b, 0);
  return counts.map((c) => (total > 0 ? c / total : 0));
}

export function featureHistogram(ref: ColumnProfile, cur: ColumnProfile, top = 12): FeatureHistogram {
  if (ref.kind === 'numeric' && cur.kind === 'numeric') {
    const edges = ref.histogram.edges;
    const bins = ['below'];
    for (let i = 0; i + 1 < edges.length; i++) bins.push(`[${fmt(edges[i]!)}, ${fmt(edges[i + 1]!)})`);
    bins.push('above');
    const side = (c: ColumnProfile & { kind: 'numeric' }) =>
      shares([c.histogram.underflow, ...c.histogram.counts, c.histogram.overflow]);
    return { column: ref.name, kind: 'numeric', bins, reference: side(ref), current: side(cur) };
  }
  const refCounts = ref.kind === 'categorical' ? ref.counts : {};
  const curCounts = cur.kind === 'categorical' ? cur.counts : {};
  const keys = Object.entries(refCounts)
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([k]) => k);
  const rest = (counts: Record<string, number>, other: number) =>
    Object.entries(counts).reduce((a, [k, c]) => a + (keys.includes(k) ? 0 : c), other);
  const refRow = [
    ...keys.map((k) => refCounts[k] ?? 0),
    rest(refCounts, ref.kind === 'categorical' ? ref.otherCount : 0),
  ];
  const curRow = [
    ...keys.map((k) => curCounts[k] ?? 0),
    rest(curCounts, cur.kind === 'categorical' ? cur.otherCount : 0),
  ];
  return {
    column: ref.name,
    kind: 'categorical',
    bins: [...keys, '(other / unseen)'],
    reference: shares(refRow),
    current: shares(curRow),
  };
}

function operational(data: WindowData): OperationalBucket[] {
  const per: number[][] = data.buckets.map(() => []);
  for (let i = 0; i < data.latencies.length; i++) per[data.latencyBucket[i]!]!.push(data.latencies[i]!);
  return data.buckets.map((b, i) => {
    const lat = Float64Array.from(per[i]!).sort();
    return {
      from: new Date(b.from).toISOString(),
      to: new Date(b.to).toISOString(),
      requests: b.requests,
      rows: b.rows,
      ...(lat.length ? { latencyP50: quantile(lat, 0.5), latencyP99: quantile(lat, 0.99) } : {}),
    };
  });
}

function quantile(sorted: Float64Array, q: number): number {
  const pos = q * (sorted.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.min(sorted.length - 1, lo + 1);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

function fmt(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  return a !== 0 && (a >= 1e6 || a < 1e-3) ? v.toExponential(2) : String(Number(v.toPrecision(4)));
}

// ---------------------------------------------------------------- HTML

function esc(s: unknown): string {
  return String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function histogramSvg(h: FeatureHistogram): string {
  const W = 420;
  const H = 140;
  const n = h.bins.length;
  const max = Math.max(1e-12, ...h.reference, ...h.current);
  const bw = (W - 20) / n;
  const bars: string[] = [];
  for (let i = 0; i < n; i++) {
    const x = 10 + i * bw;
    const r = (h.reference[i]! / max) * (H - 30);
    const c = (h.current[i]! / max) * (H - 30);
    bars.push(
      `<rect x="${(x + 1).toFixed(1)}" y="${(H - 20 - r).toFixed(1)}" width="${Math.max(1, bw / 2 - 1).toFixed(1)}" height="${r.toFixed(1)}" fill="#7a8da8"><title>${esc(h.bins[i])}: reference ${(h.reference[i]! * 100).toFixed(1)}%</title></rect>`,
      `<rect x="${(x + bw / 2).toFixed(1)}" y="${(H - 20 - c).toFixed(1)}" width="${Math.max(1, bw / 2 - 1).toFixed(1)}" height="${c.toFixed(1)}" fill="#e07b39"><title>${esc(h.bins[i])}: current ${(h.current[i]! * 100).toFixed(1)}%</title></rect>`,
    );
  }
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" role="img" aria-label="${esc(h.column)} histogram"><line x1="10" y1="${H - 20}" x2="${W - 10}" y2="${H - 20}" stroke="#999"/>${bars.join('')}<text x="10" y="${H - 5}" font-size="10">${esc(h.bins[0])}</text><text x="${W - 10}" y="${H - 5}" font-size="10" text-anchor="end">${esc(h.bins[n - 1])}</text></svg>`;
}

/** A line chart of named series over the buckets (missing values leave gaps). */
function lineSvg(
  series: { name: string; color: string; values: (number | undefined)[] }[],
  labels: string[],
): string {
  const W = 860;
  const H = 180;
  const all = series.flatMap((s) =>
    s.values.filter((v): v is number => v !== undefined && Number.isFinite(v)),
  );
  if (all.length === 0) return '<p class="muted">no data in this window</p>';
  let lo = Math.min(...all);
  let hi = Math.max(...all);
  if (lo === hi) [lo, hi] = [lo - 1, hi + 1];
  const n = labels.length;
  const x = (i: number) => 40 + (n > 1 ? (i * (W - 60)) / (n - 1) : (W - 60) / 2);
  const y = (v: number) => 10 + ((hi - v) / (hi - lo)) * (H - 40);
  const paths = series.map((s) => {
    let d = '';
    let pen = false;
    s.values.forEach((v, i) => {
      if (v === undefined || !Number.isFinite(v)) {
        pen = false;
        return;
      }
      d += `${pen ? 'L' : 'M'}${x(i).toFixed(1)},${y(v).toFixed(1)}`;
      pen = true;
    });
    const dots = s.values
      .map((v, i) =>
        v === undefined || !Number.isFinite(v)
          ? ''
          : `<circle cx="${x(i).toFixed(1)}" cy="${y(v).toFixed(1)}" r="2.5" fill="${s.color}"><title>${esc(s.name)} ${esc(labels[i])}: ${fmt(v)}</title></circle>`,
      )
      .join('');
    return `<path d="${d}" fill="none" stroke="${s.color}" stroke-width="1.5"/>${dots}`;
  });
  const legend = series
    .map(
      (s, i) =>
        `<text x="${50 + i * 170}" y="${H - 5}" font-size="11" fill="${s.color}">■ ${esc(s.name)}</text>`,
    )
    .join('');
  const label = esc(series.map((s) => s.name).join(', '));
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" role="img" aria-label="${label}"><text x="2" y="14" font-size="10">${fmt(hi)}</text><text x="2" y="${H - 30}" font-size="10">${fmt(lo)}</text><line x1="40" y1="${H - 30}" x2="${W - 20}" y2="${H - 30}" stroke="#ccc"/>${paths.join('')}${legend}</svg>`;
}

export function renderMonitorReportHtml(r: MonitorReport): string {
  const d = r.drift;
  const rows = d.features
    .map(
      (f) =>
        `<tr class="${f.drifted ? 'drift' : ''}"><td>${esc(f.column)}</td><td>${esc(f.test ?? f.status)}</td><td>${f.score === undefined ? '' : fmt(f.score)}${f.errorBound !== undefined ? ` ± ${fmt(f.errorBound)}` : ''}</td><td>${f.chunkBand ? `≤ ${fmt(f.chunkBand.upper)} (chunks)` : f.threshold === undefined ? '' : fmt(f.threshold)}</td><td>${f.drifted ? 'DRIFT' : ''}</td><td>${fmt(f.quality.missingShare)}</td><td>${f.quality.outOfRangeShare === undefined ? '' : fmt(f.quality.outOfRangeShare)}</td><td>${f.quality.unseenCategoryShare === undefined ? '' : fmt(f.quality.unseenCategoryShare)}</td></tr>`,
    )
    .join('');
  const hist = r.histograms
    .map(
      (h) =>
        `<figure><figcaption>${esc(h.column)} <span class="muted">(${h.kind})</span></figcaption>${histogramSvg(h)}</figure>`,
    )
    .join('');
  const p = r.performance;
  const labels = r.operational.map((b) => b.from.slice(5, 16).replace('T', ' '));
  const perfMetric = p?.task === 'regression' ? 'rmse' : 'auc';
  const perfChart = p
    ? lineSvg(
        [
          {
            name: `measured ${perfMetric}`,
            color: '#1f77b4',
            values: p.timeline.map((b) => b.measured?.[perfMetric]),
          },
          ...(p.task === 'binary'
            ? [
                {
                  name: `estimated ${perfMetric} (CBPE)`,
                  color: '#e07b39',
                  values: p.timeline.map((b) => b.estimated?.[perfMetric]),
                },
              ]
            : []),
          ...(p.training?.metrics[perfMetric] !== undefined
            ? [
                {
                  name: `training ${perfMetric}`,
                  color: '#999',
                  values: p.timeline.map(() => p.training!.metrics[perfMetric]),
                },
              ]
            : []),
        ],
        labels,
      )
    : `<p class="muted">${esc(r.performanceError ?? 'no performance')}</p>`;
  const metricRow = (m: Record<string, number> | undefined) =>
    m
      ? Object.entries(m)
          .filter(([k]) => k !== 'rows' && k !== 'positives')
          .map(([k, v]) => `${esc(k)} ${fmt(v)}`)
          .join(', ')
      : '—';
  const alertRows = r.alerts
    .map(
      (a) =>
        `<tr class="${a.status === 'firing' ? 'drift' : ''}"><td>${a.id}</td><td>${esc(a.rule)}</td><td>${esc(a.kind)}</td><td>${esc(a.status)}</td><td>${new Date(a.fired_time).toISOString()}</td><td>${a.resolved_time ? new Date(a.resolved_time).toISOString() : ''}</td><td>${esc(a.acked_by ?? '')}</td></tr>`,
    )
    .join('');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>kiln monitor report: ${esc(d.model.uri)}</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;max-width:1200px}
h1{font-size:20px}h2{font-size:16px;margin-top:28px;border-bottom:1px solid #ddd}
table{border-collapse:collapse}td,th{padding:3px 8px;border-bottom:1px solid #eee;text-align:left}
tr.drift td{background:#fde8dc}.muted{color:#888}figure{display:inline-block;margin:8px 16px 8px 0}
figcaption{font-weight:600}.legend span{display:inline-block;width:10px;height:10px;margin:0 4px 0 12px}
</style></head><body>
<h1>${esc(d.model.uri)} <span class="muted">version ${esc(d.model.version)}</span></h1>
<p>Window ${esc(d.window.from)} .. ${esc(d.window.to)}: ${d.window.requests} requests, ${d.window.rows} rows. Reference: training profile of ${esc(d.reference.dataset)} (${d.reference.rows} rows). Created ${esc(r.created)}.</p>
<h2>Drift</h2>
<p><b>Dataset drift: ${d.dataset.drifted ? 'YES' : 'no'}</b> — ${d.dataset.driftedFeatures} of ${d.dataset.testedFeatures} features drifted (share ${fmt(d.dataset.share)}, threshold ${d.dataset.shareThreshold}). Prediction drift: ${d.prediction.status === 'tested' ? `${d.prediction.drifted ? 'YES' : 'no'} (${esc(d.prediction.test)} ${fmt(d.prediction.score!)}; mean ${fmt(d.prediction.referenceMean!)} → ${fmt(d.prediction.currentMean!)})` : esc(d.prediction.status)}.</p>
<table><tr><th>feature</th><th>test</th><th>score</th><th>threshold</th><th>drift</th><th>missing</th><th>out of range</th><th>unseen</th></tr>${rows}</table>
<h2>Reference vs current</h2>
<p class="legend"><span style="background:#7a8da8"></span>reference (training profile)<span style="background:#e07b39"></span>current window</p>
${hist}
<h2>Performance</h2>
${p ? `<p>Measured (${p.labels.labelled} labelled): ${metricRow(p.measured)}<br>Training (${esc(p.training?.part ?? '—')}): ${metricRow(p.training?.metrics)}<br>${p.estimated ? `Estimated (CBPE, ${p.estimated.rows} rows): ${metricRow(p.estimated)}<br><span class="muted">${esc(p.calibration?.assumption ?? '')}${p.calibration?.referenceEce !== undefined ? `; reference ECE ${fmt(p.calibration.referenceEce)}` : ''}${p.calibration?.warning ? `; WARNING: ${esc(p.calibration.warning)}` : ''}</span>` : ''}</p>` : ''}
${perfChart}
<h2>Volume and latency</h2>
${lineSvg([{ name: 'requests', color: '#2ca02c', values: r.operational.map((b) => b.requests) }], labels)}
${lineSvg(
  [
    { name: 'latency p50 (ms)', color: '#1f77b4', values: r.operational.map((b) => b.latencyP50) },
    { name: 'latency p99 (ms)', color: '#d62728', values: r.operational.map((b) => b.latencyP99) },
  ],
  labels,
)}
<h2>Alerts</h2>
${r.alerts.length ? `<table><tr><th>id</th><th>rule</th><th>kind</th><th>status</th><th>fired</th><th>resolved</th><th>acked by</th></tr>${alertRows}</table>` : '<p class="muted">no alerts in this window</p>'}
</body></html>
`;
}

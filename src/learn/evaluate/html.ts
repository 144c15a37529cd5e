import type { EvaluationReport } from './report.js';

/**
 * Renders an evaluation report as one self-contained HTML page: inline CSS and inline SVG
 * plots, no scripts, fonts or network requests, so it opens from disk, in a mail attachment
 * or as a stored run artifact.
 */

function esc(s: unknown): string {
  return String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function fmt(v: number | undefined, digits = 4): string {
  if (v === undefined || Number.isNaN(v)) return '–';
  if (!Number.isFinite(v)) return v > 0 ? '∞' : '−∞';
  if (Number.isInteger(v) && Math.abs(v) < 1e9) return v.toLocaleString('en-US');
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-3 || a >= 1e6)) return v.toExponential(2);
  return v.toFixed(digits);
}

interface Series {
  x: number[];
  y: number[];
  color: string;
  label?: string;
  dashed?: boolean;
  points?: boolean;
  width?: number;
}

interface PlotSpec {
  title: string;
  xLabel: string;
  yLabel: string;
  series: Series[];
  xDomain?: [number, number];
  yDomain?: [number, number];
  note?: string;
}

const W = 340;
const H = 300;
const M = { left: 52, right: 14, top: 30, bottom: 44 };

/** Short tick labels (32k, 1.5M) so wide numbers do not run into the axis title. */
function tickLabel(v: number): string {
  const a = Math.abs(v);
  if (a >= 1e6) return `${Number((v / 1e6).toPrecision(3))}M`;
  if (a >= 1e4) return `${Number((v / 1e3).toPrecision(3))}k`;
  return fmt(v, 2);
}

function ticks(lo: number, hi: number, count = 5): number[] {
  const span = hi - lo || 1;
  const raw = span / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => span / s <= count) ?? raw;
  const out: number[] = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step)
    out.push(Number(t.toPrecision(10)));
  return out;
}

function extent(values: number[], pad = 0): [number, number] {
  let lo = Number.POSITIVE_INFINITY;
  let hi = Number.NEGATIVE_INFINITY;
  for (const v of values) {
    if (!Number.isFinite(v)) continue;
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  if (!Number.isFinite(lo)) return [0, 1];
  if (lo === hi) return [lo - 1, hi + 1];
  const p = (hi - lo) * pad;
  return [lo - p, hi + p];
}

function linePlot(spec: PlotSpec): string {
  const xd =
    spec.xDomain ??
    extent(
      spec.series.flatMap((s) => s.x),
      0.03,
    );
  const yd =
    spec.yDomain ??
    extent(
      spec.series.flatMap((s) => s.y),
      0.05,
    );
  const pw = W - M.left - M.right;
  const ph = H - M.top - M.bottom;
  const sx = (v: number) => M.left + ((v - xd[0]) / (xd[1] - xd[0])) * pw;
  const sy = (v: number) => M.top + ph - ((v - yd[0]) / (yd[1] - yd[0])) * ph;
  const parts: string[] = [];
  parts.push(`<text x="${M.left}" y="18" class="pt">${esc(spec.title)}</text>`);
  for (const t of ticks(xd[0], xd[1])) {
    parts.push(`<line x1="${sx(t)}" x2="${sx(t)}" y1="${M.top}" y2="${M.top + ph}" class="grid"/>`);
    parts.push(
      `<text x="${sx(t)}" y="${M.top + ph + 15}" class="tick" text-anchor="middle">${esc(tickLabel(t))}</text>`,
    );
  }
  for (const t of ticks(yd[0], yd[1])) {
    parts.push(`<line x1="${M.left}" x2="${M.left + pw}" y1="${sy(t)}" y2="${sy(t)}" class="grid"/>`);
    parts.push(
      `<text x="${M.left - 6}" y="${sy(t) + 4}" class="tick" text-anchor="end">${esc(tickLabel(t))}</text>`,
    );
  }
  parts.push(`<rect x="${M.left}" y="${M.top}" width="${pw}" height="${ph}" class="frame"/>`);
  parts.push(
    `<text x="${M.left + pw / 2}" y="${H - 8}" class="al" text-anchor="middle">${esc(spec.xLabel)}</text>`,
  );
  parts.push(
    `<text x="14" y="${M.top + ph / 2}" class="al" text-anchor="middle" transform="rotate(-90 14 ${M.top + ph / 2})">${esc(spec.yLabel)}</text>`,
  );
  const clip = `clip${Math.random().toString(36).slice(2, 8)}`;
  parts.push(
    `<clipPath id="${clip}"><rect x="${M.left}" y="${M.top}" width="${pw}" height="${ph}"/></clipPath>`,
  );
  const legend: string[] = [];
  for (const s of spec.series) {
    const pts = s.x.map((x, i) => `${sx(x).toFixed(1)},${sy(s.y[i]).toFixed(1)}`);
    if (s.points) {
      for (const p of pts) {
        const [cx, cy] = p.split(',');
        parts.push(
          `<circle cx="${cx}" cy="${cy}" r="2.6" fill="${s.color}" fill-opacity="0.55" clip-path="url(#${clip})"/>`,
        );
      }
    } else if (pts.length) {
      parts.push(
        `<polyline points="${pts.join(' ')}" fill="none" stroke="${s.color}" stroke-width="${s.width ?? 2}"${s.dashed ? ' stroke-dasharray="5 4"' : ''} clip-path="url(#${clip})"/>`,
      );
    }
    if (s.label) legend.push(`<span><i style="background:${s.color}"></i>${esc(s.label)}</span>`);
  }
  return `<figure><svg viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${esc(spec.title)}">${parts.join('')}</svg>${
    legend.length ? `<figcaption class="legend">${legend.join('')}</figcaption>` : ''
  }${spec.note ? `<figcaption>${esc(spec.note)}</figcaption>` : ''}</figure>`;
}

function barPlot(title: string, items: { label: string; value: number }[], note: string): string {
  const shown = items.slice(0, 15);
  const rowH = 18;
  const h = 40 + shown.length * rowH + 10;
  const left = 130;
  const pw = W - left - 50;
  const max = Math.max(...shown.map((i) => Math.abs(i.value)), 1e-12);
  const bars = shown
    .map((it, k) => {
      const y = 34 + k * rowH;
      const w = (Math.abs(it.value) / max) * pw;
      const color = it.value >= 0 ? '#2f6fb0' : '#c2553a';
      return `<text x="${left - 6}" y="${y + 12}" class="tick" text-anchor="end">${esc(it.label.length > 20 ? `${it.label.slice(0, 19)}…` : it.label)}</text><rect x="${left}" y="${y + 2}" width="${w.toFixed(1)}" height="${rowH - 5}" fill="${color}" rx="2"/><text x="${left + w + 4}" y="${y + 12}" class="tick">${esc(fmt(it.value, 3))}</text>`;
    })
    .join('');
  return `<figure><svg viewBox="0 0 ${W} ${h}" width="${W}" height="${h}" role="img" aria-label="${esc(title)}"><text x="10" y="18" class="pt">${esc(title)}</text>${bars}</svg><figcaption>${esc(note)}</figcaption></figure>`;
}

function confusionTable(cm: NonNullable<EvaluationReport['confusionMatrix']>): string {
  const max = Math.max(...cm.matrix.flat(), 1);
  const head = cm.labels.map((l) => `<th>predicted ${esc(l)}</th>`).join('');
  const rows = cm.matrix
    .map(
      (row, i) =>
        `<tr><th>actual ${esc(cm.labels[i])}</th>${row
          .map((v, j) => {
            const a = 0.08 + 0.6 * (v / max);
            const color = i === j ? `rgba(47,111,176,${a})` : `rgba(194,85,58,${a})`;
            return `<td style="background:${color}">${esc(fmt(v))}</td>`;
          })
          .join('')}</tr>`,
    )
    .join('');
  const caption = cm.threshold !== undefined ? ` at threshold ${esc(fmt(cm.threshold, 3))}` : '';
  return `<div class="card"><h3>Confusion matrix${caption}</h3><table class="cm"><tr><th></th>${head}</tr>${rows}</table></div>`;
}

const METRIC_NAMES: Record<string, string> = {
  auc: 'ROC AUC',
  auc_ovr: 'ROC AUC (one-vs-rest)',
  average_precision: 'Average precision',
  logloss: 'Log loss',
  brier: 'Brier score',
  accuracy: 'Accuracy',
  precision: 'Precision',
  recall: 'Recall',
  f1: 'F1',
  f1_macro: 'F1 (macro)',
  f1_weighted: 'F1 (weighted)',
  rmse: 'RMSE',
  mae: 'MAE',
  r2: 'R²',
  mape: 'MAPE',
  error: 'Error rate',
  mse: 'MSE',
  pr_auc: 'PR AUC',
  cost_per_1k: 'Cost per 1,000 predictions',
};

/** Metrics of the same model on other data (a training run's train / valid / test parts). */
export interface ReportPart {
  name: string;
  nRows: number;
  metrics: Record<string, number>;
}

export interface RenderReportOptions {
  /**
   * Shown as one "metrics by data part" table above the plots, so a page about the test part
   * still shows how train and validation compare (over- or under-fitting at a glance).
   */
  parts?: readonly ReportPart[];
}

function partsTable(parts: readonly ReportPart[]): string {
  const names = [...new Set(parts.flatMap((p) => Object.keys(p.metrics)))];
  const head = parts.map((p) => `<th>${esc(p.name)} (${esc(fmt(p.nRows))} rows)</th>`).join('');
  const rows = names
    .map(
      (k) =>
        `<tr><th>${esc(METRIC_NAMES[k] ?? k)}</th>${parts.map((p) => `<td>${esc(fmt(p.metrics[k]))}</td>`).join('')}</tr>`,
    )
    .join('');
  return `<div class="card parts"><h3>Metrics by data part</h3><table><tr><th>metric</th>${head}</tr>${rows}</table></div>`;
}

export function renderReportHtml(report: EvaluationReport, options: RenderReportOptions = {}): string {
  // Hard-label metrics depend on the threshold; say which one.
  const at = report.confusionMatrix?.threshold;
  const thresholded = new Set(['accuracy', 'precision', 'recall', 'f1']);
  const metricCards = Object.entries(report.metrics)
    .map(([k, v]) => {
      const name = `${METRIC_NAMES[k] ?? k}${at !== undefined && thresholded.has(k) ? ` @ ${fmt(at, 3)}` : ''}`;
      return `<div class="metric"><div class="mv">${esc(fmt(v))}</div><div class="mk">${esc(name)}</div></div>`;
    })
    .join('');
  const plots: string[] = [];
  const { roc, pr, calibration, predictedVsActual } = report.curves;
  const blue = '#2f6fb0';
  const grey = '#9aa3ad';
  if (roc) {
    plots.push(
      linePlot({
        title: `ROC curve (AUC ${fmt(report.metrics.auc)})`,
        xLabel: 'False positive rate',
        yLabel: 'True positive rate',
        xDomain: [0, 1],
        yDomain: [0, 1],
        series: [
          { x: [0, 1], y: [0, 1], color: grey, dashed: true, width: 1, label: 'chance' },
          { x: roc.fpr, y: roc.tpr, color: blue, label: 'model' },
        ],
      }),
    );
  }
  if (pr) {
    const base = report.data.positiveRate ?? 0;
    plots.push(
      linePlot({
        title: `Precision–recall (AP ${fmt(report.metrics.average_precision)})`,
        xLabel: 'Recall',
        yLabel: 'Precision',
        xDomain: [0, 1],
        yDomain: [0, 1],
        series: [
          {
            x: [0, 1],
            y: [base, base],
            color: grey,
            dashed: true,
            width: 1,
            label: `base rate ${fmt(base, 3)}`,
          },
          { x: pr.recall, y: pr.precision, color: '#7a4fb0', label: 'model' },
        ],
      }),
    );
  }
  if (calibration) {
    plots.push(
      linePlot({
        title: 'Calibration (10 uniform bins)',
        xLabel: 'Mean predicted probability',
        yLabel: 'Observed positive rate',
        xDomain: [0, 1],
        yDomain: [0, 1],
        series: [
          { x: [0, 1], y: [0, 1], color: grey, dashed: true, width: 1, label: 'perfectly calibrated' },
          { x: calibration.probPred, y: calibration.probTrue, color: '#1f8a70', label: 'model' },
          { x: calibration.probPred, y: calibration.probTrue, color: '#1f8a70', points: true },
        ],
      }),
    );
  }
  if (report.thresholdTable && report.costs) {
    // The exact minimum rarely sits on the grid: put it on the line so the marker touches it.
    const best = report.bestThreshold;
    const t = [...report.thresholdTable];
    if (best && !t.some((r) => r.threshold === best.threshold)) {
      t.push(best);
      t.sort((a, b) => a.threshold - b.threshold);
    }
    plots.push(
      linePlot({
        title: 'Cost by threshold',
        xLabel: 'Threshold (flag score ≥ threshold)',
        yLabel: 'Total cost',
        series: [
          { x: t.map((r) => r.threshold), y: t.map((r) => r.cost), color: '#c2553a', label: 'total cost' },
          ...(best
            ? [{ x: [best.threshold], y: [best.cost], color: '#111', points: true, label: 'lowest cost' }]
            : []),
        ],
        note: `cost = ${fmt(report.costs.falsePositive)} × false positives + ${fmt(report.costs.falseNegative)} × false negatives${
          best ? `; lowest at threshold ${fmt(best.threshold, 4)} (cost ${fmt(best.cost, 1)})` : ''
        }`,
      }),
    );
  }
  if (predictedVsActual) {
    const all = [...predictedVsActual.actual, ...predictedVsActual.predicted];
    const d = extent(all, 0.03);
    plots.push(
      linePlot({
        title: 'Predicted vs actual',
        xLabel: 'Actual',
        yLabel: 'Predicted',
        xDomain: d,
        yDomain: d,
        series: [
          { x: d, y: d, color: grey, dashed: true, width: 1, label: 'y = x' },
          { x: predictedVsActual.actual, y: predictedVsActual.predicted, color: blue, points: true },
        ],
      }),
    );
  }
  if (report.featureImportance) {
    plots.push(
      barPlot(
        'Feature importance',
        report.featureImportance.values.map((v) => ({ label: v.feature, value: v.importance })),
        `kind: ${report.featureImportance.kind}${report.featureImportance.values.length > 15 ? ' (top 15)' : ''}`,
      ),
    );
  }
  // The cost-minimising threshold rarely falls on the grid: show it in place, highlighted.
  const tableRows = [...(report.thresholdTable ?? [])];
  if (report.bestThreshold && !tableRows.some((r) => r.threshold === report.bestThreshold!.threshold)) {
    tableRows.push(report.bestThreshold);
    tableRows.sort((a, b) => a.threshold - b.threshold);
  }
  const thresholdRows = tableRows
    .map((r) => {
      const isBest = report.bestThreshold && r.threshold === report.bestThreshold.threshold;
      return `<tr${isBest ? ' class="best"' : ''}><td>${fmt(r.threshold, 3)}</td><td>${fmt(r.precision, 3)}</td><td>${fmt(r.recall, 3)}</td><td>${fmt(r.f1, 3)}</td><td>${fmt(r.fpr, 3)}</td><td>${fmt(r.tp)}</td><td>${fmt(r.fp)}</td><td>${fmt(r.fn)}</td><td>${fmt(r.tn)}</td><td>${fmt(r.cost, 1)}</td></tr>`;
    })
    .join('');
  const best = report.bestThreshold;
  const thresholdSection = report.thresholdTable
    ? `<div class="card wide"><h3>Threshold table</h3>${
        best
          ? `<p>Lowest total cost: flag rows with score ≥ <b>${fmt(best.threshold, 4)}</b> — precision ${fmt(best.precision, 3)}, recall ${fmt(best.recall, 3)}, cost ${fmt(best.cost, 1)}.</p>`
          : ''
      }${
        report.cost
          ? `<p>At threshold ${fmt(report.cost.threshold, 3)}: ${fmt(report.cost.falsePositives)} false positives, ${fmt(report.cost.falseNegatives)} false negatives, cost ${fmt(report.cost.total, 1)} (${fmt(report.cost.per1k, 2)} per 1,000 predictions).</p>`
          : ''
      }<table class="tt"><tr><th>threshold</th><th>precision</th><th>recall</th><th>F1</th><th>FPR</th><th>TP</th><th>FP</th><th>FN</th><th>TN</th><th>cost</th></tr>${thresholdRows}</table></div>`
    : '';
  const subtitle = [
    `learner <b>${esc(report.model.learner)}</b>${report.model.estimator ? ` (<b>${esc(report.model.estimator)}</b> after preprocessing)` : ''}`,
    `task <b>${esc(report.model.task)}</b>`,
    `${fmt(report.data.nRows)} rows`,
    report.data.positiveRate !== undefined ? `positive rate ${fmt(report.data.positiveRate, 3)}` : '',
    `${report.model.featureNames.length} features`,
  ]
    .filter(Boolean)
    .join(' · ');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(report.title)} — kiln evaluation</title>
<style>
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:#1d2733;background:#f5f7fa;margin:0;padding:24px 32px}
h1{font-size:22px;margin:0 0 4px}h3{font-size:14px;margin:0 0 8px;color:#334}
.sub{color:#5a6572;margin-bottom:18px}.metrics{display:flex;flex-wrap:wrap;gap:10px;margin-bottom:18px}
.metric{background:#fff;border:1px solid #dde3ea;border-radius:8px;padding:10px 14px;min-width:110px}
.mv{font-size:20px;font-weight:600;font-variant-numeric:tabular-nums}.mk{color:#5a6572;font-size:12px}
.plots{display:flex;flex-wrap:wrap;gap:14px;margin-bottom:18px}
figure{margin:0;background:#fff;border:1px solid #dde3ea;border-radius:8px;padding:8px}
figcaption{font-size:12px;color:#5a6572;max-width:${W}px;padding:0 4px 2px}
.legend span{margin-right:12px;white-space:nowrap}.legend i{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:4px;vertical-align:-1px}
svg .pt{font-size:13px;font-weight:600;fill:#1d2733}svg .tick{font-size:10.5px;fill:#5a6572}svg .al{font-size:11.5px;fill:#334}
svg .grid{stroke:#edf0f4}svg .frame{fill:none;stroke:#c9d1da}
.row{display:flex;flex-wrap:wrap;gap:14px;align-items:flex-start}
.card{background:#fff;border:1px solid #dde3ea;border-radius:8px;padding:12px 14px}.wide{flex:1;min-width:560px}
table{border-collapse:collapse;font-variant-numeric:tabular-nums}td,th{padding:4px 10px;text-align:right;border-bottom:1px solid #edf0f4}
th{font-weight:600;color:#334}.cm td{min-width:70px;text-align:center;font-weight:600}.tt tr.best td{background:#fff4d6;font-weight:600}.parts{margin-bottom:18px}.parts th:first-child{text-align:left}
footer{margin-top:18px;color:#8a94a0;font-size:12px}
</style></head><body>
<h1>${esc(report.title)}</h1>
<div class="sub">${subtitle}</div>
<div class="metrics">${metricCards}</div>
${options.parts && options.parts.length > 0 ? `<div class="row">${partsTable(options.parts)}</div>` : ''}
<div class="plots">${plots.join('\n')}</div>
<div class="row">${report.confusionMatrix ? confusionTable(report.confusionMatrix) : ''}${thresholdSection}</div>
<footer>kiln evaluation report · generated ${esc(report.createdAt)}</footer>
</body></html>
`;
}

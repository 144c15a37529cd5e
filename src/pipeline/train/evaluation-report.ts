import {
  calibrationCurve,
  confusionMatrix,
  getMetric,
  prCurve,
  predictedClasses,
  rocCurve,
  type Task,
} from '../../learn/index.js';
import type { CostSpec } from './spec.js';

/**
 * The evaluation report a training run stores (evaluation/report.json + report.html): metrics
 * per part, and for binary tasks the ROC / PR / calibration curves and the confusion matrix at
 * the cost model's threshold. Curves are thinned to at most CURVE_POINTS points so the report
 * stays small whatever the row count.
 *
 * Written here because learn/ has no evaluation report yet; it only uses learn/metrics.
 */
const CURVE_POINTS = 200;

export interface PartEvaluation {
  rows: number;
  metrics: Record<string, number>;
  roc?: { fpr: number[]; tpr: number[] };
  pr?: { precision: number[]; recall: number[] };
  calibration?: { probPred: number[]; probTrue: number[]; count: number[] };
  confusion?: { threshold: number; labels: string[]; matrix: number[][] };
  cost?: { perRow: number; per1k: number; falsePositives: number; falseNegatives: number };
}

export interface EvaluationReport {
  task: Task;
  classes?: string[];
  mainMetric: string;
  parts: Record<string, PartEvaluation>;
}

/** Metric values on one part, with keys as the run logs them (`valid.auc`). */
export function evaluatePart(
  task: Task,
  metricNames: readonly string[],
  y: Float64Array,
  pred: Float64Array,
  classes: string[] | undefined,
  cost: CostSpec | undefined,
): PartEvaluation {
  const metrics: Record<string, number> = {};
  for (const name of metricNames) {
    const spec = getMetric(name);
    metrics[spec.name] = spec.fn(y, pred);
  }
  const part: PartEvaluation = { rows: y.length, metrics };
  if (task === 'binary' && y.length > 0) {
    const threshold = cost?.threshold ?? 0.5;
    const hasBoth = y.some((v) => v === 1) && y.some((v) => v === 0);
    if (hasBoth) {
      const roc = rocCurve(y, pred);
      const keepRoc = thinIndex(roc.fpr.length);
      part.roc = { fpr: keepRoc.map((i) => roc.fpr[i]!), tpr: keepRoc.map((i) => roc.tpr[i]!) };
      const pr = prCurve(y, pred);
      const keepPr = thinIndex(pr.precision.length);
      part.pr = { precision: keepPr.map((i) => pr.precision[i]!), recall: keepPr.map((i) => pr.recall[i]!) };
      const cal = calibrationCurve(y, pred, { nBins: 10 });
      part.calibration = {
        probPred: Array.from(cal.probPred),
        probTrue: Array.from(cal.probTrue),
        count: Array.from(cal.count),
      };
    }
    const hard = predictedClasses(pred, y.length, threshold);
    const cm = confusionMatrix(y, hard, { labels: [0, 1] });
    part.confusion = { threshold, labels: classes ?? ['0', '1'], matrix: cm.matrix };
    if (cost) {
      const fp = cm.matrix[0]![1]!;
      const fn = cm.matrix[1]![0]!;
      const perRow = (fp * cost.false_positive + fn * cost.false_negative) / y.length;
      part.cost = {
        perRow,
        per1k: perRow * 1000 + cost.per_1k_predictions,
        falsePositives: fp,
        falseNegatives: fn,
      };
      metrics.cost_per_1k = part.cost.per1k;
    }
  }
  return part;
}

function thinIndex(n: number): number[] {
  if (n <= CURVE_POINTS) return Array.from({ length: n }, (_, i) => i);
  const out: number[] = [];
  for (let k = 0; k < CURVE_POINTS; k++) out.push(Math.round((k * (n - 1)) / (CURVE_POINTS - 1)));
  return out;
}

const escapeHtml = (s: string) =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

function polyline(xs: number[], ys: number[], colour: string): string {
  const pts = xs.map((x, i) => `${(40 + x * 240).toFixed(1)},${(260 - ys[i]! * 240).toFixed(1)}`).join(' ');
  return `<polyline fill="none" stroke="${colour}" stroke-width="1.5" points="${pts}"/>`;
}

function plot(title: string, xLabel: string, yLabel: string, lines: string[], diagonal: boolean): string {
  return `<figure><figcaption>${escapeHtml(title)}</figcaption><svg width="300" height="290" viewBox="0 0 300 290" role="img">
<rect x="40" y="20" width="240" height="240" fill="none" stroke="#888"/>
${diagonal ? '<line x1="40" y1="260" x2="280" y2="20" stroke="#ccc" stroke-dasharray="4"/>' : ''}
${lines.join('\n')}
<text x="160" y="285" text-anchor="middle" font-size="11">${escapeHtml(xLabel)}</text>
<text x="12" y="140" text-anchor="middle" font-size="11" transform="rotate(-90 12 140)">${escapeHtml(yLabel)}</text>
</svg></figure>`;
}

const COLOURS: Record<string, string> = { train: '#999', valid: '#1f77b4', test: '#d62728' };

/** A self-contained HTML page (inline SVG, no scripts) for the report. */
export function renderReportHtml(report: EvaluationReport, title: string): string {
  const parts = Object.entries(report.parts);
  const metricNames = [...new Set(parts.flatMap(([, p]) => Object.keys(p.metrics)))];
  const rows = metricNames
    .map(
      (m) =>
        `<tr><th>${escapeHtml(m)}</th>${parts.map(([, p]) => `<td>${p.metrics[m] === undefined ? '' : p.metrics[m]!.toPrecision(5)}</td>`).join('')}</tr>`,
    )
    .join('\n');
  const figures: string[] = [];
  const withRoc = parts.filter(([, p]) => p.roc);
  if (withRoc.length > 0) {
    figures.push(
      plot(
        'ROC curve',
        'false positive rate',
        'true positive rate',
        withRoc.map(([n, p]) => polyline(p.roc!.fpr, p.roc!.tpr, COLOURS[n] ?? '#000')),
        true,
      ),
      plot(
        'Precision–recall curve',
        'recall',
        'precision',
        withRoc.map(([n, p]) => polyline(p.pr!.recall, p.pr!.precision, COLOURS[n] ?? '#000')),
        false,
      ),
      plot(
        'Calibration',
        'mean predicted probability',
        'fraction positive',
        withRoc.map(([n, p]) =>
          polyline(p.calibration!.probPred, p.calibration!.probTrue, COLOURS[n] ?? '#000'),
        ),
        true,
      ),
    );
  }
  const confusions = parts
    .filter(([, p]) => p.confusion)
    .map(([n, p]) => {
      const c = p.confusion!;
      return `<table><caption>${escapeHtml(n)}: confusion at threshold ${c.threshold}</caption><tr><th>true \\ predicted</th>${c.labels.map((l) => `<th>${escapeHtml(l)}</th>`).join('')}</tr>${c.matrix.map((r, i) => `<tr><th>${escapeHtml(c.labels[i] ?? String(i))}</th>${r.map((v) => `<td>${v}</td>`).join('')}</tr>`).join('')}</table>`;
    });
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title>
<style>body{font:14px system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ddd;padding:4px 8px;text-align:right}figure{display:inline-block;margin:0 1em}figcaption{font-weight:600}</style>
</head><body>
<h1>${escapeHtml(title)}</h1>
<p>Task: ${escapeHtml(report.task)}${report.classes ? ` (classes: ${report.classes.map(escape).join(', ')})` : ''}; main metric: ${escapeHtml(report.mainMetric)}. Lines: ${parts.map(([n]) => `<span style="color:${COLOURS[n] ?? '#000'}">${escapeHtml(n)}</span>`).join(', ')}.</p>
<table><tr><th>metric</th>${parts.map(([n, p]) => `<th>${escapeHtml(n)} (${p.rows} rows)</th>`).join('')}</tr>
${rows}
</table>
${figures.join('\n')}
${confusions.join('\n')}
</body></html>
`;
}

import { formatNumber } from '../lib/format.js';

/** The drift API's per-feature picture (src/monitor/drift/histogram.ts): counts on shared bins. */
export type DriftHistogramJson =
  | {
      kind: 'numeric';
      edges: number[];
      reference: number[];
      current: number[];
      below: { reference: number; current: number };
      above: { reference: number; current: number };
    }
  | {
      kind: 'categorical';
      categories: string[];
      reference: number[];
      current: number[];
      other: { reference: number; current: number };
    };

const REFERENCE = '#868e96';
const CURRENT = '#e8590c';

/**
 * Reference vs current as shares of each side's rows, bar by bar (grey: training profile,
 * orange: the window). Values outside the reference's range show as "< min" and "> max" bars,
 * categories past the shown ones as "other", so each side's bars add up to 100 %.
 */
export function DriftHistogram({
  feature,
  h,
  drifted,
  tested,
}: {
  feature: string;
  h: DriftHistogramJson;
  drifted: boolean;
  tested: boolean;
}) {
  const labels: string[] = [];
  const ref: number[] = [];
  const cur: number[] = [];
  const add = (label: string, r: number, c: number) => {
    labels.push(label);
    ref.push(r);
    cur.push(c);
  };
  if (h.kind === 'numeric') {
    if (h.below.reference + h.below.current > 0)
      add(`< ${formatNumber(h.edges[0])}`, h.below.reference, h.below.current);
    for (const [i, r] of h.reference.entries())
      add(`${formatNumber(h.edges[i])} – ${formatNumber(h.edges[i + 1])}`, r, h.current[i] ?? 0);
    if (h.above.reference + h.above.current > 0)
      add(`> ${formatNumber(h.edges[h.edges.length - 1])}`, h.above.reference, h.above.current);
  } else {
    for (const [i, c] of h.categories.entries()) add(c, h.reference[i] ?? 0, h.current[i] ?? 0);
    if (h.other.reference + h.other.current > 0) add('other', h.other.reference, h.other.current);
  }
  const refN = ref.reduce((a, b) => a + b, 0) || 1;
  const curN = cur.reduce((a, b) => a + b, 0) || 1;
  const refShare = ref.map((v) => v / refN);
  const curShare = cur.map((v) => v / curN);
  const top = Math.max(...refShare, ...curShare, 1e-9);
  const W = 300;
  const H = 120;
  const pad = { l: 4, r: 4, t: 6, b: 18 };
  const slot = (W - pad.l - pad.r) / Math.max(1, labels.length);
  const bar = Math.max(1, slot / 2 - 1);
  const y = (share: number) => pad.t + (1 - share / top) * (H - pad.t - pad.b);
  return (
    <figure className="card" style={{ margin: 0, padding: 8 }} data-testid={`drift-histogram-${feature}`}>
      <figcaption className="mono" style={{ fontSize: 12 }}>
        {feature}{' '}
        {tested ? (
          <span className={drifted ? 'bad-text' : 'ok-text'}>{drifted ? 'drifted' : 'ok'}</span>
        ) : (
          <span className="muted">no data in the window</span>
        )}
      </figcaption>
      <svg
        width="100%"
        viewBox={`0 0 ${W} ${H}`}
        role="img"
        aria-label={`${feature}: reference vs current distribution`}
      >
        {labels.map((label, i) => {
          const x = pad.l + i * slot;
          return (
            <g key={label}>
              <title>
                {label}: reference {(refShare[i]! * 100).toFixed(1)}%, current{' '}
                {(curShare[i]! * 100).toFixed(1)}%
              </title>
              <rect
                x={x}
                y={y(refShare[i]!)}
                width={bar}
                height={H - pad.b - y(refShare[i]!)}
                fill={REFERENCE}
              />
              <rect
                x={x + bar + 1}
                y={y(curShare[i]!)}
                width={bar}
                height={H - pad.b - y(curShare[i]!)}
                fill={CURRENT}
              />
            </g>
          );
        })}
        <line x1={pad.l} x2={W - pad.r} y1={H - pad.b} y2={H - pad.b} stroke="var(--border)" />
        <text x={pad.l} y={H - 4} fontSize={10} fill="var(--fg2)">
          {labels[0]}
        </text>
        <text x={W - pad.r} y={H - 4} fontSize={10} fill="var(--fg2)" textAnchor="end">
          {labels[labels.length - 1]}
        </text>
      </svg>
    </figure>
  );
}

/** The key under the histograms. */
export function DriftHistogramLegend() {
  return (
    <p className="muted" style={{ fontSize: 12 }}>
      <span style={{ color: REFERENCE }}>■</span> training profile (reference){' '}
      <span style={{ color: CURRENT }}>■</span> logged window (current), as shares of each side's rows
    </p>
  );
}

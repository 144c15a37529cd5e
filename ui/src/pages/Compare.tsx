import { useQueries, useQueryClient } from '@tanstack/react-query';
import { useVirtualizer } from '@tanstack/react-virtual';
import { useEffect, useMemo, useRef, useState } from 'react';
import { PALETTE } from '../components/Chart.js';
import { Empty, ErrorState, Link, Loading } from '../components/common.js';
import { envelopeQuery, HistoryChart } from '../components/HistoryChart.js';
import { ChartControls, type XAxis } from '../components/MetricChart.js';
import { api, MLFLOW } from '../lib/api.js';
import { buildAxis, type DiffRow, diffRuns } from '../lib/compare.js';
import { formatNumber } from '../lib/format.js';
import { setSearch, useLocation } from '../lib/router.js';
import { type RunJson, type RunRow, toRow } from '../lib/runs.js';

/**
 * Several runs side by side (`/compare?runs=a,b,c`): shared metric charts (server-sampled,
 * resampled on zoom), the param/metric diff table and parallel coordinates.
 */
export function ComparePage() {
  const { search } = useLocation();
  const runsParam = search.get('runs') ?? '';
  const ids = useMemo(() => runsParam.split(',').filter(Boolean).slice(0, 100), [runsParam]);
  const metricsParam = search.get('metrics');
  const client = useQueryClient();
  // Charts named in the URL: their data is asked for now, beside the runs, not after them.
  useEffect(() => {
    if (!metricsParam || ids.length === 0) return;
    for (const m of metricsParam.split(',').filter(Boolean))
      void client.prefetchQuery(envelopeQuery(m, ids, null));
  }, [client, ids, metricsParam]);
  // Combined once per change of any run's data, so the page's charts are not rebuilt on every render.
  const runs = useQueries({
    queries: ids.map((id) => ({
      queryKey: ['run', id],
      queryFn: async () => (await api<{ run: RunJson }>(`${MLFLOW}/runs/get`, { query: { run_id: id } })).run,
    })),
    combine: (results) => ({
      error: results.find((r) => r.isError)?.error ?? null,
      pending: results.some((r) => r.isPending),
      data: results.map((r) => r.data),
    }),
  });
  const rows = useMemo(
    () => (runs.pending || runs.error ? null : runs.data.map((d) => toRow(d!))),
    [runs.pending, runs.error, runs.data],
  );
  if (ids.length === 0)
    return (
      <Empty>Choose runs to compare in an experiment's runs table (tick two or more, then Compare).</Empty>
    );
  if (runs.error) return <ErrorState error={runs.error} />;
  if (!rows) return <Loading what="runs" />;
  return <CompareView rows={rows} />;
}

function CompareView({ rows }: { rows: RunRow[] }) {
  const { search } = useLocation();
  const diff = useMemo(() => diffRuns(rows), [rows]);
  const [onlyDiff, setOnlyDiff] = useState(false);
  const metricKeys = useMemo(() => {
    const count = new Map<string, number>();
    for (const r of rows) for (const k of r.metrics.keys()) count.set(k, (count.get(k) ?? 0) + 1);
    return [...count]
      .filter(([, n]) => n >= Math.min(2, rows.length))
      .map(([k]) => k)
      .sort();
  }, [rows]);
  const chosen = (search.get('metrics') ?? metricKeys.slice(0, 4).join(',')).split(',').filter(Boolean);
  const [xAxis, setXAxis] = useState<XAxis>('step');
  const [smoothing, setSmoothing] = useState(0);
  const expId = rows[0]?.experimentId;

  return (
    <>
      <div className="crumbs">
        <Link to="/experiments">Experiments</Link>
        {expId && (
          <>
            {' '}
            / <Link to={`/experiments/${expId}`}>experiment {expId}</Link>
          </>
        )}{' '}
        / compare
      </div>
      <h1>Compare {rows.length} runs</h1>
      <div className="row" style={{ marginBottom: 10 }}>
        {rows.map((r, i) => (
          <span key={r.id} className="badge" style={{ borderColor: PALETTE[i % PALETTE.length] }}>
            <span style={{ color: PALETTE[i % PALETTE.length] }}>●</span>{' '}
            <Link to={`/runs/${r.id}`}>{r.name}</Link>
          </span>
        ))}
      </div>
      <h2>Metrics</h2>
      <div className="row" style={{ marginBottom: 6 }}>
        <label>
          charts{' '}
          <select
            multiple
            aria-label="metrics to chart"
            value={chosen}
            size={Math.min(6, Math.max(2, metricKeys.length))}
            onChange={(e) =>
              setSearch({ metrics: [...e.target.selectedOptions].map((o) => o.value).join(',') })
            }
          >
            {metricKeys.map((k) => (
              <option key={k} value={k}>
                {k}
              </option>
            ))}
          </select>
        </label>
      </div>
      <ChartControls
        xAxis={xAxis}
        setXAxis={setXAxis}
        smoothing={smoothing}
        setSmoothing={setSmoothing}
        note="min/max per pixel column (spikes kept); long histories come as the server's envelope and zooming on steps fetches the finer one; drag to zoom, double-click to reset"
      />
      <div className="grid2">
        {chosen.map((key) => (
          <CompareChart key={key} metric={key} rows={rows} xAxis={xAxis} smoothing={smoothing} />
        ))}
      </div>
      <h2>Parallel coordinates</h2>
      <ParallelCoordinates rows={rows} diff={diff} />
      <h2>Differences</h2>
      <label>
        <input type="checkbox" checked={onlyDiff} onChange={(e) => setOnlyDiff(e.target.checked)} /> only rows
        that differ
      </label>
      <DiffTable rows={rows} diff={onlyDiff ? diff.filter((d) => d.differs) : diff} />
    </>
  );
}

function CompareChart(props: { metric: string; rows: RunRow[]; xAxis: XAxis; smoothing: number }) {
  const runs = useMemo(() => props.rows.map((r) => ({ id: r.id, label: r.name })), [props.rows]);
  return (
    <HistoryChart
      metric={props.metric}
      runs={runs}
      xAxis={props.xAxis}
      smoothing={props.smoothing}
      testId={`compare-chart-${props.metric}`}
    />
  );
}

const DIFF_ROW_H = 29;

/**
 * The param/metric diff table, rows virtualised: runs with disjoint keys give one row per key
 * of any run (hundreds for 20 runs, thousands for 100), and only those on screen are in the DOM.
 */
function DiffTable({ rows, diff }: { rows: RunRow[]; diff: DiffRow[] }) {
  const box = useRef<HTMLDivElement>(null);
  const v = useVirtualizer({
    count: diff.length,
    getScrollElement: () => box.current,
    estimateSize: () => DIFF_ROW_H,
    overscan: 10,
  });
  const items = v.getVirtualItems();
  const before = items[0]?.start ?? 0;
  const after = v.getTotalSize() - (items[items.length - 1]?.end ?? 0);
  return (
    <div ref={box} className="diff-box" style={{ overflow: 'auto', maxHeight: 30 * DIFF_ROW_H }}>
      <table
        className="plain"
        aria-label="run differences"
        data-testid="diff-table"
        aria-rowcount={diff.length + 1}
      >
        <thead>
          <tr>
            <th>key</th>
            {rows.map((r, i) => (
              <th key={r.id} style={{ color: PALETTE[i % PALETTE.length] }}>
                {r.name}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {before > 0 && <tr style={{ height: before }} />}
          {items.map((item) => {
            const d = diff[item.index]!;
            return (
              <tr
                key={`${d.kind}.${d.key}`}
                className={d.differs ? 'differs' : undefined}
                style={{ height: DIFF_ROW_H }}
                aria-rowindex={item.index + 2}
              >
                <td className="mono">
                  {d.kind}.{d.key}
                </td>
                {d.values.map((val, i) => (
                  <td key={rows[i]!.id} className={typeof val === 'number' ? 'num' : 'mono'}>
                    {typeof val === 'number' ? formatNumber(val) : (val ?? '—')}
                  </td>
                ))}
              </tr>
            );
          })}
          {after > 0 && <tr style={{ height: after }} />}
        </tbody>
      </table>
    </div>
  );
}

/** One vertical axis per differing param and per metric; each run a polyline across them. */
function ParallelCoordinates({ rows, diff }: { rows: RunRow[]; diff: ReturnType<typeof diffRuns> }) {
  const axesSpec = diff.filter((d) => d.kind === 'params' && d.differs).slice(0, 8);
  const metrics = diff.filter((d) => d.kind === 'metrics').slice(0, 4);
  const axes = [...axesSpec, ...metrics].map((d) => buildAxis(`${d.kind}.${d.key}`, d.key, d.values));
  if (axes.length < 2)
    return <p className="muted">Parallel coordinates need two or more differing parameters or metrics.</p>;
  const W = Math.max(480, axes.length * 130);
  const H = 260;
  const pad = { t: 28, b: 30, l: 50, r: 50 };
  const xAt = (i: number) => pad.l + (i * (W - pad.l - pad.r)) / (axes.length - 1);
  const yAt = (p: number) => pad.t + (1 - p) * (H - pad.t - pad.b);
  return (
    <div className="card" style={{ overflowX: 'auto' }}>
      <svg
        width={W}
        height={H}
        role="img"
        aria-label="parallel coordinates"
        data-testid="parallel-coordinates"
      >
        {axes.map((a, i) => (
          <g key={a.key}>
            <line x1={xAt(i)} x2={xAt(i)} y1={pad.t} y2={H - pad.b} stroke="var(--border)" strokeWidth={2} />
            <text x={xAt(i)} y={14} textAnchor="middle" style={{ fontWeight: 600 }}>
              {a.label}
            </text>
            {a.ticks.slice(0, 8).map((t) => (
              <text key={t.label} x={xAt(i) + 5} y={yAt(t.at) + 4}>
                {t.label}
              </text>
            ))}
          </g>
        ))}
        {rows.map((r, ri) => {
          const pts: string[] = [];
          axes.forEach((a, i) => {
            const d = [...axesSpec, ...metrics][i]!;
            const p = a.position(d.values[ri]);
            if (p !== null) pts.push(`${xAt(i)},${yAt(p)}`);
          });
          return (
            <polyline
              key={r.id}
              points={pts.join(' ')}
              fill="none"
              stroke={PALETTE[ri % PALETTE.length]}
              strokeWidth={2}
              opacity={0.85}
            >
              <title>{r.name}</title>
            </polyline>
          );
        })}
      </svg>
    </div>
  );
}

import { useQuery } from '@tanstack/react-query';
import { useMemo, useState } from 'react';
import { formatNumber } from '../lib/format.js';
import { envelopeHistories, fullHistory, type History } from '../lib/history.js';
import { ErrorState, Loading } from './common.js';
import { MetricChart, type XAxis } from './MetricChart.js';

/** Up to this many points in all, full histories are fetched (exact on every x axis); above, envelopes. */
export const FULL_POINTS = 50_000;
/** Envelope buckets: at least one per pixel column of the widest chart. */
const BUCKETS = 1000;

/**
 * One metric of one or more runs on a chart. Short histories are fetched whole; long ones as the
 * server's per-bucket min/max envelope (spikes kept), and a zoom on the step axis fetches the
 * zoomed range's finer envelope, exact once few enough points are in view. `estimate` is the
 * run's point count as far as the page knows (its latest step + 1).
 */
export function HistoryChart(props: {
  metric: string;
  runs: { id: string; label: string; estimate: number }[];
  xAxis: XAxis;
  smoothing: number;
  testId: string;
}) {
  const [range, setRange] = useState<{ min: number; max: number } | null>(null);
  const ids = props.runs.map((r) => r.id);
  const full = props.runs.reduce((a, r) => a + r.estimate + 1, 0) <= FULL_POINTS;
  const zoomable = !full && props.xAxis === 'step';
  const data = useQuery({
    queryKey: ['metric-chart', props.metric, ids, full ? 'full' : zoomable ? range : null],
    queryFn: async ({ signal }) =>
      full
        ? new Map(
            await Promise.all(
              ids.map(async (id) => [id, await fullHistory(id, props.metric, signal)] as const),
            ),
          )
        : envelopeHistories(ids, props.metric, zoomable ? range : null, BUCKETS, signal),
    placeholderData: (prev) => prev,
    staleTime: 60_000,
  });
  const histories = useMemo(() => {
    const out: { label: string; history: History }[] = [];
    for (const r of props.runs) {
      const h = data.data?.get(r.id);
      out.push({
        label: r.label,
        history: h ?? { step: new Float64Array(), time: new Float64Array(), value: new Float64Array() },
      });
    }
    return out;
  }, [data.data, props.runs]);
  if (data.isPending) return <Loading what={props.metric} />;
  if (data.isError) return <ErrorState error={data.error} />;
  if (histories.every((h) => h.history.step.length < 2)) {
    const values = histories
      .filter((h) => h.history.step.length === 1)
      .map((h) => formatNumber(h.history.value[0]!));
    return (
      <p className="muted" data-testid={props.testId}>
        {props.metric}: logged once{values.length ? ` (${values.join(', ')})` : ''}, no curve to draw.
      </p>
    );
  }
  return (
    <MetricChart
      title={
        !full
          ? `${props.metric} (min/max per pixel: zoom for detail)`
          : histories.length === 1
            ? `${props.metric} (${histories[0]!.history.step.length.toLocaleString()} points)`
            : props.metric
      }
      testId={props.testId}
      histories={histories}
      xAxis={props.xAxis}
      smoothing={props.smoothing}
      onZoom={zoomable ? setRange : undefined}
    />
  );
}

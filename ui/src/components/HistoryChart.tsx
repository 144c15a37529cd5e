import { useQuery } from '@tanstack/react-query';
import { useMemo, useState } from 'react';
import { formatNumber } from '../lib/format.js';
import { envelopeHistories, type History } from '../lib/history.js';
import { ErrorState, Loading } from './common.js';
import { MetricChart, type XAxis } from './MetricChart.js';

/** Envelope buckets asked for: the server answers with 500–1,000, one or more per pixel column of a chart. */
const BUCKETS = 1000;

type StepRange = { min: number; max: number } | null;

/**
 * The query of one metric's chart for some runs over a step range (null: everything). A page
 * that knows its charts before it knows its runs' names (the compare page, from its URL)
 * prefetches it with the same key, so the data and the runs arrive together.
 */
export function envelopeQuery(metric: string, runIds: string[], range: StepRange) {
  return {
    queryKey: ['metric-envelope', metric, runIds, range],
    queryFn: ({ signal }: { signal: AbortSignal }) =>
      envelopeHistories(runIds, metric, range, BUCKETS, signal),
    staleTime: 60_000,
  };
}

/**
 * One metric of one or more runs on a chart, from the server's envelope: every point when a
 * run has few enough in range, else per bucket its first smallest and largest point (spikes
 * kept). A zoom on the step axis fetches the zoomed range's finer envelope, down to every point.
 */
export function HistoryChart(props: {
  metric: string;
  runs: { id: string; label: string }[];
  xAxis: XAxis;
  smoothing: number;
  testId: string;
}) {
  const [range, setRange] = useState<StepRange>(null);
  const ids = useMemo(() => props.runs.map((r) => r.id), [props.runs]);
  const zoomable = props.xAxis === 'step';
  const data = useQuery({
    ...envelopeQuery(props.metric, ids, zoomable ? range : null),
    placeholderData: (prev) => prev,
  });
  const histories = useMemo(() => {
    const out: { label: string; history: History }[] = [];
    for (const r of props.runs) {
      const h = data.data?.histories.get(r.id);
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
  const { exact, points } = data.data!;
  const detail = exact ? '' : ', min/max per pixel: zoom for detail';
  return (
    <MetricChart
      title={
        histories.length === 1
          ? `${props.metric} (${points.toLocaleString()} points${detail})`
          : `${props.metric}${exact ? '' : ` (${points.toLocaleString()} points in all${detail})`}`
      }
      testId={props.testId}
      histories={histories}
      xAxis={props.xAxis}
      smoothing={props.smoothing}
      onZoom={zoomable ? setRange : undefined}
    />
  );
}

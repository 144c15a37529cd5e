import { useMemo } from 'react';
import type { History } from '../lib/history.js';
import { emaSmooth } from '../lib/smooth.js';
import { Chart, type ChartSeries } from './Chart.js';

export type XAxis = 'step' | 'relative' | 'wall';

/** Series of one metric for several runs, on the chosen x axis, smoothed (EMA) as asked. */
export function MetricChart(props: {
  title: string;
  histories: { label: string; history: History }[];
  xAxis: XAxis;
  smoothing: number;
  onZoom?: (range: { min: number; max: number } | null) => void;
  testId?: string;
}) {
  const { histories, xAxis, smoothing } = props;
  const series = useMemo<ChartSeries[]>(
    () =>
      histories.map(({ label, history }) => {
        let x: Float64Array;
        if (xAxis === 'step') x = history.step;
        else {
          // Time axes are in seconds (uPlot's time scale unit); relative time counts from the run's first point.
          const t0 = xAxis === 'relative' ? (history.time[0] ?? 0) : 0;
          x = history.time.map((t) => (t - t0) / 1000);
          // Points logged out of time order would break the sorted-x contract: sort by x.
          if (x.some((v, i) => i > 0 && v < x[i - 1]!)) {
            const order = [...x.keys()].sort((a, b) => x[a]! - x[b]!);
            const y = emaSmooth(
              order.map((i) => history.value[i]!),
              smoothing,
            );
            return { label, x: Float64Array.from(order.map((i) => x[i]!)), y };
          }
        }
        return { label, x, y: emaSmooth(history.value, smoothing) };
      }),
    [histories, xAxis, smoothing],
  );
  return (
    <Chart
      title={props.title}
      series={series}
      xLabel={xAxis === 'step' ? 'step' : xAxis === 'relative' ? 'seconds since start' : 'time'}
      xTime={xAxis === 'wall'}
      onZoom={props.onZoom}
      testId={props.testId}
    />
  );
}

/** The x-axis and smoothing controls above a set of charts. */
export function ChartControls(props: {
  xAxis: XAxis;
  setXAxis: (x: XAxis) => void;
  smoothing: number;
  setSmoothing: (s: number) => void;
  note?: string;
}) {
  return (
    <div className="row" style={{ marginBottom: 10 }}>
      <label>
        x axis{' '}
        <select
          value={props.xAxis}
          onChange={(e) => props.setXAxis(e.target.value as XAxis)}
          aria-label="x axis"
        >
          <option value="step">step</option>
          <option value="relative">relative time</option>
          <option value="wall">wall time</option>
        </select>
      </label>
      <label>
        smoothing{' '}
        <input
          type="range"
          min={0}
          max={0.99}
          step={0.01}
          value={props.smoothing}
          onChange={(e) => props.setSmoothing(Number(e.target.value))}
          aria-label="smoothing"
        />{' '}
        <span className="mono">{props.smoothing.toFixed(2)}</span>
      </label>
      <span className="muted">{props.note ?? 'drag to zoom, double-click to reset'}</span>
    </div>
  );
}

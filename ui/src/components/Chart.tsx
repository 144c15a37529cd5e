import { useEffect, useRef } from 'react';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { alignSeries, lowerBound } from '../lib/align.js';
import { minMaxDownsample } from '../lib/downsample.js';

export interface ChartSeries {
  label: string;
  x: ArrayLike<number>;
  y: ArrayLike<number>;
}

export const PALETTE = [
  '#e8590c',
  '#1c7ed6',
  '#2f9e44',
  '#ae3ec9',
  '#f08c00',
  '#0ca678',
  '#d6336c',
  '#4263eb',
  '#74b816',
  '#1098ad',
  '#c2255c',
  '#5f3dc4',
  '#e67700',
  '#087f5b',
  '#364fc7',
  '#a61e4d',
  '#5c940d',
  '#0b7285',
  '#862e9c',
  '#d9480f',
];

/**
 * A uPlot line chart over full-resolution series. What is drawn is min/max-decimated to about
 * two points per pixel column of the visible x range, recomputed on every zoom (drag to zoom,
 * double-click to reset), so 100,000-step histories draw in milliseconds and keep their spikes.
 * `xTime` formats the x axis as dates (x in seconds). The container's `data-drawn-ms` holds the
 * performance.now() of the latest draw (read by bench/ui.ts).
 */
export function Chart(props: {
  title?: string;
  series: ChartSeries[];
  xLabel: string;
  xTime?: boolean;
  height?: number;
  scatter?: boolean;
  onZoom?: (range: { min: number; max: number } | null) => void;
  testId?: string;
}) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const { series, xLabel, xTime, height = 260, scatter, onZoom } = props;
  const zoomCb = useRef(onZoom);
  zoomCb.current = onZoom;

  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const css = getComputedStyle(document.documentElement);
    const fg = css.getPropertyValue('--fg2').trim() || '#666';
    const grid = css.getPropertyValue('--border').trim() || '#ddd';
    const width = Math.max(200, el.clientWidth - 16);
    let xMin = Number.POSITIVE_INFINITY;
    let xMax = Number.NEGATIVE_INFINITY;
    for (const s of series) {
      if (s.x.length === 0) continue;
      xMin = Math.min(xMin, s.x[0]!);
      xMax = Math.max(xMax, s.x[s.x.length - 1]!);
    }
    const decimated = (lo: number, hi: number, w: number): uPlot.AlignedData => {
      const parts = series.map((s) => {
        const a = Math.max(0, lowerBound(s.x, lo) - 1);
        const b = Math.min(s.x.length, lowerBound(s.x, hi) + 1);
        const xs = (s.x as Float64Array).subarray
          ? (s.x as Float64Array).subarray(a, b)
          : Array.from(s.x).slice(a, b);
        const ys = (s.y as Float64Array).subarray
          ? (s.y as Float64Array).subarray(a, b)
          : Array.from(s.y).slice(a, b);
        return scatter ? { x: xs, y: ys } : minMaxDownsample(xs, ys, Math.max(50, Math.floor(w)));
      });
      const aligned = alignSeries(parts);
      return [aligned.x, ...aligned.ys] as uPlot.AlignedData;
    };
    let resampling = false;
    let shown = { min: xMin, max: xMax };
    const opts: uPlot.Options = {
      width,
      height,
      scales: { x: { time: !!xTime } },
      cursor: { drag: { x: true, y: false } },
      legend: { show: series.length <= 20 },
      axes: [
        {
          stroke: fg,
          grid: { stroke: grid, width: 1 },
          ticks: { stroke: grid },
          label: xLabel,
          labelSize: 18,
        },
        { stroke: fg, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid }, size: 60 },
      ],
      series: [
        { label: xLabel },
        ...series.map((s, i) => ({
          label: s.label,
          stroke: PALETTE[i % PALETTE.length],
          width: 1.5,
          spanGaps: true,
          // Lines show their points only where they are sparse (uPlot's default), so a metric logged once still shows.
          ...(scatter ? { points: { show: true, size: 6, fill: PALETTE[i % PALETTE.length] } } : {}),
          ...(scatter ? { paths: () => null } : {}),
        })),
      ],
      hooks: {
        draw: [() => el.setAttribute('data-drawn-ms', String(performance.now()))],
        setScale: [
          (u, key) => {
            if (key !== 'x' || resampling) return;
            const { min, max } = u.scales.x;
            if (min === undefined || max === undefined || min === null || max === null) return;
            // uPlot sets the initial scale to the data's range: that is what was decimated already.
            if (min === shown.min && max === shown.max) return;
            shown = { min, max };
            resampling = true;
            u.setData(decimated(min, max, u.bbox.width / devicePixelRatio), false);
            resampling = false;
            const full = min <= xMin && max >= xMax;
            zoomCb.current?.(full ? null : { min, max });
          },
        ],
      },
    };
    const data = Number.isFinite(xMin)
      ? decimated(xMin, xMax, width)
      : ([[]] as unknown as uPlot.AlignedData);
    const u = new uPlot(opts, data, el);
    plot.current = u;
    const ro = new ResizeObserver(() => {
      const w = Math.max(200, el.clientWidth - 16);
      if (Math.abs(w - u.width) > 2) u.setSize({ width: w, height });
    });
    ro.observe(el);
    const theme = new MutationObserver(() => {
      // Axis colours come from the theme's variables: redraw in the new ones.
      const c = getComputedStyle(document.documentElement);
      for (const axis of u.axes) {
        axis.stroke = () => c.getPropertyValue('--fg2').trim();
      }
      u.redraw(false, true);
    });
    theme.observe(document.documentElement, { attributes: true, attributeFilter: ['data-theme'] });
    return () => {
      ro.disconnect();
      theme.disconnect();
      u.destroy();
      plot.current = null;
    };
  }, [series, xLabel, xTime, height, scatter]);

  return (
    <div className="chart" data-testid={props.testId}>
      {props.title && <div className="title">{props.title}</div>}
      <div ref={box} />
    </div>
  );
}

import { useQuery } from '@tanstack/react-query';
import { useEffect, useMemo, useState } from 'react';
import { Chart } from '../components/Chart.js';
import {
  Empty,
  ErrorState,
  KeyValues,
  Link,
  Loading,
  QueryView,
  Status,
  Tabs,
} from '../components/common.js';
import { HistoryChart } from '../components/HistoryChart.js';
import { ChartControls, type XAxis } from '../components/MetricChart.js';
import { api, MLFLOW } from '../lib/api.js';
import { artifactUrl, fetchArtifactBlob, fetchArtifactText } from '../lib/artifacts.js';
import { formatBytes, formatDuration, formatNumber, formatTime } from '../lib/format.js';
import { PREVIEW_LIMIT_BYTES, prettyJson, previewKind } from '../lib/preview.js';
import { setSearch, useLocation } from '../lib/router.js';
import { type RunJson, toRow } from '../lib/runs.js';

export function useRun(runId: string) {
  return useQuery({
    queryKey: ['run', runId],
    queryFn: async () =>
      (await api<{ run: RunJson }>(`${MLFLOW}/runs/get`, { query: { run_id: runId } })).run,
  });
}

export function RunPage({ runId, tab }: { runId: string; tab: string }) {
  const run = useRun(runId);
  const tabs = [
    { id: 'overview', label: 'Overview', to: `/runs/${runId}` },
    { id: 'charts', label: 'Metric charts', to: `/runs/${runId}/charts` },
    { id: 'artifacts', label: 'Artifacts', to: `/runs/${runId}/artifacts` },
    { id: 'evaluation', label: 'Evaluation', to: `/runs/${runId}/evaluation` },
  ];
  return (
    <QueryView query={run} what="run">
      {(r) => {
        const row = toRow(r);
        return (
          <>
            <div className="crumbs">
              <Link to="/experiments">Experiments</Link> /{' '}
              <Link to={`/experiments/${row.experimentId}`}>experiment {row.experimentId}</Link> / run
            </div>
            <div className="row">
              <h1 style={{ margin: 0 }}>{row.name}</h1>
              <Status status={row.status} />
              <span className="muted mono">{row.id}</span>
            </div>
            <Tabs tabs={tabs} active={tab} />
            {tab === 'overview' && <Overview run={r} />}
            {tab === 'charts' && <RunCharts run={r} />}
            {tab === 'artifacts' && <Artifacts run={r} />}
            {tab === 'evaluation' && <Evaluation run={r} />}
          </>
        );
      }}
    </QueryView>
  );
}

function Overview({ run }: { run: RunJson }) {
  const row = toRow(run);
  const metrics = [...row.metrics].sort(([a], [b]) => a.localeCompare(b));
  const params = [...row.params].sort(([a], [b]) => a.localeCompare(b));
  const tags = [...row.tags].sort(([a], [b]) => a.localeCompare(b));
  return (
    <div className="grid2">
      <div className="card">
        <h2 style={{ marginTop: 0 }}>Run</h2>
        <KeyValues
          entries={[
            ['run id', row.id],
            ['experiment', row.experimentId],
            ['user', row.user ?? ''],
            ['started', formatTime(row.start)],
            ['ended', formatTime(row.end)],
            ['duration', row.start && row.end ? formatDuration(row.end - row.start) : ''],
            ['artifacts', run.info.artifact_uri ?? ''],
          ]}
        />
        <h2>Tags</h2>
        {tags.length === 0 ? <p className="muted">No tags.</p> : <KvTable rows={tags} label="tags" />}
      </div>
      <div className="card">
        <h2 style={{ marginTop: 0 }}>Metrics (latest)</h2>
        {metrics.length === 0 ? (
          <p className="muted">No metrics.</p>
        ) : (
          <KvTable rows={metrics.map(([k, v]) => [k, formatNumber(v)])} label="metrics" num />
        )}
        <h2>Parameters</h2>
        {params.length === 0 ? (
          <p className="muted">No parameters.</p>
        ) : (
          <KvTable rows={params} label="params" />
        )}
      </div>
    </div>
  );
}

function KvTable({ rows, label, num }: { rows: [string, string][]; label: string; num?: boolean }) {
  return (
    <table className="plain" aria-label={label}>
      <tbody>
        {rows.map(([k, v]) => (
          <tr key={k} tabIndex={-1}>
            <td className="mono">{k}</td>
            <td className={num ? 'num' : 'mono'} style={{ wordBreak: 'break-all' }}>
              {v}
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function RunCharts({ run }: { run: RunJson }) {
  const keys = useMemo(() => (run.data.metrics ?? []).map((m) => m.key).sort(), [run]);
  const { search } = useLocation();
  const [xAxis, setXAxis] = useState<XAxis>((search.get('x') as XAxis) || 'step');
  const [smoothing, setSmoothing] = useState(Number(search.get('smooth') ?? 0));
  const [filter, setFilter] = useState('');
  const shown = keys.filter((k) => k.toLowerCase().includes(filter.toLowerCase())).slice(0, 24);
  // One stable runs list per metric, so a chart is rebuilt only when its data changes.
  const chartRuns = useMemo(
    () => new Map(keys.map((k) => [k, [{ id: run.info.run_id, label: k }]])),
    [keys, run.info.run_id],
  );
  useEffect(
    () => setSearch({ x: xAxis === 'step' ? '' : xAxis, smooth: smoothing ? String(smoothing) : '' }),
    [xAxis, smoothing],
  );
  if (keys.length === 0) return <Empty>This run logged no metrics.</Empty>;
  return (
    <>
      <div className="row">
        <input
          className="search"
          style={{ maxWidth: 320 }}
          placeholder="filter metrics"
          aria-label="filter metrics"
          value={filter}
          onChange={(e) => setFilter(e.target.value)}
        />
        <span className="muted">
          {shown.length} of {keys.length} metrics
        </span>
      </div>
      <ChartControls
        xAxis={xAxis}
        setXAxis={setXAxis}
        smoothing={smoothing}
        setSmoothing={setSmoothing}
        note="min/max per pixel column (spikes kept); a long history comes as the server's envelope and zooming on steps fetches the finer one; drag to zoom, double-click to reset"
      />
      <div className="grid2">
        {shown.map((key) => (
          <HistoryChart
            key={key}
            metric={key}
            runs={chartRuns.get(key)!}
            testId={`chart-${key}`}
            xAxis={xAxis}
            smoothing={smoothing}
          />
        ))}
      </div>
    </>
  );
}

interface ArtifactFile {
  path: string;
  is_dir: boolean;
  file_size?: number;
}

function useArtifactList(runId: string, path: string, enabled = true) {
  return useQuery({
    enabled,
    queryKey: ['artifacts', runId, path],
    queryFn: async () =>
      (
        await api<{ files?: ArtifactFile[] }>(`${MLFLOW}/artifacts/list`, {
          query: { run_id: runId, path: path || undefined },
        })
      ).files ?? [],
  });
}

function Artifacts({ run }: { run: RunJson }) {
  const { search } = useLocation();
  const selected = search.get('path') ?? '';
  const root = useArtifactList(run.info.run_id, '');
  return (
    <QueryView
      query={root}
      what="artifacts"
      isEmpty={(f) => f.length === 0}
      empty="This run has no artifacts."
    >
      {(files) => (
        <div className="artifacts">
          <div className="card tree" role="tree" aria-label="artifacts">
            <ArtifactTree run={run} files={files} selected={selected} depth={0} />
          </div>
          <div>
            {selected ? <Preview run={run} path={selected} /> : <Empty>Choose a file to preview it.</Empty>}
          </div>
        </div>
      )}
    </QueryView>
  );
}

function ArtifactTree(props: { run: RunJson; files: ArtifactFile[]; selected: string; depth: number }) {
  return (
    <>
      {props.files.map((f) =>
        f.is_dir ? (
          <Folder key={f.path} {...props} file={f} />
        ) : (
          <FileLink key={f.path} {...props} file={f} />
        ),
      )}
    </>
  );
}

function FileLink({ file, selected, depth }: { file: ArtifactFile; selected: string; depth: number }) {
  const name = file.path.split('/').pop();
  return (
    <a
      href={`?path=${encodeURIComponent(file.path)}`}
      role="treeitem"
      className={file.path === selected ? 'active' : undefined}
      style={{ paddingLeft: 6 + depth * 14 }}
      onClick={(e) => {
        e.preventDefault();
        setSearch({ path: file.path });
      }}
    >
      {name} <span className="muted">{formatBytes(file.file_size)}</span>
    </a>
  );
}

function Folder(props: { run: RunJson; file: ArtifactFile; selected: string; depth: number }) {
  const [open, setOpen] = useState(props.selected.startsWith(`${props.file.path}/`));
  const list = useArtifactList(props.run.info.run_id, props.file.path, open);
  return (
    <>
      <button
        type="button"
        className="folder"
        role="treeitem"
        aria-expanded={open}
        style={{ paddingLeft: 6 + props.depth * 14 }}
        onClick={() => setOpen(!open)}
      >
        {open ? '▾' : '▸'} {props.file.path.split('/').pop()}
      </button>
      {open && list.isSuccess && (
        <ArtifactTree run={props.run} files={list.data} selected={props.selected} depth={props.depth + 1} />
      )}
      {open && list.isPending && (
        <div className="muted" style={{ paddingLeft: 20 }}>
          …
        </div>
      )}
    </>
  );
}

function Preview({ run, path }: { run: RunJson; path: string }) {
  const uri = run.info.artifact_uri ?? '';
  const listing = useArtifactList(run.info.run_id, path.split('/').slice(0, -1).join('/'));
  const size = listing.data?.find((f) => f.path === path)?.file_size;
  const kind = previewKind(path, size);
  const content = useQuery({
    queryKey: ['artifact', run.info.run_id, path, kind],
    enabled: kind !== 'none' && listing.isSuccess,
    queryFn: async () => {
      if (kind === 'image') return { url: URL.createObjectURL(await fetchArtifactBlob(uri, path)) };
      const text = await fetchArtifactText(uri, path);
      return { text: kind === 'json' ? prettyJson(text) : text };
    },
  });
  const url = artifactUrl(uri, path);
  return (
    <div className="card">
      <div className="row" style={{ marginBottom: 8 }}>
        <strong className="mono">{path}</strong>
        <span className="muted">{formatBytes(size)}</span>
        <div className="grow" />
        {url && (
          <button
            type="button"
            onClick={async () => {
              const blob = await fetchArtifactBlob(uri, path);
              const a = document.createElement('a');
              a.href = URL.createObjectURL(blob);
              a.download = path.split('/').pop() ?? 'artifact';
              a.click();
            }}
          >
            Download
          </button>
        )}
      </div>
      {kind === 'none' ? (
        <Empty>
          No preview for this file
          {size !== undefined && size > PREVIEW_LIMIT_BYTES
            ? ` (larger than ${formatBytes(PREVIEW_LIMIT_BYTES)})`
            : ''}
          .
        </Empty>
      ) : content.isPending ? (
        <Loading what={path} />
      ) : content.isError ? (
        <ErrorState error={content.error} />
      ) : kind === 'image' ? (
        <img src={content.data.url} alt={path} style={{ maxWidth: '100%' }} />
      ) : kind === 'html' ? (
        // No scripts, no same-origin: an HTML report cannot read the token or call the API.
        <iframe
          className="preview"
          title={path}
          sandbox=""
          srcDoc={content.data.text}
          data-testid="html-preview"
        />
      ) : (
        <pre className="preview" data-testid="text-preview">
          {content.data.text}
        </pre>
      )}
    </div>
  );
}

// ---------------------------------------------------------------- evaluation report

interface EvalPart {
  title?: string;
  metrics?: Record<string, number>;
  curves?: {
    roc?: { fpr: number[]; tpr: number[] };
    pr?: { precision: number[]; recall: number[] };
    calibration?: { probTrue: number[]; probPred: number[]; count: number[] };
  };
  confusionMatrix?: { threshold: number; labels: string[]; matrix: number[][] };
  featureImportance?: { kind: string; values: { feature: string; importance: number }[] };
}
interface EvalReport {
  kind: string;
  main?: string;
  parts?: Record<string, EvalPart>;
}

function sortedXY(x: number[], y: number[]) {
  const order = [...x.keys()].sort((a, b) => x[a]! - x[b]! || y[a]! - y[b]!);
  return { x: Float64Array.from(order.map((i) => x[i]!)), y: Float64Array.from(order.map((i) => y[i]!)) };
}

function Evaluation({ run }: { run: RunJson }) {
  const uri = run.info.artifact_uri ?? '';
  const report = useQuery({
    queryKey: ['eval-report', run.info.run_id],
    queryFn: async () => {
      const files = (
        await api<{ files?: ArtifactFile[] }>(`${MLFLOW}/artifacts/list`, {
          query: { run_id: run.info.run_id, path: 'evaluation' },
        })
      ).files;
      if (!files?.some((f) => f.path === 'evaluation/report.json')) return null;
      return JSON.parse(await fetchArtifactText(uri, 'evaluation/report.json')) as EvalReport;
    },
  });
  return (
    <QueryView
      query={report}
      what="evaluation report"
      isEmpty={(r) => !r?.parts}
      empty={<>This run has no evaluation report (kiln train writes evaluation/report.json).</>}
    >
      {(r) => {
        const parts = Object.entries(r!.parts!);
        const main = r!.parts![r!.main ?? 'test'] ?? parts[0]![1];
        const withCurves = parts.filter(([, p]) => p.curves);
        return (
          <>
            <div className="grid3">
              {withCurves.some(([, p]) => p.curves?.roc) && (
                <Chart
                  title="ROC curve"
                  testId="roc-chart"
                  xLabel="false positive rate"
                  height={240}
                  series={withCurves
                    .filter(([, p]) => p.curves?.roc)
                    .map(([name, p]) => ({
                      label: name,
                      ...sortedXY(p.curves!.roc!.fpr, p.curves!.roc!.tpr),
                    }))}
                />
              )}
              {withCurves.some(([, p]) => p.curves?.pr) && (
                <Chart
                  title="Precision–recall"
                  xLabel="recall"
                  height={240}
                  series={withCurves
                    .filter(([, p]) => p.curves?.pr)
                    .map(([name, p]) => ({
                      label: name,
                      ...sortedXY(p.curves!.pr!.recall, p.curves!.pr!.precision),
                    }))}
                />
              )}
              {withCurves.some(([, p]) => p.curves?.calibration) && (
                <Chart
                  title="Calibration (fraction positive vs predicted)"
                  xLabel="mean predicted probability"
                  height={240}
                  series={[
                    { label: 'perfect', x: Float64Array.of(0, 1), y: Float64Array.of(0, 1) },
                    ...withCurves
                      .filter(([, p]) => p.curves?.calibration)
                      .map(([name, p]) => ({
                        label: name,
                        ...sortedXY(p.curves!.calibration!.probPred, p.curves!.calibration!.probTrue),
                      })),
                  ]}
                />
              )}
            </div>
            <div className="grid2" style={{ marginTop: 14 }}>
              <div className="card">
                <h2 style={{ marginTop: 0 }}>Metrics by split</h2>
                <table className="plain" aria-label="evaluation metrics">
                  <thead>
                    <tr>
                      <th>metric</th>
                      {parts.map(([name]) => (
                        <th key={name}>{name}</th>
                      ))}
                    </tr>
                  </thead>
                  <tbody>
                    {Object.keys(main.metrics ?? {}).map((m) => (
                      <tr key={m}>
                        <td className="mono">{m}</td>
                        {parts.map(([name, p]) => (
                          <td key={name} className="num">
                            {formatNumber(p.metrics?.[m])}
                          </td>
                        ))}
                      </tr>
                    ))}
                  </tbody>
                </table>
                {main.confusionMatrix && (
                  <>
                    <h3>
                      Confusion matrix ({r!.main ?? 'test'}, threshold {main.confusionMatrix.threshold})
                    </h3>
                    <table className="plain" aria-label="confusion matrix" style={{ width: 'auto' }}>
                      <thead>
                        <tr>
                          <th>actual \ predicted</th>
                          {main.confusionMatrix.labels.map((l) => (
                            <th key={l}>{l}</th>
                          ))}
                        </tr>
                      </thead>
                      <tbody>
                        {main.confusionMatrix.matrix.map((cells, i) => (
                          <tr key={main.confusionMatrix!.labels[i]}>
                            <th>{main.confusionMatrix!.labels[i]}</th>
                            {cells.map((c, j) => (
                              <td key={main.confusionMatrix!.labels[j]} className="num">
                                {c}
                              </td>
                            ))}
                          </tr>
                        ))}
                      </tbody>
                    </table>
                  </>
                )}
              </div>
              <div className="card">
                <h2 style={{ marginTop: 0 }}>Feature importance</h2>
                {main.featureImportance?.values?.length ? (
                  <Bars
                    label="feature importance"
                    items={main.featureImportance.values.map((v) => ({
                      label: v.feature,
                      value: v.importance,
                    }))}
                  />
                ) : (
                  <p className="muted">The report holds no feature importance.</p>
                )}
                {main.featureImportance && (
                  <p className="muted">Kind: {main.featureImportance.kind} (gain for tree models).</p>
                )}
              </div>
            </div>
          </>
        );
      }}
    </QueryView>
  );
}

/** Horizontal bars, largest first (feature importance, parameter importance, top categories). */
export function Bars({
  items,
  label,
  format = formatNumber,
}: {
  items: { label: string; value: number }[];
  label: string;
  format?: (v: number) => string;
}) {
  const sorted = [...items].sort((a, b) => b.value - a.value).slice(0, 40);
  const max = Math.max(...sorted.map((i) => Math.abs(i.value)), 1e-12);
  return (
    <div role="list" aria-label={label}>
      {sorted.map((i) => (
        <div
          key={i.label}
          role="listitem"
          className="row"
          style={{ gap: 6, flexWrap: 'nowrap', marginBottom: 3 }}
        >
          <span
            className="mono"
            style={{ width: 140, overflow: 'hidden', textOverflow: 'ellipsis', whiteSpace: 'nowrap' }}
            title={i.label}
          >
            {i.label}
          </span>
          <span style={{ flex: 1, background: 'var(--bg3)', borderRadius: 3, height: 14 }}>
            <span
              style={{
                display: 'block',
                width: `${(100 * Math.abs(i.value)) / max}%`,
                height: 14,
                background: 'var(--accent)',
                borderRadius: 3,
              }}
            />
          </span>
          <span className="mono" style={{ width: 80, textAlign: 'right' }}>
            {format(i.value)}
          </span>
        </div>
      ))}
    </div>
  );
}

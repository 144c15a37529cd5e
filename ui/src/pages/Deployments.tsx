import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { PALETTE } from '../components/Chart.js';
import { Empty, ErrorState, KeyValues, Link, Loading, NavTable, QueryView } from '../components/common.js';
import {
  DriftHistogram,
  type DriftHistogramJson,
  DriftHistogramLegend,
} from '../components/DriftHistogram.js';
import { ApiError, api, KILN } from '../lib/api.js';
import { formatNumber, formatTime } from '../lib/format.js';

interface Deployment {
  name: string;
  versions: { model: string; weight: number }[];
  shadow?: { model: string; share: number };
  updated_by: string;
  updated_timestamp: number;
}

/** `models:/credit/2` → the model page link of that version. */
function modelLink(uri: string) {
  const m = /^models:\/([^/@]+)(?:\/(\d+)|@(.+))?$/.exec(uri);
  if (!m) return <span className="mono">{uri}</span>;
  const to = `/models/${encodeURIComponent(m[1]!)}${m[2] ? `?version=${m[2]}` : ''}`;
  return (
    <Link to={to}>
      {m[1]}
      {m[2] ? ` v${m[2]}` : m[3] ? `@${m[3]}` : ''}
    </Link>
  );
}

export function DeploymentsPage() {
  const deployments = useQuery({
    queryKey: ['deployments'],
    queryFn: async () => (await api<{ deployments: Deployment[] }>(`${KILN}/deployments`)).deployments,
  });
  return (
    <>
      <h1>Deployments</h1>
      <QueryView
        query={deployments}
        what="deployments"
        isEmpty={(d) => d.length === 0}
        empty={
          <>
            No stored deployments: <code>kiln deploy set NAME --version model/1=100</code>, then{' '}
            <code>kiln serve deployments:/NAME</code>.
          </>
        }
      >
        {(list) => (
          <NavTable
            label="deployments"
            rows={list}
            rowKey={(d) => d.name}
            href={(d) => `/deployments/${encodeURIComponent(d.name)}`}
            columns={[
              {
                title: 'Name',
                cell: (d) => <Link to={`/deployments/${encodeURIComponent(d.name)}`}>{d.name}</Link>,
              },
              {
                title: 'Traffic',
                cell: (d) =>
                  d.versions.map((v) => `${v.model.replace('models:/', '')} ${v.weight}%`).join(' · '),
              },
              {
                title: 'Shadow',
                cell: (d) =>
                  d.shadow
                    ? `${d.shadow.model.replace('models:/', '')} (${(d.shadow.share * 100).toFixed(0)}%)`
                    : '',
              },
              { title: 'Updated by', cell: (d) => d.updated_by },
              { title: 'Updated', cell: (d) => formatTime(d.updated_timestamp) },
            ]}
          />
        )}
      </QueryView>
    </>
  );
}

export function DeploymentPage({ name }: { name: string }) {
  const deployment = useQuery({
    queryKey: ['deployment', name],
    queryFn: async () =>
      (await api<{ deployment: Deployment }>(`${KILN}/deployments/${encodeURIComponent(name)}`)).deployment,
  });
  return (
    <>
      <div className="crumbs">
        <Link to="/deployments">Deployments</Link> / {name}
      </div>
      <h1>{name}</h1>
      <QueryView query={deployment} what="deployment">
        {(d) => {
          const total = d.versions.reduce((a, v) => a + v.weight, 0) || 1;
          return (
            <>
              <div className="card">
                <h2 style={{ marginTop: 0 }}>Traffic split</h2>
                <div
                  style={{
                    display: 'flex',
                    height: 26,
                    borderRadius: 6,
                    overflow: 'hidden',
                    border: '1px solid var(--border)',
                  }}
                  data-testid="traffic-split"
                >
                  {d.versions.map((v, i) => (
                    <div
                      key={v.model}
                      title={`${v.model}: ${v.weight}`}
                      style={{
                        width: `${(100 * v.weight) / total}%`,
                        background: PALETTE[i % PALETTE.length],
                        color: '#fff',
                        fontSize: 12,
                        lineHeight: '26px',
                        paddingLeft: 6,
                        whiteSpace: 'nowrap',
                        overflow: 'hidden',
                      }}
                    >
                      {v.model.replace('models:/', '')} {((100 * v.weight) / total).toFixed(0)}%
                    </div>
                  ))}
                </div>
                <table className="plain" aria-label="routes" style={{ marginTop: 8 }}>
                  <tbody>
                    {d.versions.map((v) => (
                      <tr key={v.model}>
                        <td>{modelLink(v.model)}</td>
                        <td className="num">weight {v.weight}</td>
                      </tr>
                    ))}
                    {d.shadow && (
                      <tr>
                        <td>{modelLink(d.shadow.model)} (shadow)</td>
                        <td className="num">
                          mirrors {(d.shadow.share * 100).toFixed(0)}% of requests, answers only logged
                        </td>
                      </tr>
                    )}
                  </tbody>
                </table>
                <KeyValues
                  entries={[
                    ['updated by', d.updated_by],
                    ['updated', formatTime(d.updated_timestamp)],
                  ]}
                />
              </div>
              <h2>Monitoring</h2>
              <DriftPanel models={d.versions.map((v) => v.model.replace(/^models:\//, ''))} />
              {[...new Set(d.versions.map((v) => modelNameOf(v.model)))].map((m) => (
                <AlertsPanel key={m} model={m} />
              ))}
              <div style={{ marginTop: 12 }}>
                <Empty>
                  Latency and error charts: this server does not expose serving metrics yet. A{' '}
                  <code>kiln serve deployments:/{name}</code> process exports them on its own{' '}
                  <code>/metrics</code> (Prometheus).
                </Empty>
              </div>
            </>
          );
        }}
      </QueryView>
    </>
  );
}

interface FeatureDrift {
  column: string;
  kind: 'numeric' | 'categorical';
  status: 'tested' | 'no_data';
  reason?: string;
  test?: string;
  scoreKind?: 'p_value' | 'distance';
  score?: number;
  threshold?: number;
  drifted: boolean;
  referenceRows: number;
  currentRows: number;
  quality?: { missingShare: number; outOfRangeShare?: number; unseenCategoryShare?: number };
  histogram?: DriftHistogramJson;
}
interface DriftReport {
  reference: { dataset: string; rows: number };
  window: { from: string; to: string; requests: number; rows: number };
  dataset: {
    share: number;
    shareThreshold: number;
    drifted: boolean;
    driftedFeatures: number;
    testedFeatures: number;
  };
  features: FeatureDrift[];
  prediction: {
    status: string;
    reason?: string;
    test?: string;
    score?: number;
    threshold?: number;
    drifted: boolean;
  };
}

const pct = (v: number | undefined) => (v === undefined ? '' : `${(v * 100).toFixed(1)}%`);

/**
 * Drift of a deployed version's logged traffic against its training data
 * (`GET /api/kiln/monitor/drift`, where the server has it): dataset drift, per-feature test,
 * score and threshold, data quality, prediction drift.
 */
function DriftPanel({ models }: { models: string[] }) {
  const [model, setModel] = useState(models[0] ?? '');
  const [windowText, setWindowText] = useState('24h');
  const drift = useQuery({
    queryKey: ['drift', model, windowText],
    enabled: model !== '',
    retry: false,
    queryFn: async () => {
      try {
        return await api<DriftReport>(`${KILN}/monitor/drift`, { query: { model, window: windowText } });
      } catch (e) {
        if (e instanceof ApiError && e.status === 404 && e.code === 'ENDPOINT_NOT_FOUND') return null;
        throw e;
      }
    },
  });
  return (
    <div className="card" data-testid="drift-panel">
      <div className="row" style={{ marginBottom: 8 }}>
        <h3 style={{ margin: 0 }}>Drift</h3>
        <label>
          version{' '}
          <select aria-label="drift version" value={model} onChange={(e) => setModel(e.target.value)}>
            {models.map((m) => (
              <option key={m}>{m}</option>
            ))}
          </select>
        </label>
        <label>
          window{' '}
          <select
            aria-label="drift window"
            value={windowText}
            onChange={(e) => setWindowText(e.target.value)}
          >
            {['1h', '24h', '7d', '30d'].map((w) => (
              <option key={w}>{w}</option>
            ))}
          </select>
        </label>
      </div>
      {drift.isPending ? (
        <Loading what="drift" />
      ) : drift.isError ? (
        <ErrorState error={drift.error} />
      ) : drift.data === null ? (
        <Empty>Drift reports are not available on this server yet.</Empty>
      ) : (
        <>
          <p className={drift.data.dataset.drifted ? 'bad-text' : 'ok-text'}>
            {drift.data.dataset.drifted ? 'Dataset drift' : 'No dataset drift'}:{' '}
            {drift.data.dataset.driftedFeatures} of {drift.data.dataset.testedFeatures} features drifted
            (threshold share {drift.data.dataset.shareThreshold}); window {drift.data.window.from} →{' '}
            {drift.data.window.to}, {drift.data.window.rows.toLocaleString()} rows against{' '}
            {drift.data.reference.dataset} ({drift.data.reference.rows.toLocaleString()} rows).
          </p>
          <table className="plain" aria-label="feature drift">
            <thead>
              <tr>
                <th>feature</th>
                <th>test</th>
                <th>score</th>
                <th>threshold</th>
                <th>drift</th>
                <th>missing</th>
                <th>out of range / unseen</th>
              </tr>
            </thead>
            <tbody>
              {drift.data.features.map((f) => (
                <tr key={f.column}>
                  <td className="mono">{f.column}</td>
                  <td>
                    {f.status === 'no_data'
                      ? (f.reason ?? 'no data')
                      : `${f.test} (${f.scoreKind === 'p_value' ? 'p-value' : 'distance'})`}
                  </td>
                  <td className="num">{formatNumber(f.score)}</td>
                  <td className="num">{formatNumber(f.threshold)}</td>
                  <td className={f.drifted ? 'bad-text' : 'ok-text'}>
                    {f.status === 'no_data' ? '—' : f.drifted ? 'drifted' : 'ok'}
                  </td>
                  <td className="num">{pct(f.quality?.missingShare)}</td>
                  <td className="num">{pct(f.quality?.outOfRangeShare ?? f.quality?.unseenCategoryShare)}</td>
                </tr>
              ))}
              <tr>
                <td className="mono">prediction</td>
                <td>
                  {drift.data.prediction.status === 'tested'
                    ? drift.data.prediction.test
                    : (drift.data.prediction.reason ?? drift.data.prediction.status)}
                </td>
                <td className="num">{formatNumber(drift.data.prediction.score)}</td>
                <td className="num">{formatNumber(drift.data.prediction.threshold)}</td>
                <td className={drift.data.prediction.drifted ? 'bad-text' : 'ok-text'}>
                  {drift.data.prediction.status === 'tested'
                    ? drift.data.prediction.drifted
                      ? 'drifted'
                      : 'ok'
                    : '—'}
                </td>
                <td />
                <td />
              </tr>
            </tbody>
          </table>
          <h3>Reference vs current</h3>
          <DriftHistogramLegend />
          <div
            style={{ display: 'grid', gridTemplateColumns: 'repeat(auto-fill, minmax(240px, 1fr))', gap: 8 }}
          >
            {drift.data.features
              .filter((f) => f.histogram)
              .map((f) => (
                <DriftHistogram
                  key={f.column}
                  feature={f.column}
                  h={f.histogram!}
                  drifted={f.drifted}
                  tested={f.status === 'tested'}
                />
              ))}
          </div>
        </>
      )}
    </div>
  );
}

function modelNameOf(uri: string): string {
  return uri.replace(/^models:\/+/, '').split(/[@/]/)[0]!;
}

interface StoredAlert {
  id: number;
  rule: string;
  kind: string;
  version: string;
  status: 'firing' | 'resolved';
  fired_time: number;
  resolved_time?: number;
  evidence: Record<string, unknown>;
  acked_by?: string;
}
interface RuleSet {
  alias?: string;
  version?: string;
  window: string;
  rules: ({ name: string; kind: string } & Record<string, unknown>)[];
  updated_by: string;
  updated_time: number;
}
interface CheckResult {
  version: string;
  rules: { rule: string; kind: string; condition: string; action: string; value?: number }[];
}

/** A model's alert rules, its alerts (ack), silences and an on-demand check (`/api/kiln/monitor/…`). */
function AlertsPanel({ model }: { model: string }) {
  const client = useQueryClient();
  const base = `${KILN}/monitor`;
  const rules = useQuery({
    queryKey: ['alert-rules', model],
    retry: false,
    queryFn: async () => {
      try {
        return (await api<{ rule_set: RuleSet }>(`${base}/alerts/rules/${encodeURIComponent(model)}`))
          .rule_set;
      } catch (e) {
        if (e instanceof ApiError && e.status === 404) return e;
        throw e;
      }
    },
  });
  const alerts = useQuery({
    queryKey: ['alerts', model],
    retry: false,
    queryFn: async () =>
      (await api<{ alerts: StoredAlert[] }>(`${base}/alerts`, { query: { model, limit: 100 } })).alerts,
  });
  const refresh = () => {
    void client.invalidateQueries({ queryKey: ['alerts', model] });
  };
  const ack = useMutation({
    mutationFn: (id: number) => api(`${base}/alerts/${id}/ack`, { body: {} }),
    onSettled: refresh,
  });
  const silence = useMutation({
    mutationFn: (rule: string) =>
      api<{ silence: { until?: number; until_time?: number } }>(`${base}/alerts/silence`, {
        body: { model, rule, for: '1h' },
      }),
  });
  const check = useMutation({
    mutationFn: async () => (await api<{ check: CheckResult }>(`${base}/check`, { body: { model } })).check,
    onSettled: refresh,
  });
  const ruleSet = rules.data instanceof ApiError ? null : rules.data;
  return (
    <div className="card" style={{ marginTop: 12 }} data-testid={`alerts-${model}`}>
      <div className="row" style={{ marginBottom: 8 }}>
        <h3 style={{ margin: 0 }}>Alerts: {model}</h3>
        {ruleSet && (
          <span className="muted">
            watching {ruleSet.version ? `version ${ruleSet.version}` : `@${ruleSet.alias ?? 'champion'}`},
            window {ruleSet.window}
          </span>
        )}
        <div className="grow" />
        {ruleSet && (
          <button type="button" onClick={() => check.mutate()} disabled={check.isPending}>
            Check now
          </button>
        )}
      </div>
      {rules.isPending ? (
        <Loading what="alert rules" />
      ) : rules.isError ? (
        <ErrorState error={rules.error} />
      ) : !ruleSet ? (
        <Empty>
          {rules.data instanceof ApiError && rules.data.code === 'ENDPOINT_NOT_FOUND' ? (
            'Alerts are not available on this server yet.'
          ) : (
            <>
              No alert rules for {model}: <code>kiln monitor alerts set {model} rules.yaml</code>.
            </>
          )}
        </Empty>
      ) : (
        <table className="plain" aria-label={`alert rules of ${model}`}>
          <thead>
            <tr>
              <th>rule</th>
              <th>kind</th>
              <th>condition</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {ruleSet.rules.map((r) => (
              <tr key={r.name}>
                <td className="mono">{r.name}</td>
                <td>{r.kind}</td>
                <td className="mono">
                  {Object.entries(r)
                    .filter(([k]) => k !== 'name' && k !== 'kind')
                    .map(([k, v]) => `${k}=${String(v)}`)
                    .join(' ')}
                </td>
                <td>
                  <button type="button" onClick={() => silence.mutate(r.name)} disabled={silence.isPending}>
                    Silence 1h
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {silence.isSuccess && (
        <p className="ok-text" role="status">
          Silenced {String(silence.variables)} for 1 hour.
        </p>
      )}
      {silence.isError && <ErrorState error={silence.error} />}
      {check.isError && <ErrorState error={check.error} />}
      {check.data && (
        <table className="plain" aria-label="check outcome" style={{ marginTop: 8 }}>
          <thead>
            <tr>
              <th>rule (v{check.data.version})</th>
              <th>condition</th>
              <th>action</th>
              <th>value</th>
            </tr>
          </thead>
          <tbody>
            {check.data.rules.map((r) => (
              <tr key={r.rule}>
                <td className="mono">{r.rule}</td>
                <td
                  className={
                    r.condition === 'firing' ? 'bad-text' : r.condition === 'ok' ? 'ok-text' : 'muted'
                  }
                >
                  {r.condition}
                </td>
                <td>{r.action}</td>
                <td className="num">{formatNumber(r.value)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <h3>Alert history</h3>
      {alerts.isPending ? (
        <Loading what="alerts" />
      ) : alerts.isError ? (
        alerts.error instanceof ApiError && alerts.error.code === 'ENDPOINT_NOT_FOUND' ? (
          <Empty>Alerts are not available on this server yet.</Empty>
        ) : (
          <ErrorState error={alerts.error} />
        )
      ) : alerts.data.length === 0 ? (
        <Empty>No alert has fired for {model}.</Empty>
      ) : (
        <table className="plain" aria-label={`alerts of ${model}`}>
          <thead>
            <tr>
              <th>#</th>
              <th>rule</th>
              <th>version</th>
              <th>status</th>
              <th>fired</th>
              <th>resolved</th>
              <th>evidence</th>
              <th>ack</th>
            </tr>
          </thead>
          <tbody>
            {alerts.data.map((a) => (
              <tr key={a.id}>
                <td>{a.id}</td>
                <td className="mono">{a.rule}</td>
                <td>v{a.version}</td>
                <td className={a.status === 'firing' ? 'bad-text' : 'ok-text'}>{a.status}</td>
                <td>{formatTime(a.fired_time)}</td>
                <td>{formatTime(a.resolved_time)}</td>
                <td
                  className="mono"
                  style={{
                    maxWidth: 320,
                    overflow: 'hidden',
                    textOverflow: 'ellipsis',
                    whiteSpace: 'nowrap',
                  }}
                  title={JSON.stringify(a.evidence)}
                >
                  {JSON.stringify(a.evidence)}
                </td>
                <td>
                  {a.acked_by ? (
                    `acked by ${a.acked_by}`
                  ) : a.status === 'firing' ? (
                    <button type="button" onClick={() => ack.mutate(a.id)} disabled={ack.isPending}>
                      Ack
                    </button>
                  ) : (
                    ''
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {ack.isError && <ErrorState error={ack.error} />}
    </div>
  );
}

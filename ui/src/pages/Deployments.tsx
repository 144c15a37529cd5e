import { useQuery } from '@tanstack/react-query';
import { PALETTE } from '../components/Chart.js';
import { Empty, KeyValues, Link, NavTable, QueryView } from '../components/common.js';
import { api, KILN } from '../lib/api.js';
import { formatTime } from '../lib/format.js';

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
              <div className="grid2">
                <Empty>
                  Latency and error charts: this server does not expose serving metrics yet. A{' '}
                  <code>kiln serve deployments:/{name}</code> process exports them on its own{' '}
                  <code>/metrics</code> (Prometheus).
                </Empty>
                <Empty>
                  Drift, live performance and alerts: not available on this server yet. Labels for the
                  prediction log are attached with <code>kiln monitor feedback</code>.
                </Empty>
              </div>
            </>
          );
        }}
      </QueryView>
    </>
  );
}

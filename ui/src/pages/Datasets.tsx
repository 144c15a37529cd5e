import { useQuery } from '@tanstack/react-query';
import { Link, NavTable, QueryView } from '../components/common.js';
import { api, KILN } from '../lib/api.js';
import { formatBytes, formatNumber, formatTime } from '../lib/format.js';
import { setSearch, useLocation } from '../lib/router.js';
import { Bars } from './Run.js';

interface DatasetSummary {
  name: string;
  description: string | null;
  latestVersion: number;
  versions: number;
  rows: number;
  lastUpdatedTime: number;
}
interface DatasetVersion {
  name: string;
  version: number;
  hash: string;
  rows: number;
  sizeBytes: number;
  schema: { columns: { name: string; type: string; storage: string; levels?: string[] }[] };
  source?: { pattern?: string; format?: string };
  lineage?: { op: string };
  createdTime?: number;
  creationTime?: number;
}
interface ColumnProfile {
  kind: 'numeric' | 'categorical' | string;
  name: string;
  type: string;
  count: number;
  missing: number;
  distinct?: number;
  min?: number;
  max?: number;
  mean?: number;
  std?: number;
  quantiles?: Record<string, number>;
  histogram?: { edges: number[]; counts: number[] };
  counts?: Record<string, number>;
  topK?: { value: string; count: number }[];
  otherCount?: number;
}
interface Validation {
  passed: boolean;
  rows: number;
  checkedAt: string;
  results: { name: string; passed: boolean; failingCount: number; failingShare: number; message: string }[];
}

export function DatasetsPage() {
  const datasets = useQuery({
    queryKey: ['datasets'],
    queryFn: async () => (await api<{ datasets: DatasetSummary[] }>(`${KILN}/datasets`)).datasets,
  });
  return (
    <>
      <h1>Datasets</h1>
      <QueryView
        query={datasets}
        what="datasets"
        isEmpty={(d) => d.length === 0}
        empty={
          <>
            No datasets yet: <code>kiln data ingest file.csv --name NAME</code>.
          </>
        }
      >
        {(list) => (
          <NavTable
            label="datasets"
            rows={list}
            rowKey={(d) => d.name}
            href={(d) => `/datasets/${encodeURIComponent(d.name)}`}
            columns={[
              {
                title: 'Name',
                cell: (d) => <Link to={`/datasets/${encodeURIComponent(d.name)}`}>{d.name}</Link>,
              },
              { title: 'Versions', cell: (d) => d.versions, num: true },
              { title: 'Latest', cell: (d) => `v${d.latestVersion}` },
              { title: 'Rows (latest)', cell: (d) => d.rows.toLocaleString(), num: true },
              { title: 'Updated', cell: (d) => formatTime(d.lastUpdatedTime) },
              { title: 'Description', cell: (d) => d.description ?? '' },
            ]}
          />
        )}
      </QueryView>
    </>
  );
}

export function DatasetPage({ name }: { name: string }) {
  const { search } = useLocation();
  const versions = useQuery({
    queryKey: ['dataset-versions', name],
    queryFn: async () =>
      (await api<{ versions: DatasetVersion[] }>(`${KILN}/datasets/${encodeURIComponent(name)}/versions`))
        .versions,
  });
  return (
    <>
      <div className="crumbs">
        <Link to="/datasets">Datasets</Link> / {name}
      </div>
      <h1>{name}</h1>
      <QueryView query={versions} what="versions" isEmpty={(v) => v.length === 0}>
        {(vs) => {
          const chosen = search.get('version') ?? String(vs[vs.length - 1]!.version);
          const v = vs.find((x) => String(x.version) === chosen) ?? vs[vs.length - 1]!;
          return (
            <>
              <NavTable
                label="dataset versions"
                rows={[...vs].reverse()}
                rowKey={(x) => String(x.version)}
                href={(x) => `/datasets/${encodeURIComponent(name)}?version=${x.version}`}
                columns={[
                  {
                    title: 'Version',
                    cell: (x) => (
                      <a
                        href={`?version=${x.version}`}
                        onClick={(e) => {
                          e.preventDefault();
                          setSearch({ version: String(x.version) });
                        }}
                      >
                        v{x.version}
                        {String(x.version) === String(v.version) ? ' ◀' : ''}
                      </a>
                    ),
                  },
                  { title: 'Rows', cell: (x) => x.rows.toLocaleString(), num: true },
                  { title: 'Size', cell: (x) => formatBytes(x.sizeBytes), num: true },
                  { title: 'Hash', cell: (x) => <span className="mono">{x.hash.slice(0, 12)}</span> },
                  { title: 'Made by', cell: (x) => x.lineage?.op ?? '' },
                  { title: 'Source', cell: (x) => <span className="mono">{x.source?.pattern ?? ''}</span> },
                ]}
              />
              <VersionView name={name} version={v} />
            </>
          );
        }}
      </QueryView>
    </>
  );
}

function VersionView({ name, version }: { name: string; version: DatasetVersion }) {
  const base = `${KILN}/datasets/${encodeURIComponent(name)}/versions/${version.version}`;
  const profile = useQuery({
    queryKey: ['profile', name, version.version],
    queryFn: async () =>
      (await api<{ profile: { rows: number; columns: ColumnProfile[] } }>(`${base}/profile`)).profile,
  });
  const validations = useQuery({
    queryKey: ['validations', name, version.version],
    queryFn: async () => (await api<{ validations: Validation[] }>(`${base}/validations`)).validations,
  });
  return (
    <>
      <h2>Version {version.version}: schema</h2>
      <table className="plain" aria-label="schema">
        <thead>
          <tr>
            <th>column</th>
            <th>type</th>
            <th>storage</th>
            <th>levels</th>
          </tr>
        </thead>
        <tbody>
          {version.schema.columns.map((c) => (
            <tr key={c.name}>
              <td className="mono">{c.name}</td>
              <td>{c.type}</td>
              <td className="mono">{c.storage}</td>
              <td className="mono">
                {c.levels?.slice(0, 20).join(', ')}
                {(c.levels?.length ?? 0) > 20 ? ` … (${c.levels!.length})` : ''}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <h2>Validation</h2>
      <QueryView
        query={validations}
        what="validation reports"
        isEmpty={(v) => v.length === 0}
        empty={
          <>
            Never validated:{' '}
            <code>
              kiln data validate {name}@{version.version} --expect expectations.yaml
            </code>
            .
          </>
        }
      >
        {(list) =>
          list.map((val) => (
            <div key={val.checkedAt} className={val.passed ? 'card' : 'refusal'} style={{ marginBottom: 8 }}>
              <strong className={val.passed ? 'ok-text' : 'bad-text'}>
                {val.passed ? 'PASSED' : 'FAILED'}
              </strong>{' '}
              <span className="muted">
                {val.checkedAt}, {val.rows.toLocaleString()} rows
              </span>
              <table className="plain" aria-label="expectations">
                <tbody>
                  {val.results.map((r) => (
                    <tr key={r.name}>
                      <td className="mono">{r.name}</td>
                      <td className={r.passed ? 'ok-text' : 'bad-text'}>{r.passed ? 'passed' : 'failed'}</td>
                      <td className="num">
                        {r.failingCount} failing ({(r.failingShare * 100).toFixed(2)}%)
                      </td>
                      <td>{r.message}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          ))
        }
      </QueryView>
      <h2>Profile</h2>
      <QueryView query={profile} what="profile">
        {(p) => (
          <div className="grid3">
            {p.columns.map((c) => (
              <ColumnCard key={c.name} column={c} rows={p.rows} />
            ))}
          </div>
        )}
      </QueryView>
    </>
  );
}

function ColumnCard({ column: c, rows }: { column: ColumnProfile; rows: number }) {
  const missingShare = rows ? c.missing / rows : 0;
  return (
    <div className="card" data-testid={`profile-${c.name}`}>
      <div className="row">
        <strong className="mono">{c.name}</strong>
        <span className="badge">{c.type}</span>
        <span className={c.missing ? 'bad-text' : 'muted'}>
          {c.missing.toLocaleString()} missing ({(missingShare * 100).toFixed(1)}%)
        </span>
      </div>
      {c.kind === 'numeric' && c.histogram ? (
        <>
          <Histogram edges={c.histogram.edges} counts={c.histogram.counts} />
          <div className="muted mono" style={{ fontSize: 12 }}>
            min {formatNumber(c.min)} · p50 {formatNumber(c.quantiles?.p50)} · max {formatNumber(c.max)} ·
            mean {formatNumber(c.mean)} · std {formatNumber(c.std)} · {c.distinct?.toLocaleString()} distinct
          </div>
        </>
      ) : c.counts || c.topK ? (
        <>
          <Bars
            label={`top categories of ${c.name}`}
            items={(c.topK ?? Object.entries(c.counts ?? {}).map(([value, count]) => ({ value, count })))
              .slice(0, 10)
              .map((t) => ({ label: t.value, value: t.count }))}
            format={(v) => v.toLocaleString()}
          />
          <div className="muted" style={{ fontSize: 12 }}>
            {c.distinct?.toLocaleString()} distinct
            {c.otherCount ? `, ${c.otherCount.toLocaleString()} in other categories` : ''}
          </div>
        </>
      ) : (
        <p className="muted">No distribution for this column type.</p>
      )}
    </div>
  );
}

/** Bars of a stored histogram (bin edges and counts as the profile holds them). */
export function Histogram({
  edges,
  counts,
  compare,
}: {
  edges: number[];
  counts: number[];
  compare?: number[];
}) {
  const W = 300;
  const H = 90;
  const max = Math.max(...counts, ...(compare ?? []), 1);
  const bw = W / Math.max(1, counts.length);
  const bins = counts.map((count, i) => ({ count, lo: edges[i]!, hi: edges[i + 1]!, x: i * bw }));
  return (
    <svg
      width="100%"
      viewBox={`0 0 ${W} ${H + 14}`}
      role="img"
      aria-label="histogram"
      preserveAspectRatio="none"
    >
      {bins.map((b) => (
        <rect
          key={b.lo}
          x={b.x + 0.5}
          width={Math.max(1, bw - 1)}
          y={H - (H * b.count) / max}
          height={(H * b.count) / max}
          fill="var(--accent)"
          opacity={0.8}
        >
          <title>
            [{formatNumber(b.lo)}, {formatNumber(b.hi)}): {b.count}
          </title>
        </rect>
      ))}
      <text x={0} y={H + 12}>
        {formatNumber(edges[0])}
      </text>
      <text x={W} y={H + 12} textAnchor="end">
        {formatNumber(edges[edges.length - 1])}
      </text>
    </svg>
  );
}

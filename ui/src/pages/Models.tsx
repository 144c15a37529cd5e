import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { ErrorState, KeyValues, Link, NavTable, QueryView, Tabs } from '../components/common.js';
import { ApiError, api, KILN, MLFLOW } from '../lib/api.js';
import { formatNumber, formatTime } from '../lib/format.js';

interface Version {
  name: string;
  version: string;
  creation_timestamp: number;
  user_id?: string;
  source: string;
  run_id?: string;
  status: string;
  aliases?: string[];
  tags?: { key: string; value: string }[];
  description?: string;
}
interface Model {
  name: string;
  creation_timestamp: number;
  last_updated_timestamp: number;
  description?: string;
  aliases?: { alias: string; version: string }[];
  latest_versions?: Version[];
  tags?: { key: string; value: string }[];
}
interface Rule {
  rule: string;
  outcome: string;
  detail: string;
  candidate?: number;
  incumbent?: number;
}
interface Promotion {
  promotion_id: number;
  version: string;
  alias: string;
  decision: string;
  incumbent_version: string | null;
  rules: Rule[];
  actor: string;
  time: number;
}

export function ModelsPage() {
  const models = useQuery({
    queryKey: ['models'],
    queryFn: async () => {
      const out: Model[] = [];
      let page_token: string | undefined;
      do {
        const r = await api<{ registered_models?: Model[]; next_page_token?: string }>(
          `${MLFLOW}/registered-models/search`,
          {
            query: { max_results: 1000, page_token },
          },
        );
        out.push(...(r.registered_models ?? []));
        page_token = r.next_page_token;
      } while (page_token && out.length < 10_000);
      return out;
    },
  });
  return (
    <>
      <h1>Models</h1>
      <QueryView
        query={models}
        what="registered models"
        isEmpty={(m) => m.length === 0}
        empty={
          <>
            No registered models yet: <code>kiln models register NAME --run RUN_ID</code>.
          </>
        }
      >
        {(list) => (
          <NavTable
            label="registered models"
            rows={list}
            rowKey={(m) => m.name}
            href={(m) => `/models/${encodeURIComponent(m.name)}`}
            columns={[
              {
                title: 'Name',
                cell: (m) => <Link to={`/models/${encodeURIComponent(m.name)}`}>{m.name}</Link>,
              },
              { title: 'Latest version', cell: (m) => m.latest_versions?.map((v) => v.version).join(', ') },
              {
                title: 'Aliases',
                cell: (m) => (m.aliases ?? []).map((a) => `@${a.alias} → ${a.version}`).join(', '),
              },
              { title: 'Updated', cell: (m) => formatTime(m.last_updated_timestamp) },
              { title: 'Description', cell: (m) => m.description ?? '' },
            ]}
          />
        )}
      </QueryView>
    </>
  );
}

export function ModelPage({ name, tab }: { name: string; tab: string }) {
  const base = `/models/${encodeURIComponent(name)}`;
  const model = useQuery({
    queryKey: ['model', name],
    queryFn: async () =>
      (await api<{ registered_model: Model }>(`${MLFLOW}/registered-models/get`, { query: { name } }))
        .registered_model,
  });
  const versions = useQuery({
    queryKey: ['model-versions', name],
    queryFn: async () =>
      (
        await api<{ model_versions?: Version[] }>(`${MLFLOW}/model-versions/search`, {
          query: {
            filter: `name='${name.replace(/'/g, "\\'")}'`,
            max_results: 1000,
            order_by: 'version_number DESC',
          },
        })
      ).model_versions ?? [],
  });
  const tabs = [
    { id: 'versions', label: 'Versions', to: base },
    { id: 'promote', label: 'Promote', to: `${base}/promote` },
    { id: 'history', label: 'Alias history', to: `${base}/history` },
    { id: 'outcomes', label: 'Outcomes', to: `${base}/outcomes` },
  ];
  const versionParam = new URLSearchParams(location.search).get('version');
  return (
    <>
      <div className="crumbs">
        <Link to="/models">Models</Link> / {name}
      </div>
      <h1>{name}</h1>
      <QueryView query={model} what="model">
        {(m) => (
          <>
            <div className="row">
              {(m.aliases ?? []).length === 0 ? (
                <span className="muted">No aliases.</span>
              ) : (
                (m.aliases ?? []).map((a) => (
                  <span key={a.alias} className="badge">
                    @{a.alias} → v{a.version}
                  </span>
                ))
              )}
              {m.description && <span className="muted">{m.description}</span>}
            </div>
            <Tabs tabs={tabs} active={tab === 'versions' && versionParam ? 'versions' : tab} />
            {tab === 'versions' && (
              <QueryView query={versions} what="versions" isEmpty={(v) => v.length === 0}>
                {(vs) => (
                  <Versions name={name} versions={vs} model={m} selected={versionParam ?? vs[0]?.version} />
                )}
              </QueryView>
            )}
            {tab === 'promote' && (
              <QueryView query={versions} what="versions" isEmpty={(v) => v.length === 0}>
                {(vs) => <Promote name={name} versions={vs} />}
              </QueryView>
            )}
            {tab === 'history' && <AliasHistory name={name} model={m} />}
            {tab === 'outcomes' && <Outcomes name={name} />}
          </>
        )}
      </QueryView>
    </>
  );
}

function Versions({
  name,
  versions,
  selected,
}: {
  name: string;
  versions: Version[];
  model: Model;
  selected?: string;
}) {
  const base = `/models/${encodeURIComponent(name)}`;
  return (
    <>
      <NavTable
        label="model versions"
        rows={versions}
        rowKey={(v) => v.version}
        href={(v) => `${base}?version=${v.version}`}
        columns={[
          { title: 'Version', cell: (v) => <Link to={`${base}?version=${v.version}`}>v{v.version}</Link> },
          { title: 'Aliases', cell: (v) => (v.aliases ?? []).map((a) => `@${a}`).join(' ') },
          {
            title: 'Run',
            cell: (v) =>
              v.run_id ? <Link to={`/runs/${v.run_id}`}>{v.run_id.slice(0, 12)}</Link> : v.source,
          },
          { title: 'Registered by', cell: (v) => v.user_id ?? '' },
          { title: 'Created', cell: (v) => formatTime(v.creation_timestamp) },
          { title: 'Status', cell: (v) => v.status },
        ]}
      />
      {selected && <VersionDetail name={name} version={selected} />}
    </>
  );
}

interface Card {
  fields: Record<string, unknown>;
  model: Record<string, unknown>;
  training_data?: {
    dataset?: { name: string; version: number; rows?: number };
    split?: Record<string, string>;
    validation?: { passed: boolean; expectations: number; checked_at: string };
  };
  evaluation?: { parts?: Record<string, Record<string, number>>; other?: Record<string, number> };
  parameters?: { key: string; value: string }[];
  signature?: {
    inputs: {
      name: string;
      type: string;
      levels?: string[];
      range?: { min: number; max: number; missing: number };
    }[];
    target?: { name: string; expr?: string; classes?: string[] };
    output?: { task: string; kind: string; classes?: string[] };
  };
}
interface Lineage {
  model: { name: string; version: string; source: string; registered_by?: string };
  run?: { run_id: string; run_name?: string; experiment_id: string; status: string };
  split?: Record<string, string>;
  dataset?: { name: string; version: number; hash: string; parents?: unknown[] };
  aliases: string[];
  deployments: { deployment: string; via: string; traffic: number; shadow: boolean }[];
  promotions: unknown[];
}

function VersionDetail({ name, version }: { name: string; version: string }) {
  const card = useQuery({
    queryKey: ['card', name, version],
    queryFn: async () =>
      (
        await api<{ model_card: Card }>(
          `${KILN}/registry/models/${encodeURIComponent(name)}/versions/${encodeURIComponent(version)}/card`,
        )
      ).model_card,
  });
  const lineage = useQuery({
    queryKey: ['lineage', name, version],
    queryFn: async () =>
      (
        await api<{ lineage: Lineage }>(`${KILN}/registry/lineage`, {
          query: { uri: `models:/${name}/${version}` },
        })
      ).lineage,
  });
  return (
    <>
      <h2>Version {version}: lineage</h2>
      <QueryView query={lineage} what="lineage">
        {(l) => (
          <div className="lineage" data-testid="lineage">
            <div className="node">
              <div className="muted">dataset</div>
              {l.dataset ? (
                <Link to={`/datasets/${encodeURIComponent(l.dataset.name)}?version=${l.dataset.version}`}>
                  {l.dataset.name}@{l.dataset.version}
                </Link>
              ) : (
                <span className="muted">not recorded</span>
              )}
              {l.split && <div className="muted">split: {l.split.method}</div>}
            </div>
            <div className="arrow">→</div>
            <div className="node">
              <div className="muted">run</div>
              {l.run ? (
                <Link to={`/runs/${l.run.run_id}`}>{l.run.run_name ?? l.run.run_id.slice(0, 12)}</Link>
              ) : (
                <span className="muted">{l.model.source}</span>
              )}
            </div>
            <div className="arrow">→</div>
            <div className="node">
              <div className="muted">model version</div>
              {l.model.name} v{l.model.version}
              <div>{l.aliases.map((a) => `@${a}`).join(' ')}</div>
            </div>
            <div className="arrow">→</div>
            <div className="node">
              <div className="muted">deployments</div>
              {l.deployments.length === 0 ? (
                <span className="muted">none</span>
              ) : (
                l.deployments.map((d) => (
                  <div key={d.deployment}>
                    <Link to={`/deployments/${encodeURIComponent(d.deployment)}`}>{d.deployment}</Link>{' '}
                    <span className="muted">
                      {d.shadow ? 'shadow' : `${Math.round(d.traffic * 100)}% of traffic`}
                    </span>
                  </div>
                ))
              )}
            </div>
          </div>
        )}
      </QueryView>
      <QueryView query={card} what="model card">
        {(c) => (
          <div className="grid2" style={{ marginTop: 14 }}>
            <div className="card">
              <h2 style={{ marginTop: 0 }}>Model card</h2>
              <KeyValues
                entries={[
                  ...Object.entries(c.fields ?? {}).map(([k, v]) => [k, String(v)] as [string, string]),
                  ['learner', String(c.model.learner ?? '')],
                  ['task', String(c.model.task ?? '')],
                  ['registered by', String(c.model.registered_by ?? '')],
                  [
                    'training data',
                    c.training_data?.dataset
                      ? `${c.training_data.dataset.name}@${c.training_data.dataset.version} (${c.training_data.dataset.rows ?? '?'} rows)`
                      : '—',
                  ],
                  [
                    'data validation',
                    c.training_data?.validation
                      ? c.training_data.validation.passed
                        ? `passed (${c.training_data.validation.expectations} expectations)`
                        : 'FAILED'
                      : 'none',
                  ],
                ]}
              />
              {c.evaluation?.parts && (
                <>
                  <h3>Evaluation</h3>
                  <table className="plain" aria-label="card evaluation">
                    <thead>
                      <tr>
                        <th>metric</th>
                        {Object.keys(c.evaluation.parts).map((p) => (
                          <th key={p}>{p}</th>
                        ))}
                      </tr>
                    </thead>
                    <tbody>
                      {Object.keys(Object.values(c.evaluation.parts)[0] ?? {}).map((m) => (
                        <tr key={m}>
                          <td className="mono">{m}</td>
                          {Object.entries(c.evaluation!.parts!).map(([p, vals]) => (
                            <td key={p} className="num">
                              {formatNumber(vals[m])}
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
              <h2 style={{ marginTop: 0 }}>Signature</h2>
              {c.signature ? (
                <>
                  <table className="plain" aria-label="signature inputs">
                    <thead>
                      <tr>
                        <th>input</th>
                        <th>type</th>
                        <th>seen in training</th>
                      </tr>
                    </thead>
                    <tbody>
                      {c.signature.inputs.map((i) => (
                        <tr key={i.name}>
                          <td className="mono">{i.name}</td>
                          <td>{i.type}</td>
                          <td className="mono">
                            {i.levels
                              ? i.levels.join(', ')
                              : i.range
                                ? `${formatNumber(i.range.min)} … ${formatNumber(i.range.max)}, ${i.range.missing} missing`
                                : ''}
                          </td>
                        </tr>
                      ))}
                    </tbody>
                  </table>
                  <p>
                    target <code>{c.signature.target?.name}</code>
                    {c.signature.target?.expr ? (
                      <>
                        {' '}
                        = <code>{c.signature.target.expr}</code>
                      </>
                    ) : null}
                    ; output{' '}
                    <code>
                      {c.signature.output?.task} {c.signature.output?.kind}
                    </code>
                    {c.signature.output?.classes ? ` over ${c.signature.output.classes.join(', ')}` : ''}
                  </p>
                </>
              ) : (
                <p className="muted">No signature recorded.</p>
              )}
            </div>
          </div>
        )}
      </QueryView>
    </>
  );
}

function Promote({ name, versions }: { name: string; versions: Version[] }) {
  const client = useQueryClient();
  const policy = useQuery({
    queryKey: ['policy', name],
    queryFn: async () => {
      try {
        return (
          await api<{
            policy: {
              policy: { aliases?: string[]; approval?: { required: boolean; role?: string } };
              yaml: string;
            };
          }>(`${KILN}/registry/models/${encodeURIComponent(name)}/policy`)
        ).policy;
      } catch (e) {
        if (e instanceof ApiError && e.code === 'RESOURCE_DOES_NOT_EXIST') return null;
        throw e;
      }
    },
  });
  const [version, setVersion] = useState(versions[0]?.version ?? '');
  const [alias, setAlias] = useState('');
  const [reason, setReason] = useState('');
  const aliasValue = alias || policy.data?.policy.aliases?.[0] || 'champion';
  const promote = useMutation({
    mutationFn: async () =>
      (
        await api<{ promotion: Promotion }>(`${KILN}/registry/models/${encodeURIComponent(name)}/promote`, {
          body: { version, alias: aliasValue, ...(reason ? { reason } : {}) },
        })
      ).promotion,
    onSettled: () => {
      void client.invalidateQueries({ queryKey: ['model', name] });
      void client.invalidateQueries({ queryKey: ['model-versions', name] });
      void client.invalidateQueries({ queryKey: ['promotions', name] });
    },
  });
  const approve = useMutation({
    mutationFn: async () =>
      api<{ approval: unknown }>(`${KILN}/registry/models/${encodeURIComponent(name)}/approve`, {
        body: { version, alias: aliasValue, ...(reason ? { comment: reason } : {}) },
      }),
  });
  return (
    <div className="grid2">
      <div className="card">
        <h2 style={{ marginTop: 0 }}>Promote a version</h2>
        <div className="row">
          <label>
            version{' '}
            <select aria-label="version" value={version} onChange={(e) => setVersion(e.target.value)}>
              {versions.map((v) => (
                <option key={v.version} value={v.version}>
                  v{v.version}
                </option>
              ))}
            </select>
          </label>
          <label>
            alias{' '}
            <input
              aria-label="alias"
              value={aliasValue}
              onChange={(e) => setAlias(e.target.value)}
              size={12}
            />
          </label>
        </div>
        <div className="row" style={{ marginTop: 8 }}>
          <input
            className="grow"
            aria-label="reason"
            placeholder="reason / approval comment (recorded in the audit log)"
            value={reason}
            onChange={(e) => setReason(e.target.value)}
          />
        </div>
        <div className="row" style={{ marginTop: 10 }}>
          <button
            type="button"
            className="primary"
            onClick={() => promote.mutate()}
            disabled={promote.isPending}
          >
            Promote v{version} to @{aliasValue}
          </button>
          <button type="button" onClick={() => approve.mutate()} disabled={approve.isPending}>
            Approve v{version} for @{aliasValue}
          </button>
        </div>
        {approve.isSuccess && (
          <p className="ok-text" role="status">
            Approval recorded for v{version} → @{aliasValue}.
          </p>
        )}
        {approve.isError && <ErrorState error={approve.error} />}
        {promote.isError && <ErrorState error={promote.error} />}
        {promote.data && <Decision promotion={promote.data} />}
      </div>
      <div className="card">
        <h2 style={{ marginTop: 0 }}>Promotion policy</h2>
        {policy.isPending ? (
          <p className="muted">Loading…</p>
        ) : policy.isError ? (
          <ErrorState error={policy.error} />
        ) : policy.data ? (
          <pre className="preview">{policy.data.yaml}</pre>
        ) : (
          <p className="muted">No policy: promotions move the alias without a gate.</p>
        )}
      </div>
    </div>
  );
}

function Decision({ promotion }: { promotion: Promotion }) {
  const accepted = promotion.decision === 'accepted';
  return (
    <div
      className={accepted ? 'card' : 'refusal'}
      role="status"
      data-testid="promotion-decision"
      style={{ marginTop: 10 }}
    >
      <strong className={accepted ? 'ok-text' : 'bad-text'}>
        {accepted ? 'ACCEPTED' : 'REFUSED'}: v{promotion.version} → @{promotion.alias}
      </strong>
      {promotion.incumbent_version && <span className="muted"> (was v{promotion.incumbent_version})</span>}
      <table className="plain" aria-label="gate rules" style={{ marginTop: 6 }}>
        <tbody>
          {promotion.rules.map((r) => (
            <tr key={r.rule}>
              <td className="mono">{r.rule}</td>
              <td className={`outcome-${r.outcome}`}>{r.outcome}</td>
              <td>{r.detail}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function AliasHistory({ name, model }: { name: string; model: Model }) {
  const promotions = useQuery({
    queryKey: ['promotions', name],
    queryFn: async () =>
      (
        await api<{ promotions: Promotion[] }>(
          `${KILN}/registry/models/${encodeURIComponent(name)}/promotions`,
        )
      ).promotions,
  });
  const aliases = [...new Set([...(model.aliases ?? []).map((a) => a.alias)])];
  return (
    <>
      {aliases.map((a) => (
        <AliasEvents key={a} name={name} alias={a} />
      ))}
      <h2>Promotion requests</h2>
      <QueryView
        query={promotions}
        what="promotions"
        isEmpty={(p) => p.length === 0}
        empty="No promotion has been asked for yet."
      >
        {(list) => (
          <table className="plain" aria-label="promotions">
            <thead>
              <tr>
                <th>#</th>
                <th>time</th>
                <th>version → alias</th>
                <th>decision</th>
                <th>by</th>
                <th>why</th>
              </tr>
            </thead>
            <tbody>
              {[...list].reverse().map((p) => (
                <tr key={p.promotion_id}>
                  <td>{p.promotion_id}</td>
                  <td>{formatTime(p.time)}</td>
                  <td>
                    v{p.version} → @{p.alias}
                  </td>
                  <td className={p.decision === 'accepted' ? 'ok-text' : 'bad-text'}>{p.decision}</td>
                  <td>{p.actor}</td>
                  <td>
                    {p.rules
                      .filter((r) => r.outcome === 'failed')
                      .map((r) => r.detail)
                      .join('; ')}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </QueryView>
    </>
  );
}

function AliasEvents({ name, alias }: { name: string; alias: string }) {
  const events = useQuery({
    queryKey: ['alias-history', name, alias],
    queryFn: async () =>
      (
        await api<{
          events: {
            from_version: string | null;
            to_version: string | null;
            actor?: string;
            user?: string;
            time: number;
            reason?: string;
          }[];
        }>(`${KILN}/registry/models/${encodeURIComponent(name)}/aliases/${encodeURIComponent(alias)}/history`)
      ).events,
  });
  return (
    <>
      <h2>@{alias}</h2>
      <QueryView query={events} what="alias history" isEmpty={(e) => e.length === 0}>
        {(list) => (
          <table className="plain" aria-label={`history of ${alias}`}>
            <thead>
              <tr>
                <th>time</th>
                <th>from</th>
                <th>to</th>
                <th>by</th>
                <th>reason</th>
              </tr>
            </thead>
            <tbody>
              {list.map((e) => (
                <tr key={`${e.time}-${e.to_version}`}>
                  <td>{formatTime(e.time)}</td>
                  <td>{e.from_version ?? '—'}</td>
                  <td>{e.to_version ?? '(removed)'}</td>
                  <td>{e.actor ?? e.user ?? ''}</td>
                  <td>{e.reason ?? ''}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </QueryView>
    </>
  );
}

interface Outcomes {
  currency: string;
  value_matrix: string | null;
  from: number;
  to: number;
  versions: {
    version: string;
    aliases: string[];
    predictions: number;
    requests: number;
    predictions_sampled: boolean;
    latency_ms: { p50: number; p99: number } | null;
    cost: { total: number; per_1k_predictions: number | null };
    value: { labelled: number; total: number; per1k: number; estimated: number } | null;
    net: number | null;
  }[];
}

/** What each version served and cost, and the value it realised (`GET /api/kiln/models/outcomes`). */
function Outcomes({ name }: { name: string }) {
  const [windowText, setWindowText] = useState('7d');
  const outcomes = useQuery({
    queryKey: ['outcomes', name, windowText],
    retry: false,
    queryFn: async () => {
      try {
        return await api<Outcomes>(`${KILN}/models/outcomes`, { query: { name, window: windowText } });
      } catch (e) {
        if (e instanceof ApiError && e.code === 'ENDPOINT_NOT_FOUND') return null;
        throw e;
      }
    },
  });
  const money = (v: number | null | undefined, currency: string) =>
    v === null || v === undefined ? '' : `${formatNumber(Number(v.toFixed(2)))} ${currency}`;
  return (
    <>
      <div className="row" style={{ marginBottom: 8 }}>
        <label>
          window{' '}
          <select
            aria-label="outcomes window"
            value={windowText}
            onChange={(e) => setWindowText(e.target.value)}
          >
            {['24h', '7d', '30d'].map((w) => (
              <option key={w}>{w}</option>
            ))}
          </select>
        </label>
      </div>
      <QueryView
        query={outcomes}
        what="outcomes"
        isEmpty={(o) => !o || o.versions.length === 0}
        empty={
          outcomes.data === null
            ? 'Outcomes are not available on this server yet.'
            : `No version of ${name} served traffic in the last ${windowText} (serve it with kiln serve --prediction-store).`
        }
      >
        {(o) => (
          <>
            {o!.versions.every((v) => v.requests === 0 && v.predictions === 0) && (
              <p className="muted">
                No version of {name} served traffic in the last {windowText} (serve it with kiln serve
                --prediction-store).
              </p>
            )}
            <table className="plain" aria-label="outcomes">
              <thead>
                <tr>
                  <th>version</th>
                  <th>requests</th>
                  <th>predictions</th>
                  <th>latency p50 / p99</th>
                  <th>cost</th>
                  <th>per 1k predictions</th>
                  <th>realised value</th>
                  <th>net</th>
                </tr>
              </thead>
              <tbody>
                {o!.versions.map((v) => (
                  <tr key={v.version}>
                    <td>
                      v{v.version} {v.aliases.map((a) => `@${a}`).join(' ')}
                    </td>
                    <td className="num">{v.requests.toLocaleString()}</td>
                    <td className="num">
                      {v.predictions.toLocaleString()}
                      {v.predictions_sampled ? ' (sampled log)' : ''}
                    </td>
                    <td className="num">
                      {v.latency_ms
                        ? `${formatNumber(v.latency_ms.p50)} / ${formatNumber(v.latency_ms.p99)} ms`
                        : ''}
                    </td>
                    <td className="num">{money(v.cost.total, o!.currency)}</td>
                    <td className="num">{money(v.cost.per_1k_predictions, o!.currency)}</td>
                    <td className="num">
                      {v.value
                        ? `${money(v.value.total, o!.currency)} (${v.value.labelled} labelled)`
                        : o!.value_matrix
                          ? ''
                          : 'no value matrix'}
                    </td>
                    <td className="num">{money(v.net, o!.currency)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </>
        )}
      </QueryView>
    </>
  );
}

import { useInfiniteQuery, useQuery } from '@tanstack/react-query';
import { type FormEvent, useState } from 'react';
import { ErrorState, Loading } from '../components/common.js';
import { api, KILN } from '../lib/api.js';
import { formatTime } from '../lib/format.js';
import { setSearch, useLocation } from '../lib/router.js';

interface Entry {
  seq: number;
  time: number;
  actor: string;
  action: string;
  target: string;
  detail: Record<string, unknown>;
  hash: string;
}
type Verification =
  | { ok: true; entries: number; head: string }
  | { ok: false; entries?: number; seq?: number; reason?: string; message?: string };

/** The audit log, newest first, filtered by actor / action / target, with the hash chain's verification. */
export function AuditPage() {
  const { search } = useLocation();
  const filters = {
    actor: search.get('actor') ?? '',
    action: search.get('action') ?? '',
    target: search.get('target') ?? '',
  };
  const [draft, setDraft] = useState(filters);
  const verify = useQuery({
    queryKey: ['audit-verify'],
    queryFn: () => api<Verification>(`${KILN}/audit/verify`),
  });
  const log = useInfiniteQuery({
    queryKey: ['audit', filters],
    initialPageParam: undefined as number | undefined,
    queryFn: ({ pageParam }) =>
      api<{ entries: Entry[]; next_before_seq?: number }>(`${KILN}/audit`, {
        query: {
          actor: filters.actor || undefined,
          action: filters.action || undefined,
          target: filters.target || undefined,
          before_seq: pageParam,
          max_results: 200,
        },
      }),
    getNextPageParam: (last) => last.next_before_seq,
  });
  const submit = (e: FormEvent) => {
    e.preventDefault();
    setSearch({ actor: draft.actor.trim(), action: draft.action.trim(), target: draft.target.trim() });
  };
  const entries = log.data?.pages.flatMap((p) => p.entries) ?? [];
  return (
    <>
      <h1>Audit log</h1>
      <div className="card" style={{ marginBottom: 12 }} data-testid="audit-verify">
        {verify.isPending ? (
          'Verifying the hash chain…'
        ) : verify.isError ? (
          <ErrorState error={verify.error} />
        ) : verify.data.ok ? (
          <span className="ok-text">
            ✔ Hash chain verified: {verify.data.entries.toLocaleString()} entries, head{' '}
            <code>{verify.data.head.slice(0, 16)}…</code>
          </span>
        ) : (
          <span className="bad-text">
            ✘ Hash chain broken{verify.data.seq !== undefined ? ` at entry ${verify.data.seq}` : ''}:{' '}
            {verify.data.message ?? verify.data.reason ?? 'see kiln audit verify'}
          </span>
        )}
      </div>
      <form className="row" onSubmit={submit} style={{ marginBottom: 10 }}>
        <input
          aria-label="actor"
          placeholder="actor (exact)"
          value={draft.actor}
          onChange={(e) => setDraft({ ...draft, actor: e.target.value })}
        />
        <input
          aria-label="action"
          placeholder="action, or prefix like model."
          value={draft.action}
          onChange={(e) => setDraft({ ...draft, action: e.target.value })}
        />
        <input
          className="grow"
          aria-label="target"
          placeholder="target, e.g. models:/credit"
          value={draft.target}
          onChange={(e) => setDraft({ ...draft, target: e.target.value })}
        />
        <button type="submit">Filter</button>
      </form>
      {log.isPending ? (
        <Loading what="audit log" />
      ) : log.isError ? (
        <ErrorState error={log.error} />
      ) : entries.length === 0 ? (
        <div className="state empty">
          No audit entries{filters.actor || filters.action || filters.target ? ' match these filters' : ''}.
        </div>
      ) : (
        <>
          <table className="plain" aria-label="audit entries">
            <thead>
              <tr>
                <th>#</th>
                <th>time (UTC)</th>
                <th>actor</th>
                <th>action</th>
                <th>target</th>
                <th>detail</th>
              </tr>
            </thead>
            <tbody>
              {entries.map((e) => (
                <tr key={e.seq} tabIndex={0}>
                  <td className="num">{e.seq}</td>
                  <td>{formatTime(e.time)}</td>
                  <td>{e.actor}</td>
                  <td className="mono">{e.action}</td>
                  <td className="mono">{e.target}</td>
                  <td
                    className="mono"
                    style={{
                      maxWidth: 420,
                      overflow: 'hidden',
                      textOverflow: 'ellipsis',
                      whiteSpace: 'nowrap',
                    }}
                    title={JSON.stringify(e.detail)}
                  >
                    {JSON.stringify(e.detail)}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
          {log.hasNextPage && (
            <button
              type="button"
              onClick={() => void log.fetchNextPage()}
              disabled={log.isFetchingNextPage}
              style={{ marginTop: 8 }}
            >
              Older entries
            </button>
          )}
        </>
      )}
    </>
  );
}

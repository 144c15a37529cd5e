import type { UseQueryResult } from '@tanstack/react-query';
import { type KeyboardEvent, type MouseEvent, type ReactNode, useRef } from 'react';
import { ApiError } from '../lib/api.js';
import { navigate } from '../lib/router.js';

/** An in-app link: a real <a href> (open in new tab works), navigated without a reload. */
export function Link(props: { to: string; children: ReactNode; className?: string; title?: string }) {
  const onClick = (e: MouseEvent<HTMLAnchorElement>) => {
    if (e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    e.preventDefault();
    navigate(props.to);
  };
  return (
    <a href={props.to} onClick={onClick} className={props.className} title={props.title}>
      {props.children}
    </a>
  );
}

export function Loading({ what }: { what: string }) {
  return (
    <div className="state" role="status" aria-busy="true">
      Loading {what}…
    </div>
  );
}

export function Empty({ children }: { children: ReactNode }) {
  return <div className="state empty">{children}</div>;
}

export function ErrorState({ error }: { error: unknown }) {
  const message =
    error instanceof ApiError
      ? `${error.code}: ${error.message}`
      : error instanceof Error
        ? error.message
        : String(error);
  return (
    <div className="state error" role="alert">
      {message}
    </div>
  );
}

/** Loading, error, then `children(data)`; `isEmpty` turns an empty answer into the empty state. */
export function QueryView<T>(props: {
  query: UseQueryResult<T>;
  what: string;
  isEmpty?: (data: T) => boolean;
  empty?: ReactNode;
  children: (data: T) => ReactNode;
}) {
  const { query } = props;
  if (query.isPending) return <Loading what={props.what} />;
  if (query.isError) return <ErrorState error={query.error} />;
  if (props.isEmpty?.(query.data)) return <Empty>{props.empty ?? `No ${props.what} yet.`}</Empty>;
  return <>{props.children(query.data)}</>;
}

/**
 * A plain table whose rows are reachable by keyboard: Tab into it, ↑/↓ (or j/k) move, Enter
 * opens the row's link. For the lists that fit on a page (experiments, models, trials).
 */
export function NavTable<T>(props: {
  rows: T[];
  columns: { title: string; cell: (row: T) => ReactNode; num?: boolean }[];
  href?: (row: T) => string;
  rowKey: (row: T) => string;
  label: string;
}) {
  const body = useRef<HTMLTableSectionElement>(null);
  const onKey = (e: KeyboardEvent<HTMLTableRowElement>, i: number, row: T) => {
    const rows = body.current?.querySelectorAll<HTMLTableRowElement>('tr');
    if (!rows) return;
    if (e.key === 'ArrowDown' || e.key === 'j') {
      rows[Math.min(rows.length - 1, i + 1)]?.focus();
      e.preventDefault();
    } else if (e.key === 'ArrowUp' || e.key === 'k') {
      rows[Math.max(0, i - 1)]?.focus();
      e.preventDefault();
    } else if (e.key === 'Enter' && props.href) {
      navigate(props.href(row));
    }
  };
  return (
    <table className="plain" aria-label={props.label}>
      <thead>
        <tr>
          {props.columns.map((c) => (
            <th key={c.title}>{c.title}</th>
          ))}
        </tr>
      </thead>
      <tbody ref={body}>
        {props.rows.map((row, i) => (
          <tr key={props.rowKey(row)} tabIndex={0} onKeyDown={(e) => onKey(e, i, row)}>
            {props.columns.map((c) => (
              <td key={c.title} className={c.num ? 'num' : undefined}>
                {c.cell(row)}
              </td>
            ))}
          </tr>
        ))}
      </tbody>
    </table>
  );
}

export function Tabs(props: { tabs: { id: string; label: string; to: string }[]; active: string }) {
  return (
    <nav className="tabs" aria-label="sections">
      {props.tabs.map((t) => (
        <Link key={t.id} to={t.to} className={t.id === props.active ? 'active' : undefined}>
          {t.label}
        </Link>
      ))}
    </nav>
  );
}

export function Status({ status }: { status: string }) {
  return <span className={`badge status-${status}`}>{status}</span>;
}

export function KeyValues({ entries }: { entries: [string, ReactNode][] }) {
  return (
    <div className="kv">
      {entries.map(([k, v]) => (
        <FragmentPair key={k} k={k} v={v} />
      ))}
    </div>
  );
}
function FragmentPair({ k, v }: { k: string; v: ReactNode }) {
  return (
    <>
      <div>{k}</div>
      <div className="mono">{v}</div>
    </>
  );
}

import { useInfiniteQuery, useQuery } from '@tanstack/react-query';
import { type ColumnDef, getCoreRowModel, useReactTable } from '@tanstack/react-table';
import { useVirtualizer } from '@tanstack/react-virtual';
import { type KeyboardEvent, useEffect, useMemo, useRef, useState } from 'react';
import { ErrorState, Link, Loading } from '../components/common.js';
import { api, MLFLOW } from '../lib/api.js';
import { formatDuration, formatNumber, formatTime } from '../lib/format.js';
import { navigate, setSearch, useLocation } from '../lib/router.js';
import {
  type ColumnId,
  cellValue,
  columnIdString,
  defaultColumns,
  discoverColumns,
  orderByClause,
  parseColumnId,
  type RunJson,
  type RunRow,
  toRow,
} from '../lib/runs.js';

/** Runs fetched per request: a screenful many times over, and a small JSON page at 50 metrics a run. */
export const RUNS_PAGE = 500;
const ROW_H = 30;

/**
 * An experiment's runs: the MLflow search syntax in a box, server-side sort and paging, and a
 * table virtualised in both directions (only the visible rows and columns are in the DOM) so
 * 100,000 runs and 1,000 columns scroll like 50. Filter, sort and columns live in the URL.
 */
export function RunsPage({ experimentId }: { experimentId: string }) {
  const { search } = useLocation();
  const filter = search.get('filter') ?? '';
  const order = search.get('order') ?? 'attr:start_time:desc';
  const [draft, setDraft] = useState(filter);
  useEffect(() => setDraft(filter), [filter]);

  const experiment = useQuery({
    queryKey: ['experiment', experimentId],
    queryFn: () =>
      api<{ experiment: { name: string } }>(`${MLFLOW}/experiments/get`, {
        query: { experiment_id: experimentId },
      }),
  });

  const sortCol = parseColumnId(order.replace(/:(asc|desc)$/, ''));
  const descending = order.endsWith(':desc');
  const orderBy = sortCol ? orderByClause(sortCol, descending) : null;

  const runs = useInfiniteQuery({
    queryKey: ['runs', experimentId, filter, orderBy],
    initialPageParam: undefined as string | undefined,
    queryFn: async ({ pageParam, signal }) => {
      const r = await api<{ runs?: RunJson[]; next_page_token?: string }>(`${MLFLOW}/runs/search`, {
        body: {
          experiment_ids: [experimentId],
          filter: filter || undefined,
          max_results: RUNS_PAGE,
          order_by: orderBy ? [orderBy] : undefined,
          page_token: pageParam,
        },
        signal,
      });
      return { rows: (r.runs ?? []).map(toRow), next: r.next_page_token };
    },
    getNextPageParam: (last) => last.next,
  });
  const rows = useMemo(() => runs.data?.pages.flatMap((p) => p.rows) ?? [], [runs.data]);
  // Columns offered by the picker: what the first pages hold (a run's keys rarely differ from its neighbours').
  const available = useMemo(() => discoverColumns(rows.slice(0, 2000)), [rows]);
  const colsParam = search.get('cols');
  const columns = useMemo<ColumnId[]>(() => {
    if (colsParam !== null) {
      return colsParam
        .split(',')
        .map((c) => parseColumnId(decodeURIComponent(c)))
        .filter((c): c is ColumnId => c !== null);
    }
    return defaultColumns(available);
  }, [colsParam, available]);

  const [selected, setSelected] = useState<Set<string>>(new Set());
  const [cursor, setCursor] = useState(0);

  return (
    <>
      <div className="crumbs">
        <Link to="/experiments">Experiments</Link> / {experiment.data?.experiment.name ?? experimentId}
      </div>
      <div className="row" style={{ marginBottom: 8 }}>
        <h1 style={{ margin: 0 }}>{experiment.data?.experiment.name ?? `Experiment ${experimentId}`}</h1>
        <span className="muted" data-testid="runs-count">
          {runs.isSuccess ? `${rows.length}${runs.hasNextPage ? '+' : ''} runs` : ''}
        </span>
        <div className="grow" />
        <button
          type="button"
          className="primary"
          disabled={selected.size < 2}
          onClick={() => navigate(`/compare?runs=${[...selected].join(',')}`)}
        >
          Compare {selected.size > 0 ? `(${selected.size})` : ''}
        </button>
      </div>
      <form
        className="row"
        style={{ marginBottom: 8 }}
        onSubmit={(e) => {
          e.preventDefault();
          setSearch({ filter: draft.trim() });
        }}
      >
        <input
          className="search grow"
          aria-label="filter runs"
          placeholder={"metrics.loss < 0.5 and params.lr = '0.01' and tags.team = 'risk'"}
          value={draft}
          onChange={(e) => setDraft(e.target.value)}
        />
        <button type="submit">Search</button>
        <ColumnPicker available={available} chosen={columns} />
      </form>
      {runs.isPending ? (
        <Loading what="runs" />
      ) : runs.isError ? (
        <ErrorState error={runs.error} />
      ) : rows.length === 0 ? (
        <div className="state empty">
          {filter ? 'No run matches this filter.' : 'No runs in this experiment yet.'}
        </div>
      ) : (
        <RunsGrid
          rows={rows}
          columns={columns}
          sortCol={sortCol}
          descending={descending}
          hasMore={!!runs.hasNextPage}
          loadMore={() => {
            if (runs.hasNextPage && !runs.isFetchingNextPage) void runs.fetchNextPage();
          }}
          selected={selected}
          setSelected={setSelected}
          cursor={cursor}
          setCursor={setCursor}
        />
      )}
    </>
  );
}

function widthOf(c: ColumnId): number {
  if (c.kind === 'attr') return c.key === 'run_name' ? 220 : c.key === 'start_time' ? 170 : 110;
  return 130;
}

function RunsGrid(props: {
  rows: RunRow[];
  columns: ColumnId[];
  sortCol: ColumnId | null;
  descending: boolean;
  hasMore: boolean;
  loadMore: () => void;
  selected: Set<string>;
  setSelected: (s: Set<string>) => void;
  cursor: number;
  setCursor: (i: number) => void;
}) {
  const { rows, columns, selected, setSelected, cursor, setCursor } = props;
  const scroller = useRef<HTMLDivElement>(null);
  // TanStack Table holds the column model (ids, headers, sizes); sorting is the server's (manualSorting).
  const defs = useMemo<ColumnDef<RunRow>[]>(
    () =>
      columns.map((c) => ({
        id: columnIdString(c),
        header: c.kind === 'attr' ? c.key.replace('_', ' ') : c.key,
        size: widthOf(c),
        accessorFn: (row: RunRow) => cellValue(row, c),
        meta: c,
      })),
    [columns],
  );
  const table = useReactTable({
    data: rows,
    columns: defs,
    getCoreRowModel: getCoreRowModel(),
    manualSorting: true,
  });
  const leafColumns = table.getVisibleLeafColumns();
  const offsets = useMemo(() => {
    const out = [36];
    for (const c of leafColumns) out.push(out[out.length - 1]! + c.getSize());
    return out;
  }, [leafColumns]);
  const totalWidth = offsets[offsets.length - 1]!;

  const rowV = useVirtualizer({
    count: rows.length + (props.hasMore ? 1 : 0),
    getScrollElement: () => scroller.current,
    estimateSize: () => ROW_H,
    overscan: 12,
    scrollMargin: 0,
  });
  const colV = useVirtualizer({
    horizontal: true,
    count: leafColumns.length,
    getScrollElement: () => scroller.current,
    estimateSize: (i) => leafColumns[i]!.getSize(),
    overscan: 4,
  });
  const items = rowV.getVirtualItems();
  const lastIndex = items[items.length - 1]?.index ?? -1;
  const { loadMore } = props;
  useEffect(() => {
    if (lastIndex >= rows.length - 100) loadMore();
  }, [lastIndex, rows.length, loadMore]);

  const toggle = (id: string) => {
    const next = new Set(selected);
    if (next.has(id)) next.delete(id);
    else next.add(id);
    setSelected(next);
  };
  const moveTo = (i: number) => {
    const c = Math.max(0, Math.min(rows.length - 1, i));
    setCursor(c);
    rowV.scrollToIndex(c, { align: 'auto' });
  };
  const onKey = (e: KeyboardEvent) => {
    const page = Math.max(1, Math.floor((scroller.current?.clientHeight ?? 300) / ROW_H) - 1);
    const row = rows[cursor];
    switch (e.key) {
      case 'ArrowDown':
      case 'j':
        moveTo(cursor + 1);
        break;
      case 'ArrowUp':
      case 'k':
        moveTo(cursor - 1);
        break;
      case 'PageDown':
        moveTo(cursor + page);
        break;
      case 'PageUp':
        moveTo(cursor - page);
        break;
      case 'Home':
        moveTo(0);
        break;
      case 'End':
        moveTo(rows.length - 1);
        break;
      case ' ':
        if (row) toggle(row.id);
        break;
      case 'Enter':
        if (row) navigate(`/runs/${row.id}`);
        break;
      default:
        return;
    }
    e.preventDefault();
  };
  const sortBy = (c: ColumnId) => {
    const same = props.sortCol && columnIdString(props.sortCol) === columnIdString(c);
    if (orderByClause(c, true) === null) return;
    setSearch({ order: `${columnIdString(c)}:${same && props.descending ? 'asc' : 'desc'}` });
  };
  const visibleCols = colV.getVirtualItems();

  return (
    <div
      className="vt"
      ref={scroller}
      tabIndex={0}
      role="grid"
      aria-label="runs"
      aria-rowcount={rows.length}
      onKeyDown={onKey}
      data-testid="runs-grid"
    >
      <div style={{ width: totalWidth, height: rowV.getTotalSize() + 32, position: 'relative' }}>
        <div className="vt-head" style={{ width: totalWidth }} role="row">
          <div className="vt-cell" style={{ left: 0, width: 36 }} />
          {visibleCols.map((vc) => {
            const col = leafColumns[vc.index]!;
            const c = col.columnDef.meta as ColumnId;
            const sorted = props.sortCol && columnIdString(props.sortCol) === col.id;
            return (
              <div
                key={col.id}
                role="columnheader"
                className="vt-cell"
                style={{ left: offsets[vc.index], width: col.getSize() }}
                onClick={() => sortBy(c)}
                title={`${c.kind === 'attr' ? '' : `${c.kind}.`}${col.columnDef.header as string} (click to sort on the server)`}
                aria-sort={sorted ? (props.descending ? 'descending' : 'ascending') : 'none'}
              >
                {c.kind !== 'attr' && <span className={`kind kind-${c.kind}`}>{c.kind[0]}</span>}
                {col.columnDef.header as string}
                {sorted ? (props.descending ? ' ▼' : ' ▲') : ''}
              </div>
            );
          })}
        </div>
        {items.map((vr) => {
          const row = rows[vr.index];
          const top = vr.start + 32;
          if (!row) {
            return (
              <div
                key="more"
                className="vt-row muted"
                style={{ top, width: totalWidth, paddingLeft: 12, lineHeight: '30px' }}
              >
                Loading more runs…
              </div>
            );
          }
          const tableRow = table.getRowModel().rows[vr.index]!;
          const cls = `vt-row${selected.has(row.id) ? ' sel' : ''}${vr.index === cursor ? ' cursor' : ''}`;
          return (
            <div
              key={row.id}
              className={cls}
              style={{ top, width: totalWidth }}
              role="row"
              aria-selected={selected.has(row.id)}
              onClick={() => setCursor(vr.index)}
              onDoubleClick={() => navigate(`/runs/${row.id}`)}
            >
              <div className="vt-cell check" style={{ left: 0, width: 36 }}>
                <input
                  type="checkbox"
                  aria-label={`select ${row.name}`}
                  checked={selected.has(row.id)}
                  onChange={() => toggle(row.id)}
                  tabIndex={-1}
                />
              </div>
              {visibleCols.map((vc) => {
                const col = leafColumns[vc.index]!;
                const c = col.columnDef.meta as ColumnId;
                const v = tableRow.getValue(col.id) as string | number | undefined;
                return (
                  <div
                    key={col.id}
                    role="gridcell"
                    className={`vt-cell${typeof v === 'number' ? ' num' : ''}`}
                    style={{ left: offsets[vc.index], width: col.getSize() }}
                  >
                    {renderCell(row, c, v)}
                  </div>
                );
              })}
            </div>
          );
        })}
      </div>
    </div>
  );
}

function renderCell(row: RunRow, c: ColumnId, v: string | number | undefined) {
  if (c.kind === 'attr') {
    if (c.key === 'run_name') return <Link to={`/runs/${row.id}`}>{row.name}</Link>;
    if (c.key === 'status') return <span className={`status-${row.status}`}>{row.status}</span>;
    if (c.key === 'start_time') return formatTime(v as number);
    if (c.key === 'duration') return formatDuration(v as number);
  }
  if (typeof v === 'number') return formatNumber(v);
  return v ?? '';
}

/** Choose the table's columns among every metric, param and tag seen (searchable: there may be 1,000). */
function ColumnPicker({ available, chosen }: { available: ColumnId[]; chosen: ColumnId[] }) {
  const [open, setOpen] = useState(false);
  const [q, setQ] = useState('');
  const chosenIds = new Set(chosen.map(columnIdString));
  const matches = available.filter((c) => columnIdString(c).toLowerCase().includes(q.toLowerCase()));
  const set = (ids: string[]) => setSearch({ cols: ids.map(encodeURIComponent).join(',') });
  const toggle = (id: string) => {
    const ids = chosen.map(columnIdString);
    set(chosenIds.has(id) ? ids.filter((x) => x !== id) : [...ids, id]);
  };
  return (
    <div style={{ position: 'relative' }}>
      <button type="button" onClick={() => setOpen(!open)} aria-expanded={open}>
        Columns ({chosen.length})
      </button>
      {open && (
        <div className="picker" role="dialog" aria-label="choose columns">
          <input
            className="search"
            placeholder="find a metric, param or tag"
            aria-label="find column"
            value={q}
            onChange={(e) => setQ(e.target.value)}
          />
          <div className="row" style={{ margin: '6px 0' }}>
            <button type="button" onClick={() => setSearch({ cols: '' })}>
              Defaults
            </button>
            <button type="button" onClick={() => setOpen(false)}>
              Close
            </button>
            <span className="muted">
              {matches.length} of {available.length}
            </span>
          </div>
          {matches.slice(0, 300).map((c) => {
            const id = columnIdString(c);
            return (
              <label key={id}>
                <input type="checkbox" checked={chosenIds.has(id)} onChange={() => toggle(id)} /> {c.kind}.
                {c.key}
              </label>
            );
          })}
          {matches.length > 300 && (
            <div className="muted">Type to narrow the other {matches.length - 300}.</div>
          )}
        </div>
      )}
    </div>
  );
}

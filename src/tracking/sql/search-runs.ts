import { type RawBuilder, sql } from 'kysely';
import type { Dialect } from '../../store/index.js';
import { LIMITS } from '../limits.js';
import { parseRunOrderBy } from '../order-by.js';
import { decodePageToken, encodePageToken, queryFingerprint } from '../page-token.js';
import { attributeColumn, RUN_ATTRIBUTES } from '../run-attributes.js';
import { type OrderClause, parseFilter, RUN_FILTER_TARGET } from '../search-filter.js';
import type { Page, Run, SearchRunsRequest } from '../types.js';
import {
  checkMaxResults,
  checkViewType,
  invalidValue,
  optionalString,
  requireString,
} from '../validation.js';
import type { SqlContext } from './context.js';
import { runFilterCondition } from './filter.js';
import { lifecycleCondition, parseId } from './rows.js';
import { assembleRuns } from './runs.js';

/**
 * search-runs: the filter compiled to SQL (filter.ts), the order planned in phases so each
 * page walks an index instead of sorting every match, and keyset page tokens.
 */
export class RunSearch {
  private readonly ctx: SqlContext;
  private readonly searchWindow: number | undefined;

  /** `searchWindow`: see SqlTrackingStoreOptions. */
  constructor(ctx: SqlContext, searchWindow: number | undefined) {
    this.ctx = ctx;
    this.searchWindow = searchWindow;
  }

  async search(req: SearchRunsRequest): Promise<Page<Run>> {
    if (!Array.isArray(req?.experiment_ids)) {
      throw invalidValue('experiment_ids', req?.experiment_ids, 'expected a list of experiment ids');
    }
    const experimentIds: number[] = [];
    req.experiment_ids.forEach((id, i) => {
      const n = parseId(requireString(id, `experiment_ids[${i}]`));
      if (n !== undefined) experimentIds.push(n);
    });
    const view = checkViewType(req.run_view_type, 'run_view_type');
    const maxResults = checkMaxResults(req.max_results, LIMITS.searchRunsDefault, LIMITS.searchRunsMax);
    const filterText = optionalString(req.filter, 'filter');
    const filter = parseFilter(filterText, RUN_FILTER_TARGET, 'filter');
    const order = parseRunOrderBy(req.order_by);
    const fingerprint = queryFingerprint([
      'runs',
      req.experiment_ids,
      view,
      filterText ?? '',
      req.order_by ?? [],
    ]);
    const cursor = decodePageToken(optionalString(req.page_token, 'page_token'), fingerprint);
    if (experimentIds.length === 0) return { items: [] };

    const base: RawBuilder<unknown>[] = [
      sql`r.experiment_id in (${sql.join(experimentIds)})`,
      lifecycleCondition('r.lifecycle_stage', view),
    ];
    if (filter) base.push(runFilterCondition(filter, this.ctx.dialect, 'r'));
    const plan = planRunOrder(order, this.ctx.dialect);

    let phaseIndex = 0;
    let after: (string | number | null)[] | undefined;
    if (cursor?.k) {
      const phase = cursor.k[0];
      phaseIndex = plan.phases.findIndex((p) => p.id === phase);
      if (phaseIndex < 0) throw invalidValue('page_token', cursor.k, 'invalid page token: unknown position');
      after = cursor.k.slice(1);
      if (after.length !== plan.phases[phaseIndex]!.components.length) {
        throw invalidValue(
          'page_token',
          cursor.k,
          'invalid page token: position does not match the order_by',
        );
      }
    }
    const picked: { run_uuid: string; phase: number; key: (string | number | null)[] }[] = [];
    for (; phaseIndex < plan.phases.length && picked.length <= maxResults; phaseIndex++) {
      const phase = plan.phases[phaseIndex]!;
      const limit = maxResults + 1 - picked.length;
      const keyset = after ? [keysetAfter(phase.components, after)] : [];
      const rows = phase.window
        ? await this.windowedPhase(phase, phase.window, base, keyset, after, limit)
        : await this.phaseRows(
            phase.components,
            phase.from,
            phase.joins,
            [...base, ...phase.where, ...keyset],
            limit,
          );
      after = undefined;
      for (const row of rows) {
        picked.push({
          run_uuid: row.run_uuid as string,
          phase: phase.id,
          key: phase.components.map((_, j) => row[`c${j}`] ?? null),
        });
      }
    }
    const page = picked.slice(0, maxResults);
    let next: string | undefined;
    if (picked.length > maxResults) {
      const last = page[page.length - 1]!;
      next = encodePageToken({ q: fingerprint, k: [last.phase, ...last.key] });
    }
    if (page.length === 0) return { items: [] };
    const runRows = await this.ctx.db
      .selectFrom('runs')
      .selectAll()
      .where(
        'run_uuid',
        'in',
        page.map((p) => p.run_uuid),
      )
      .execute();
    const byId = new Map(runRows.map((r) => [r.run_uuid, r]));
    const runs = await assembleRuns(
      this.ctx.db,
      page.map((p) => byId.get(p.run_uuid)!),
    );
    return { items: runs, next_page_token: next };
  }

  private async phaseRows(
    components: SortComponent[],
    from: RawBuilder<unknown> | undefined,
    joins: RawBuilder<unknown>[],
    where: RawBuilder<unknown>[],
    limit: number,
  ): Promise<Record<string, string | number | null>[]> {
    const selects = components.map((c, j) => sql`${c.expr} as ${sql.ref(`c${j}`)}`);
    const query = sql<Record<string, string | number | null>>`select r.run_uuid${
      selects.length ? sql`, ${sql.join(selects)}` : sql``
    } from ${from ?? sql`runs r`} ${sql.join(joins, sql.raw(' '))} where ${sql.join(
      where.map((w) => sql`(${w})`),
      sql.raw(' and '),
    )} order by ${sql.join(components.map((c) => sql`${c.expr} ${sql.raw(c.desc ? 'desc' : 'asc')}`))} limit ${limit}`;
    return (await query.execute(this.ctx.db)).rows;
  }

  /**
   * The SQLite fast path for a search ordered by a metric, param or tag: walk the next
   * `size` entries of the sort key's (key, value) index in order and probe each run. When
   * the filter is so selective that the window does not fill the page, hand the query to
   * the planner's own plan instead (a sort of every matching run), so a rare match costs a
   * sort, not a walk of the whole index.
   */
  private async windowedPhase(
    phase: SearchPhase,
    window: SortWindow,
    base: RawBuilder<unknown>[],
    keyset: RawBuilder<unknown>[],
    after: (string | number | null)[] | undefined,
    limit: number,
  ): Promise<Record<string, string | number | null>[]> {
    const size = this.searchWindow ?? Math.max(1000, 10 * limit);
    const dir = sql.raw(window.desc ? 'desc' : 'asc');
    const conditions = [sql`key = ${window.key}`];
    if (window.metric) conditions.push(sql`is_nan = 0`);
    if (after) conditions.push(sql`value ${sql.raw(window.desc ? '<=' : '>=')} ${after[0]}`);
    // The window ends at the value of its `size`-th entry, and takes every entry tied with it,
    // so a page that fills inside the window is exactly the page a full sort would give.
    const boundary = (
      await sql<{ value: string | number }>`select value from ${sql.table(window.table)} where ${sql.join(
        conditions,
        sql.raw(' and '),
      )} order by value ${dir} limit 1 offset ${size - 1}`.execute(this.ctx.db)
    ).rows[0]?.value;
    const bounded =
      boundary === undefined ? [] : [sql`o0.value ${sql.raw(window.desc ? '>=' : '<=')} ${boundary}`];
    const from = sql`${sql.table(window.table)} o0 cross join runs r`;
    const rows = await this.phaseRows(
      phase.components,
      from,
      phase.joins,
      [...base, ...phase.where, ...bounded, ...keyset],
      limit,
    );
    if (boundary === undefined || rows.length === limit) return rows;
    return this.phaseRows(
      phase.components,
      undefined,
      window.fallbackJoins,
      [...base, ...window.fallbackWhere, ...keyset],
      limit,
    );
  }
}

// ------------------------------------------------------------------ search planning

interface SortComponent {
  expr: RawBuilder<unknown>;
  desc: boolean;
}

interface SortWindow {
  table: 'latest_metrics' | 'params' | 'tags';
  key: string;
  desc: boolean;
  metric: boolean;
  /** The planner-chosen form of the same phase, for when the window does not fill the page. */
  fallbackJoins: RawBuilder<unknown>[];
  fallbackWhere: RawBuilder<unknown>[];
}

interface SearchPhase {
  /** Stable id stored in page tokens. */
  id: number;
  /** The FROM clause; `runs r` unless the plan drives the search from a sort-key index. */
  from?: RawBuilder<unknown>;
  /** SQLite: walk a bounded window of the sort key's index first (see windowedPhase). */
  window?: SortWindow;
  joins: RawBuilder<unknown>[];
  where: RawBuilder<unknown>[];
  components: SortComponent[];
}

/**
 * Plans the ORDER BY of a run search. MLflow sorts runs that lack the first sort key (and
 * NaN metrics) after all others whatever the direction; kiln splits the search into phases
 * (has a value / NaN / missing) so that within the first phase the ORDER BY is the bare
 * indexed column, and SQLite or Postgres can walk latest_metrics(key, value) in order and
 * stop after one page instead of sorting every matching run.
 */
function planRunOrder(order: OrderClause[], dialect: Dialect): { phases: SearchPhase[] } {
  const tiebreak: SortComponent[] = [];
  if (!order.some((c) => c.entity === 'attribute' && c.key === 'start_time')) {
    tiebreak.push({ expr: sql`r.start_time`, desc: true });
  }
  if (!order.some((c) => c.entity === 'attribute' && c.key === 'run_id')) {
    tiebreak.push({ expr: sql`r.run_uuid`, desc: false });
  }
  const secondaryJoins: RawBuilder<unknown>[] = [];
  const secondary: SortComponent[] = [];
  order.slice(1).forEach((c, j) => {
    const alias = `o${j + 1}`;
    const desc = !c.ascending;
    if (c.entity === 'attribute') {
      const col = sql.ref(`r.${attributeColumn(RUN_ATTRIBUTES, c.key)}`);
      if (c.key === 'end_time') {
        secondary.push({ expr: sql`case when ${col} is null then 1 else 0 end`, desc: false });
        secondary.push({ expr: sql`coalesce(${col}, 0)`, desc });
      } else secondary.push({ expr: col, desc });
      return;
    }
    const table = c.entity === 'metric' ? 'latest_metrics' : c.entity === 'param' ? 'params' : 'tags';
    const a = sql.ref(alias);
    secondaryJoins.push(
      sql`left join ${sql.table(table)} ${a} on ${sql.ref(`${alias}.run_uuid`)} = r.run_uuid and ${sql.ref(`${alias}.key`)} = ${c.key}`,
    );
    const value = sql.ref(`${alias}.value`);
    if (c.entity === 'metric') {
      secondary.push({
        expr: sql`case when ${value} is null then 2 when ${sql.ref(`${alias}.is_nan`)} = 1 then 1 else 0 end`,
        desc: false,
      });
      secondary.push({ expr: sql`coalesce(${value}, 0)`, desc });
    } else {
      secondary.push({ expr: sql`case when ${value} is null then 1 else 0 end`, desc: false });
      secondary.push({ expr: sql`coalesce(${value}, '')`, desc });
    }
  });
  const rest = [...secondary, ...tiebreak];
  const first = order[0];
  if (!first) return { phases: [{ id: 0, joins: [], where: [], components: rest }] };
  const desc = !first.ascending;
  if (first.entity === 'attribute') {
    const col = sql.ref(`r.${attributeColumn(RUN_ATTRIBUTES, first.key)}`);
    if (first.key !== 'end_time') {
      return {
        phases: [{ id: 0, joins: secondaryJoins, where: [], components: [{ expr: col, desc }, ...rest] }],
      };
    }
    return {
      phases: [
        {
          id: 0,
          joins: secondaryJoins,
          where: [sql`${col} is not null`],
          components: [{ expr: col, desc }, ...rest],
        },
        { id: 2, joins: secondaryJoins, where: [sql`${col} is null`], components: rest },
      ],
    };
  }
  const tableName =
    first.entity === 'metric' ? 'latest_metrics' : first.entity === 'param' ? 'params' : 'tags';
  const table = sql.table(tableName);
  const join = sql`join ${table} o0 on o0.run_uuid = r.run_uuid and o0.key = ${first.key}`;
  const missing = sql`not exists (select 1 from ${table} m0 where m0.run_uuid = r.run_uuid and m0.key = ${first.key})`;
  const phases: SearchPhase[] = [];
  const nanFree = first.entity === 'metric' ? [sql`o0.is_nan = 0`] : [];
  if (dialect === 'sqlite') {
    // SQLite's planner prefers runs(experiment_id) and a full sort (~1 s at 100k runs); CROSS
    // JOIN pins the sort-key index as the outer loop, so a page reads ~page-size/selectivity
    // index entries in order (~10 ms) and a keyset token starts the walk where the last page ended.
    phases.push({
      id: 0,
      joins: secondaryJoins,
      where: [sql`o0.key = ${first.key}`, sql`r.run_uuid = o0.run_uuid`, ...nanFree],
      components: [{ expr: sql`o0.value`, desc }, ...rest],
      window: {
        table: tableName,
        key: first.key,
        desc,
        metric: first.entity === 'metric',
        fallbackJoins: [join, ...secondaryJoins],
        fallbackWhere: nanFree,
      },
    });
  } else {
    phases.push({
      id: 0,
      joins: [join, ...secondaryJoins],
      where: nanFree,
      components: [{ expr: sql`o0.value`, desc }, ...rest],
    });
  }
  if (first.entity === 'metric') {
    phases.push({ id: 1, joins: [join, ...secondaryJoins], where: [sql`o0.is_nan = 1`], components: rest });
  }
  phases.push({ id: 2, joins: secondaryJoins, where: [missing], components: rest });
  return { phases };
}

/**
 * Rows strictly after `values` in the order of `components`, written as
 * `c0 <= v0 and (c0 < v0 or (c1 ...))` so the leading comparison can bound an index range.
 */
function keysetAfter(
  components: SortComponent[],
  values: (string | number | null)[],
  i = 0,
): RawBuilder<boolean> {
  const c = components[i]!;
  const v = values[i];
  const strict = sql.raw(c.desc ? '<' : '>');
  if (i === components.length - 1) return sql<boolean>`${c.expr} ${strict} ${v}`;
  const loose = sql.raw(c.desc ? '<=' : '>=');
  return sql<boolean>`(${c.expr} ${loose} ${v} and (${c.expr} ${strict} ${v} or (${c.expr} = ${v} and ${keysetAfter(components, values, i + 1)})))`;
}

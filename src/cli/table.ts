/**
 * Plain-text tables for the CLI: a header row, aligned columns (numbers to the right), cells
 * cut to a width with '…', and no colours, so output pastes cleanly into issues and diffs.
 * Every command group renders with these; `--json` bypasses them.
 */

export type Cell = string | number | boolean | null | undefined;

export interface Column<T> {
  header: string;
  value: (row: T) => Cell;
  /** Default: right for numbers, left otherwise (decided per cell). */
  align?: 'left' | 'right';
  /** Cells longer than this are cut with '…' (default 60). */
  maxWidth?: number;
}

export interface RenderTableOptions {
  /** Printed instead of a header-only table when there are no rows. */
  empty?: string;
  /** Spaces between columns (default 2). */
  gap?: number;
}

/**
 * @example
 * renderTable(runs, [
 *   { header: 'RUN ID', value: (r) => r.info.run_id },
 *   { header: 'AUC', value: (r) => metricOf(r, 'auc') },
 * ]);
 */
export function renderTable<T>(
  rows: readonly T[],
  columns: readonly Column<T>[],
  options: RenderTableOptions = {},
): string {
  if (rows.length === 0 && options.empty !== undefined) return `${options.empty}\n`;
  const gap = ' '.repeat(options.gap ?? 2);
  const cells: { text: string; right: boolean }[][] = rows.map((row) =>
    columns.map((col) => {
      const raw = col.value(row);
      const right = col.align ? col.align === 'right' : typeof raw === 'number';
      return { text: truncate(formatCell(raw), col.maxWidth ?? 60), right };
    }),
  );
  const widths = columns.map((col, j) =>
    Math.max(displayWidth(col.header), ...cells.map((r) => displayWidth(r[j].text))),
  );
  const lines: string[] = [];
  lines.push(
    columns
      .map((col, j) => {
        const rightAligned =
          col.align === 'right' ||
          (col.align === undefined && cells.every((r) => r[j].right) && cells.length > 0);
        return pad(col.header, widths[j], rightAligned);
      })
      .join(gap)
      .trimEnd(),
  );
  for (const row of cells) {
    lines.push(
      row
        .map((cell, j) => pad(cell.text, widths[j], cell.right))
        .join(gap)
        .trimEnd(),
    );
  }
  return `${lines.join('\n')}\n`;
}

/** Two aligned columns: `key  value`, for one record (a run's info, its params). */
export function renderKeyValues(pairs: readonly [string, Cell][], options: RenderTableOptions = {}): string {
  if (pairs.length === 0 && options.empty !== undefined) return `${options.empty}\n`;
  const width = Math.max(0, ...pairs.map(([k]) => displayWidth(k)));
  const gap = ' '.repeat(options.gap ?? 2);
  return (
    pairs.map(([k, v]) => `${pad(k, width, false)}${gap}${formatCell(v)}`.trimEnd()).join('\n') +
    (pairs.length ? '\n' : '')
  );
}

/** Numbers as people read them in a table: integers whole, others to 6 significant digits. */
export function formatNumber(n: number): string {
  if (Number.isNaN(n)) return 'NaN';
  if (!Number.isFinite(n)) return n > 0 ? 'inf' : '-inf';
  if (Number.isInteger(n) && Math.abs(n) < 1e15) return String(n);
  const abs = Math.abs(n);
  if (abs !== 0 && (abs < 1e-4 || abs >= 1e15)) return n.toExponential(4);
  return String(Number(n.toPrecision(6)));
}

/** ms since the epoch → 'YYYY-MM-DD HH:MM:SS' in UTC (machine-independent, sortable). */
export function formatTimestamp(ms: number | undefined | null): string {
  if (ms === undefined || ms === null || !Number.isFinite(ms) || ms <= 0) return '';
  return new Date(ms).toISOString().slice(0, 19).replace('T', ' ');
}

/** A duration in ms as '850ms', '12.3s', '4m05s', '2h03m'. */
export function formatDuration(ms: number | undefined | null): string {
  if (ms === undefined || ms === null || !Number.isFinite(ms) || ms < 0) return '';
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(Math.floor(s % 60)).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

/** Writes `value` as indented JSON with a trailing newline (the `--json` output of every command). */
export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

function formatCell(v: Cell): string {
  if (v === undefined || v === null) return '';
  if (typeof v === 'number') return formatNumber(v);
  // One line per row: newlines in a value would break the alignment.
  return escapeControlCharacters(String(v).replace(/\r?\n/g, '⏎'));
}

/**
 * Text from data made safe for a terminal: control characters (C0, DEL, C1, which include the
 * escape sequences that move the cursor, recolour or retitle a terminal) are shown as `\xNN`
 * (`\t`, `\n`, `\r` by name), so a value can never act on the terminal that prints it.
 */
export function escapeControlCharacters(text: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => {
    if (c === '\t') return '\\t';
    if (c === '\n') return '\\n';
    if (c === '\r') return '\\r';
    return `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`;
  });
}

function truncate(s: string, max: number): string {
  return displayWidth(s) <= max ? s : `${[...s].slice(0, Math.max(1, max - 1)).join('')}…`;
}

function displayWidth(s: string): number {
  // Code points, not UTF-16 units, so '…' and accented names count as one column.
  let n = 0;
  for (const _ of s) n++;
  return n;
}

function pad(s: string, width: number, right: boolean): string {
  const fill = ' '.repeat(Math.max(0, width - displayWidth(s)));
  return right ? fill + s : s + fill;
}

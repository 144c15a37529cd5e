import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { KilnError } from '../../errors.js';
import type { ModelInput, OutputTensor, ServeContext } from '../types.js';
import { routingKeyOf } from './oip-rest.js';

/**
 * MLflow's scoring protocol (mlflow/pyfunc/scoring_server): `POST /invocations` with
 *
 *   application/json  exactly one of
 *     { "dataframe_split": { "columns": [...], "data": [[...], ...] } }
 *     { "dataframe_records": [ { col: value, ... }, ... ] }
 *     { "instances": [ { col: value }, ... ] }   or   { "instances": { col: [values] } }
 *     { "inputs":    { col: [values] } }          or   { "inputs": [ { col: value }, ... ] }
 *   plus optional "params" ({ "explain": true } adds per-feature contributions);
 *   text/csv          a header row, then one row per line (numbers parsed, empty = missing).
 *
 * Answer: `{ "predictions": [...] }` (one value per row, or one list per row for several
 * outputs per row), with `contributions` ([{ feature: value, …, bias }] per row) when explain is
 * asked and `warnings` when values were flagged. Errors are MLflow's `{ error_code, message }`.
 *
 * The model served is the only one deployed, or the one named by the `x-kiln-model` header or
 * `?model=` (a kiln extension for multi-model deployments); `/ping` and `/version` are MLflow's
 * too.
 */
const INPUT_KEYS = ['dataframe_split', 'dataframe_records', 'instances', 'inputs'] as const;

export function registerInvocations(app: FastifyInstance, context: ServeContext, version: string): void {
  app.get('/ping', async (_req, reply) => reply.status(context.ready() ? 200 : 503).send('\n'));
  app.get('/health', async (_req, reply) => reply.status(context.ready() ? 200 : 503).send('\n'));
  app.get('/version', async () => version);

  app.post(
    '/invocations',
    async (req: FastifyRequest<{ Querystring: { model?: string } }>, reply: FastifyReply) => {
      const model = modelOf(req, context);
      const type = String(req.headers['content-type'] ?? '')
        .split(';')[0]!
        .trim()
        .toLowerCase();
      let input: ModelInput;
      let params: Record<string, unknown> | undefined;
      if (type === 'text/csv') {
        input = parseCsv(String(req.body ?? ''));
      } else if (type === 'application/json' || type === '') {
        ({ input, params } = parseJsonBody(req.body));
      } else {
        return reply.status(415).send({
          error_code: 'BAD_REQUEST',
          message: `content type '${type}' is not supported; use application/json or text/csv`,
        });
      }
      const explain = params?.explain;
      if (explain !== undefined && typeof explain !== 'boolean') {
        throw new KilnError('INVALID_PARAMETER_VALUE', 'params.explain: expected true or false');
      }
      const routingKey = routingKeyOf(req, params);
      const result = await context.infer({
        model,
        input,
        options: explain ? { explain: true } : {},
        ...(routingKey !== undefined ? { routingKey } : {}),
        requestId: String(req.id),
      });
      reply.header('x-kiln-model-version', result.version);
      const predictions =
        result.outputs.find((o) => o.name === 'predictions') ??
        (result.outputs.length === 1 ? result.outputs[0] : undefined);
      const out: Record<string, unknown> = {
        predictions: predictions
          ? rowsOf(predictions)
          : Object.fromEntries(result.outputs.map((o) => [o.name, rowsOf(o)])),
      };
      const contributions = result.outputs.find((o) => o.name === 'contributions');
      if (contributions) out.contributions = contributionRecords(contributions);
      if (result.warnings.length > 0) out.warnings = result.warnings;
      return out;
    },
  );
}

function modelOf(req: FastifyRequest<{ Querystring: { model?: string } }>, context: ServeContext): string {
  const named = req.headers['x-kiln-model'] ?? req.query.model;
  if (typeof named === 'string' && named !== '') return named;
  const names = context.modelNames();
  if (names.length === 1) return names[0]!;
  throw new KilnError(
    'INVALID_PARAMETER_VALUE',
    `several models are served (${names.join(', ')}); name one with the x-kiln-model header or ?model=`,
  );
}

function parseJsonBody(body: unknown): { input: ModelInput; params?: Record<string, unknown> } {
  if (!body || typeof body !== 'object' || Array.isArray(body)) {
    throw new KilnError(
      'BAD_REQUEST',
      `the body must be a JSON object with exactly one of ${INPUT_KEYS.join(', ')}`,
    );
  }
  const b = body as Record<string, unknown>;
  const present = INPUT_KEYS.filter((k) => k in b);
  const unknown = Object.keys(b).filter(
    (k) => !(INPUT_KEYS as readonly string[]).includes(k) && k !== 'params',
  );
  if (present.length !== 1 || unknown.length > 0) {
    throw new KilnError(
      'BAD_REQUEST',
      `the body must hold exactly one of ${INPUT_KEYS.join(', ')} (and optionally params); got ${Object.keys(b).join(', ') || 'nothing'}`,
    );
  }
  let params: Record<string, unknown> | undefined;
  if (b.params !== undefined) {
    if (!b.params || typeof b.params !== 'object' || Array.isArray(b.params)) {
      throw new KilnError('BAD_REQUEST', 'params: expected an object');
    }
    params = b.params as Record<string, unknown>;
  }
  const key = present[0]!;
  const value = b[key];
  let input: ModelInput;
  switch (key) {
    case 'dataframe_split':
      input = fromSplit(value);
      break;
    case 'dataframe_records':
      input = fromRecords(value, key);
      break;
    default:
      input = Array.isArray(value) ? fromRecords(value, key) : fromColumns(value, key);
  }
  return { input, ...(params ? { params } : {}) };
}

function fromSplit(v: unknown): ModelInput {
  const s = v as { columns?: unknown; data?: unknown };
  if (!s || typeof s !== 'object' || !Array.isArray(s.columns) || !Array.isArray(s.data)) {
    throw new KilnError(
      'BAD_REQUEST',
      'dataframe_split: expected { "columns": [...], "data": [[...], ...] }',
    );
  }
  const names = s.columns.map((c, i) => {
    if (typeof c !== 'string')
      throw new KilnError('BAD_REQUEST', `dataframe_split.columns[${i}]: expected a string`);
    return c;
  });
  if (new Set(names).size !== names.length)
    throw new KilnError('BAD_REQUEST', 'dataframe_split.columns: a column is named twice');
  const rows = s.data as unknown[];
  const width = names.length;
  const lists: unknown[][] = names.map(() => new Array(rows.length));
  for (let i = 0; i < rows.length; i++) {
    const row = rows[i];
    if (!Array.isArray(row) || row.length !== width) {
      throw new KilnError(
        'BAD_REQUEST',
        `dataframe_split.data[${i}]: expected a list of ${width} values (one per column), got ${Array.isArray(row) ? `${row.length}` : typeof row}`,
      );
    }
    for (let j = 0; j < width; j++) lists[j]![i] = row[j];
  }
  const columns = new Map<string, unknown[]>();
  for (let j = 0; j < width; j++) columns.set(names[j]!, lists[j]!);
  return { kind: 'columns', nRows: rows.length, columns };
}

function fromRecords(v: unknown, key: string): ModelInput {
  if (!Array.isArray(v)) throw new KilnError('BAD_REQUEST', `${key}: expected a list of records`);
  return recordsWithSameKeys(v) ?? recordsWithAnyKeys(v, key);
}

/**
 * The usual request: every record has the first one's columns (in any order). Read column by
 * column without a [key, value] pair per field; null when a record differs (the general path
 * then reads them, and reports what is wrong).
 */
function recordsWithSameKeys(v: unknown[]): ModelInput | null {
  const first = v[0];
  if (v.length === 0 || !first || typeof first !== 'object' || Array.isArray(first)) return null;
  const names = Object.keys(first);
  const width = names.length;
  const lists: unknown[][] = names.map(() => new Array(v.length));
  for (let i = 0; i < v.length; i++) {
    const record = v[i] as Record<string, unknown>;
    if (!record || typeof record !== 'object' || Array.isArray(record)) return null;
    let count = 0;
    for (const _ in record) count++;
    if (count !== width) return null;
    for (let j = 0; j < width; j++) {
      const value = record[names[j]!];
      // Absent (or a JSON-impossible undefined): not the same columns after all.
      if (value === undefined) return null;
      lists[j]![i] = value;
    }
  }
  const columns = new Map<string, unknown[]>();
  for (let j = 0; j < width; j++) columns.set(names[j]!, lists[j]!);
  return { kind: 'columns', nRows: v.length, columns };
}

function recordsWithAnyKeys(v: unknown[], key: string): ModelInput {
  const columns = new Map<string, unknown[]>();
  v.forEach((record, i) => {
    if (!record || typeof record !== 'object' || Array.isArray(record)) {
      throw new KilnError('BAD_REQUEST', `${key}[${i}]: expected an object { column: value }`);
    }
    for (const [name, value] of Object.entries(record)) {
      let col = columns.get(name);
      if (!col) {
        // A column first seen at row i is missing (null) in rows before it, as in pandas.
        col = new Array(v.length).fill(null);
        columns.set(name, col);
      }
      col[i] = value;
    }
  });
  for (const col of columns.values())
    for (let i = 0; i < col.length; i++) if (col[i] === undefined) col[i] = null;
  return { kind: 'columns', nRows: v.length, columns };
}

function fromColumns(v: unknown, key: string): ModelInput {
  if (!v || typeof v !== 'object')
    throw new KilnError('BAD_REQUEST', `${key}: expected { column: [values] } or a list of records`);
  const columns = new Map<string, unknown[]>();
  let nRows: number | undefined;
  for (const [name, values] of Object.entries(v)) {
    const list = Array.isArray(values) ? values : [values];
    if (nRows !== undefined && list.length !== nRows) {
      throw new KilnError(
        'BAD_REQUEST',
        `${key}.${name}: ${list.length} values, but other columns have ${nRows}`,
      );
    }
    nRows = list.length;
    columns.set(name, list);
  }
  return { kind: 'columns', nRows: nRows ?? 0, columns };
}

/**
 * RFC 4180 CSV: a header row, then rows; quoted fields may hold commas, quotes ("") and line
 * breaks. Cells that read as numbers become numbers (as pandas reads them), empty cells null.
 */
export function parseCsv(text: string): ModelInput {
  const records: string[][] = [];
  let field = '';
  let row: string[] = [];
  let quoted = false;
  let i = 0;
  let wasQuoted = false;
  const cells: boolean[][] = [];
  let rowQuoted: boolean[] = [];
  const endField = () => {
    row.push(field);
    rowQuoted.push(wasQuoted);
    field = '';
    wasQuoted = false;
  };
  const endRow = () => {
    endField();
    if (!(row.length === 1 && row[0] === '' && !rowQuoted[0])) {
      records.push(row);
      cells.push(rowQuoted);
    }
    row = [];
    rowQuoted = [];
  };
  for (; i < text.length; i++) {
    const ch = text[i]!;
    if (quoted) {
      if (ch === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i++;
        } else quoted = false;
      } else field += ch;
    } else if (ch === '"' && field === '') {
      quoted = true;
      wasQuoted = true;
    } else if (ch === ',') endField();
    else if (ch === '\n') endRow();
    else if (ch === '\r') {
      if (text[i + 1] !== '\n') endRow();
    } else field += ch;
  }
  if (quoted) throw new KilnError('BAD_REQUEST', 'csv: a quoted field is not closed');
  if (field !== '' || row.length > 0) endRow();
  if (records.length === 0) throw new KilnError('BAD_REQUEST', 'csv: the body has no header row');
  const header = records[0]!;
  const columns = new Map<string, unknown[]>(header.map((h) => [h, new Array(records.length - 1)]));
  if (columns.size !== header.length)
    throw new KilnError('BAD_REQUEST', 'csv: a column is named twice in the header');
  for (let r = 1; r < records.length; r++) {
    const rec = records[r]!;
    if (rec.length !== header.length) {
      throw new KilnError(
        'BAD_REQUEST',
        `csv: line ${r + 1} has ${rec.length} fields, the header has ${header.length}`,
      );
    }
    header.forEach((h, j) => {
      const cell = rec[j]!;
      const q = cells[r]![j]!;
      columns.get(h)![r - 1] = q
        ? cell
        : cell === ''
          ? null
          : /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(cell.trim())
            ? Number(cell)
            : cell;
    });
  }
  return { kind: 'columns', nRows: records.length - 1, columns };
}

/** A tensor as MLflow answers it: one value per row, or one list per row (non-finite numbers as null). */
function rowsOf(t: OutputTensor): unknown[] {
  const n = t.shape[0] ?? 0;
  let per = 1;
  for (let d = 1; d < t.shape.length; d++) per *= t.shape[d]!;
  const data = t.data;
  const out = new Array<unknown>(n);
  if (per === 1 && t.shape.length <= 2) {
    for (let i = 0; i < n; i++) out[i] = jsonValue(data[i]);
    return out;
  }
  for (let i = 0; i < n; i++) {
    const row = new Array<unknown>(per);
    for (let k = 0; k < per; k++) row[k] = jsonValue(data[i * per + k]);
    out[i] = row;
  }
  return out;
}

function jsonValue(v: unknown): unknown {
  return typeof v === 'number' && !Number.isFinite(v) ? null : v;
}

function contributionRecords(t: OutputTensor): Record<string, number>[] | Record<string, number>[][] {
  const names = String(t.parameters?.features ?? '').split(',');
  const width = names.length;
  const n = t.shape[0] ?? 0;
  const outputs = t.shape.length === 3 ? t.shape[1]! : 1;
  const record = (offset: number) =>
    Object.fromEntries(names.map((f, j) => [f, t.data[offset + j] as number]));
  if (outputs === 1) return Array.from({ length: n }, (_, i) => record(i * width));
  return Array.from({ length: n }, (_, i) =>
    Array.from({ length: outputs }, (_, k) => record((i * outputs + k) * width)),
  );
}

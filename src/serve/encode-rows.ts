import {
  type CategoricalColumn,
  compileRowExpression,
  type FeatureColumn,
  type FeatureMatrix,
  parseRowExpression,
  referencedColumns,
} from '../data/index.js';
import { KilnError } from '../errors.js';
import type { ModelSignature } from '../learn/index.js';
import type { EncodedRows, InputWarning } from './types.js';

/**
 * Turns a request's raw columns into the feature matrix the model was trained on, the same way
 * training built it (src/data/matrix.ts): derived features evaluated by the serving-time
 * expression evaluator (src/data/expression.ts, checked against DuckDB), numeric values as
 * doubles with NULL → NaN, categorical values as DuckDB's text form matched against the
 * training level table.
 *
 * Input rules, each refused with a 400 naming the row and field:
 * - every raw column the model needs is present, and no other column (a typo would otherwise
 *   score silently as missing);
 * - a numeric input holds numbers (booleans count as 0/1, as DuckDB casts them);
 * - a missing value (null) only where the model can score one (`missingAllowed`);
 * - an expression that cannot be evaluated on the row.
 * Values the model accepts but never saw are served and flagged (`InputWarning`): a level not in
 * the training table (scored as the model's policy says: missing for trees, the one-hot step's
 * `unseen` policy in a pipeline, which may refuse it) and a number outside the training range
 * when the signature records one.
 */
export interface RowEncoder {
  /** Raw columns a request must carry, in signature order. */
  readonly rawColumns: string[];
  encode(nRows: number, columns: Map<string, ArrayLike<unknown>>): EncodedRows;
}

/** Signature input as serving reads it; `range` is the training range when the signature has one. */
type SignatureInput = ModelSignature['inputs'][number] & { range?: { min: number; max: number } };

interface PlannedInput {
  name: string;
  kind: 'numeric' | 'categorical';
  /** Raw column read directly, or undefined when `derive` computes the value. */
  column?: string;
  derive?: (row: Record<string, unknown>) => unknown;
  levels: string[];
  levelIndex: Map<string, number>;
  range?: { min: number; max: number };
  missingAllowed: boolean;
}

export function compileRowEncoder(
  signature: ModelSignature,
  missingAllowed: (input: string) => boolean,
): RowEncoder {
  const raw = new Set<string>();
  const planned: PlannedInput[] = (signature.inputs as SignatureInput[]).map((input) => {
    const levels = input.levels ?? [];
    const base = {
      name: input.name,
      kind: input.type,
      levels,
      levelIndex: new Map(levels.map((l, i) => [l, i])),
      missingAllowed: missingAllowed(input.name),
      ...(input.range ? { range: input.range } : {}),
    };
    if (input.expr) {
      const expr = parseRowExpression(input.expr, `feature '${input.name}'`);
      for (const c of referencedColumns(expr)) raw.add(c);
      return { ...base, derive: compileRowExpression(expr) };
    }
    raw.add(input.name);
    return { ...base, column: input.name };
  });
  const rawColumns = [...raw];
  const wanted = new Set(rawColumns.map((c) => c.toLowerCase()));
  const derived = planned.filter((p) => p.derive);

  /** The request's column for each raw column (signature order), matched case-insensitively. */
  const resolve = (nRows: number, columns: Map<string, ArrayLike<unknown>>): ArrayLike<unknown>[] => {
    // The usual request names exactly the raw columns: no case folding, no set of leftovers.
    let exact = columns.size === rawColumns.length;
    for (let j = 0; exact && j < rawColumns.length; j++) exact = columns.has(rawColumns[j]!);
    let byLower: Map<string, string> | undefined;
    if (!exact) {
      byLower = new Map();
      for (const key of columns.keys()) byLower.set(key.toLowerCase(), key);
    }
    const given = new Array<ArrayLike<unknown>>(rawColumns.length);
    for (let j = 0; j < rawColumns.length; j++) {
      const name = rawColumns[j]!;
      const key = columns.has(name) ? name : byLower?.get(name.toLowerCase());
      if (key === undefined) {
        throw new KilnError(
          'INVALID_PARAMETER_VALUE',
          `input column '${name}' is missing (the model needs: ${rawColumns.join(', ')})`,
        );
      }
      const values = columns.get(key)!;
      if (values.length !== nRows) {
        throw new KilnError(
          'INVALID_PARAMETER_VALUE',
          `input column '${key}' has ${values.length} values but the request has ${nRows} rows`,
        );
      }
      given[j] = values;
    }
    if (!exact) {
      for (const key of columns.keys()) {
        if (!wanted.has(key.toLowerCase())) {
          throw new KilnError(
            'INVALID_PARAMETER_VALUE',
            `input column '${key}' is not an input of the model (inputs: ${rawColumns.join(', ')})`,
          );
        }
      }
    }
    return given;
  };

  /**
   * Derived features' values, evaluated row by row into one reused row object (the expressions
   * read it and keep nothing). An expression that fails on a row is remembered, not thrown, so
   * the encoding loop below reports errors in the same order as it checks values: feature by
   * feature, row by row.
   */
  const deriveAll = (nRows: number, given: ArrayLike<unknown>[]) => {
    const values = derived.map(() => new Array<unknown>(nRows));
    const failed: ({ row: number; error: KilnError } | undefined)[] = derived.map(() => undefined);
    const row: Record<string, unknown> = {};
    for (let i = 0; i < nRows; i++) {
      for (let j = 0; j < rawColumns.length; j++) row[rawColumns[j]!] = given[j]![i];
      for (let d = 0; d < derived.length; d++) {
        if (failed[d]) continue;
        const p = derived[d]!;
        try {
          values[d]![i] = p.derive!(row);
        } catch (e) {
          failed[d] = {
            row: i,
            error: new KilnError(
              'INVALID_PARAMETER_VALUE',
              `row ${i}, feature '${p.name}': cannot be derived from the row (${(e as Error).message})`,
            ),
          };
        }
      }
    }
    return { values, failed };
  };
  const rawIndex = new Map(rawColumns.map((c, j) => [c, j]));
  const source = planned.map((p) =>
    p.derive ? { derived: derived.indexOf(p) } : { raw: rawIndex.get(p.column!)! },
  );

  return {
    rawColumns,
    encode(nRows, columns) {
      const given = resolve(nRows, columns);
      const d = derived.length > 0 ? deriveAll(nRows, given) : undefined;
      const warnings: InputWarning[] = [];
      const out: FeatureColumn[] = new Array(planned.length);
      for (let f = 0; f < planned.length; f++) {
        const p = planned[f]!;
        const from = source[f]!;
        let input: ArrayLike<unknown>;
        // Rows at and after `stop` were not derived; reaching `stop` throws the expression's error.
        let stop = nRows;
        let failure: KilnError | undefined;
        if (from.derived !== undefined) {
          input = d!.values[from.derived]!;
          const failed = d!.failed[from.derived];
          if (failed) {
            stop = failed.row;
            failure = failed.error;
          }
        } else input = given[from.raw!]!;
        const field = p.column ?? p.name;
        if (p.kind === 'numeric') {
          const values = new Float64Array(nRows);
          for (let i = 0; i < nRows; i++) {
            if (i === stop) throw failure!;
            const v = input[i];
            const x = typeof v === 'number' ? v : toDouble(v);
            if (x === undefined) {
              throw new KilnError(
                'INVALID_PARAMETER_VALUE',
                `row ${i}, field '${field}': expected a number, got ${describe(v)}`,
              );
            }
            if (x !== x) {
              if (!p.missingAllowed) {
                throw new KilnError(
                  'INVALID_PARAMETER_VALUE',
                  `row ${i}, field '${field}': missing value, and this model cannot score one for '${p.name}' (it was trained without missing values or an impute step)`,
                );
              }
            } else if (p.range && (x < p.range.min || x > p.range.max)) {
              warnings.push({ row: i, field: p.name, kind: 'out_of_range', value: x });
            }
            values[i] = x;
          }
          out[f] = { kind: 'numeric', name: p.name, values };
        } else {
          const codes = new Int32Array(nRows);
          let levels = p.levels;
          let extra: Map<string, number> | undefined;
          for (let i = 0; i < nRows; i++) {
            if (i === stop) throw failure!;
            const v = input[i];
            if (v === null || v === undefined) {
              if (!p.missingAllowed) {
                throw new KilnError(
                  'INVALID_PARAMETER_VALUE',
                  `row ${i}, field '${field}': missing value, and this model cannot score one for '${p.name}'`,
                );
              }
              codes[i] = -1;
              continue;
            }
            if (typeof v === 'object') {
              throw new KilnError(
                'INVALID_PARAMETER_VALUE',
                `row ${i}, field '${field}': expected a category (string or number), got ${describe(v)}`,
              );
            }
            const text = typeof v === 'string' ? v : levelText(v, p.levelIndex);
            const code = p.levelIndex.get(text);
            if (code !== undefined) {
              codes[i] = code;
              continue;
            }
            // An unseen level joins the column's level table (after the training levels), so the
            // model applies its own policy to it exactly as it would at evaluation time.
            if (!extra) {
              extra = new Map();
              levels = [...p.levels];
            }
            let c = extra.get(text);
            if (c === undefined) {
              c = levels.length;
              levels.push(text);
              extra.set(text, c);
            }
            codes[i] = c;
            warnings.push({ row: i, field: p.name, kind: 'unseen_category', value: text });
          }
          out[f] = { kind: 'categorical', name: p.name, codes, levels } satisfies CategoricalColumn;
        }
      }
      return { matrix: { nRows, columns: out }, warnings };
    },
  };
}

/** Numbers as they are, booleans 0/1 (DuckDB's cast), null/undefined → NaN; anything else: undefined. */
function toDouble(v: unknown): number | undefined {
  if (typeof v === 'number') return v;
  if (v === null || v === undefined) return Number.NaN;
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (typeof v === 'bigint') return Number(v);
  return undefined;
}

/**
 * DuckDB's VARCHAR form of a value, which is what the training level table holds: booleans
 * 'true'/'false', integers without a decimal point. JSON cannot tell 3 from 3.0, so an integral
 * number is matched as '3.0' when that is the level the table has (a DOUBLE column's levels).
 */
function levelText(v: unknown, index: Map<string, number>): string {
  if (typeof v === 'number') {
    const text = String(v);
    if (Number.isInteger(v) && !index.has(text) && index.has(`${text}.0`)) return `${text}.0`;
    return text;
  }
  return String(v);
}

function describe(v: unknown): string {
  if (typeof v === 'string') return `string '${v.length > 40 ? `${v.slice(0, 40)}…` : v}'`;
  if (Array.isArray(v)) return 'an array';
  if (v && typeof v === 'object') return 'an object';
  return `${typeof v} ${String(v)}`;
}

/** Rows of several matrices with the same columns, one after another (categorical levels merged by name). */
export function concatMatrices(parts: FeatureMatrix[]): FeatureMatrix {
  if (parts.length === 1) return parts[0]!;
  const nRows = parts.reduce((s, m) => s + m.nRows, 0);
  const columns: FeatureColumn[] = parts[0]!.columns.map((first, j) => {
    if (first.kind === 'numeric') {
      const values = new Float64Array(nRows);
      let at = 0;
      for (const m of parts) {
        const c = m.columns[j] as typeof first;
        values.set(c.values.subarray(0, m.nRows), at);
        at += m.nRows;
      }
      return { kind: 'numeric', name: first.name, values };
    }
    // Parts share the training level table unless one saw an unseen level; merge by name then.
    const shared = parts.every((m) => (m.columns[j] as CategoricalColumn).levels === first.levels);
    const codes = new Int32Array(nRows);
    let levels = first.levels;
    let index: Map<string, number> | undefined;
    if (!shared) {
      levels = [...first.levels];
      index = new Map(levels.map((l, i) => [l, i]));
    }
    let at = 0;
    for (const m of parts) {
      const c = m.columns[j] as CategoricalColumn;
      if (shared) codes.set(c.codes.subarray(0, m.nRows), at);
      else {
        const map = Int32Array.from(c.levels, (l) => {
          let code = index!.get(l);
          if (code === undefined) {
            code = levels.length;
            levels.push(l);
            index!.set(l, code);
          }
          return code;
        });
        for (let i = 0; i < m.nRows; i++) codes[at + i] = c.codes[i]! < 0 ? -1 : map[c.codes[i]!]!;
      }
      at += m.nRows;
    }
    return { kind: 'categorical', name: first.name, codes, levels };
  });
  return { nRows, columns };
}

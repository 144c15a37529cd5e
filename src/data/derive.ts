import { compileRowExpression, parseRowExpression, toEpochMs } from './expression.js';
import type { DatasetSchema } from './schema.js';

/**
 * Serving-time derivation: the features a version's schema records as expressions (`expr`),
 * compiled once and evaluated on one incoming row at a time, with the same results DuckDB gave
 * at ingest. Returns a new row with the derived values added (booleans stay booleans, numbers
 * numbers; datetimes in the input may be Date, epoch ms or ISO text).
 */
export function compileDerivations(
  schema: DatasetSchema,
): (row: Record<string, unknown>) => Record<string, unknown> {
  const derived = schema.columns
    .filter((c) => c.expr !== undefined)
    .map((c) => ({
      name: c.name,
      type: c.type,
      duck: c.exprType ?? '',
      fn: compileRowExpression(parseRowExpression(c.expr!, `feature '${c.name}'`)),
    }));
  return (row) => {
    const out: Record<string, unknown> = { ...row };
    for (const d of derived) {
      const v = d.fn(row);
      out[d.name] = v === null || v === undefined ? null : coerce(v, d.type, d.duck);
    }
    return out;
  };
}

function coerce(v: unknown, type: string, duckType: string): unknown {
  switch (type) {
    case 'integer':
      return typeof v === 'number' ? Math.sign(v) * Math.round(Math.abs(v)) : Number(v);
    case 'numeric':
      return Number(v);
    case 'boolean':
      return typeof v === 'boolean' ? v : Boolean(v);
    case 'datetime':
      return new Date(toEpochMs(v)).toISOString();
    default:
      // Categorical levels are stored as DuckDB's text form: 1.0 for a double, 3 for an integer.
      if (typeof v === 'number' && Number.isInteger(v) && /^(DOUBLE|FLOAT|REAL)$/i.test(duckType))
        return `${v}.0`;
      return String(v);
  }
}

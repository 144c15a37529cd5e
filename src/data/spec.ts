import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { KilnError } from '../errors.js';

/** The logical types kiln records for every column (see docs/data.md). */
export const LOGICAL_TYPES = ['numeric', 'integer', 'boolean', 'categorical', 'datetime', 'text'] as const;
export type LogicalType = (typeof LOGICAL_TYPES)[number];

export const FILE_FORMATS = ['csv', 'parquet', 'json', 'ndjson', 'arrow'] as const;
export type FileFormat = (typeof FILE_FORMATS)[number];

export const csvOptionsSchema = z
  .object({
    header: z.boolean().default(true),
    delimiter: z.string().min(1).max(4).optional(),
    quote: z.string().max(1).optional(),
    escape: z.string().max(1).optional(),
    /** Strings read as NULL; DuckDB's default is the empty string only. */
    nulls: z.array(z.string()).optional(),
    dateformat: z.string().optional(),
    timestampformat: z.string().optional(),
  })
  .strict();
export type CsvOptions = z.infer<typeof csvOptionsSchema>;

export const sourceSpecSchema = z
  .object({
    /** A file path or a glob (`data/*.csv`); relative paths resolve against the spec file. */
    path: z.string().min(1).optional(),
    format: z.enum(FILE_FORMATS).optional(),
    csv: csvOptionsSchema.optional(),
  })
  .strict();
export type SourceSpec = z.infer<typeof sourceSpecSchema>;

export const columnSpecSchema = z
  .object({
    type: z.enum(LOGICAL_TYPES).optional(),
    /** Fixed level table for a categorical column; values outside it fail ingest. */
    levels: z.array(z.string()).optional(),
  })
  .strict();
export type ColumnSpec = z.infer<typeof columnSpecSchema>;

export const featureSpecSchema = z.union([
  z.string().min(1),
  z.object({ expr: z.string().min(1), type: z.enum(LOGICAL_TYPES).optional() }).strict(),
]);
export type FeatureSpec = z.infer<typeof featureSpecSchema>;

export const dataSpecSchema = z
  .object({
    name: z.string().min(1).optional(),
    description: z.string().optional(),
    source: sourceSpecSchema.optional(),
    /** Type overrides (and fixed levels) for source columns. */
    columns: z.record(z.string(), columnSpecSchema).optional(),
    /** Derived features: name → row-level DuckDB SQL expression over source columns. */
    features: z.record(z.string().min(1, 'a derived feature needs a name'), featureSpecSchema).optional(),
    /** Keep only these columns (source or derived), in this order. Default: all. */
    select: z.array(z.string()).optional(),
    drop: z.array(z.string()).optional(),
    /** The label column, used by `materializeMatrix` when no target is passed. */
    target: z.string().optional(),
    /** Source columns with at most this many distinct strings are categorical, else text. */
    maxLevels: z.number().int().positive().optional(),
  })
  .strict();
export type DataSpec = z.infer<typeof dataSpecSchema>;

/** Validates a parsed spec object; `place` names the file for error messages. */
export function parseDataSpec(value: unknown, place = 'data spec'): DataSpec {
  const parsed = dataSpecSchema.safeParse(value ?? {});
  if (!parsed.success) throw KilnError.fromZod(place, parsed.error, value);
  return parsed.data;
}

export function loadDataSpec(file: string): DataSpec {
  return parseDataSpec(readYamlFile(file), file);
}

export function readYamlFile(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new KilnError('RESOURCE_DOES_NOT_EXIST', `${file}: cannot read file (${(e as Error).message})`);
  }
  try {
    return parseYaml(text);
  } catch (e) {
    throw new KilnError('INVALID_PARAMETER_VALUE', `${file}: not valid YAML: ${(e as Error).message}`);
  }
}

/** The expression and declared type of a derived feature, whichever form it was written in. */
export function featureExpression(feature: FeatureSpec): { expr: string; type: LogicalType | undefined } {
  return typeof feature === 'string'
    ? { expr: feature, type: undefined }
    : { expr: feature.expr, type: feature.type };
}

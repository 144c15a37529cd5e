import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { loadDataSpec, loadExpectations, sqlString, withDuck } from '../../data/index.js';
import type { StepKind } from '../types.js';
import { projectPath } from './project-path.js';

const params = z
  .object({
    /** The stored version transformed, `name@N` (e.g. `${steps.ingest.outputs.dataset}`). */
    dataset: z.string().min(1),
    /** One DuckDB SELECT over the version as the table `data`: `SELECT *, distance / 100 AS d FROM data WHERE …`. */
    sql: z
      .string()
      .min(1)
      .refine((s) => !/;\s*\S/.test(s), 'one SELECT statement (no ; between statements)'),
    /** Dataset name the result is registered under. */
    name: z.string().min(1),
    /** Data spec YAML for the result (types, derived features, target); the source's spec is not carried over. */
    spec: z.string().min(1).optional(),
    /** Expectations YAML checked before the result is registered (it fails the step unless all pass). */
    expect: z.string().min(1).optional(),
    description: z.string().optional(),
  })
  .strict();

/**
 * A SQL transform as a step: the stored version's Parquet is read by DuckDB as `data`, the
 * query's result is written to a scratch Parquet file and ingested as a version of `name`
 * (profiled, optionally validated), so everything downstream (training, drift references)
 * treats it as any dataset. The version's source records the parent and the query. Cached on
 * the parent's content hash and the query.
 */
export const transformStep: StepKind<z.infer<typeof params>> = {
  kind: 'transform',
  params,
  cachedByDefault: true,
  keyInputs: (p, dir) => [
    { name: 'dataset', dataset: p.dataset },
    ...(p.spec ? [{ name: 'spec', file: projectPath(dir, p.spec) }] : []),
    ...(p.expect ? [{ name: 'expect', file: projectPath(dir, p.expect) }] : []),
  ],
  async run(p, ctx) {
    const parent = await ctx.workspace.datasets.getVersion(p.dataset);
    const input = await ctx.workspace.datasets.parquetPath(parent);
    const scratch = mkdtempSync(path.join(os.tmpdir(), 'kiln-transform-'));
    try {
      const out = path.join(scratch, 'transformed.parquet');
      await withDuck(async (conn) => {
        await conn.run(
          `COPY (WITH data AS (SELECT * FROM read_parquet(${sqlString(input)})) ${p.sql}) TO ${sqlString(out)} (FORMAT parquet)`,
        );
      });
      const specFile = p.spec ? projectPath(ctx.projectDir, p.spec) : undefined;
      const expectations = p.expect ? loadExpectations(projectPath(ctx.projectDir, p.expect)) : undefined;
      const result = await ctx.workspace.datasets.ingest({
        file: out,
        name: p.name,
        spec: specFile ? loadDataSpec(specFile) : undefined,
        specPlace: specFile,
        expectations,
        requireValid: expectations ? true : undefined,
        description: p.description,
        sourceLabel: `transform of ${parent.name}@${parent.version} (${parent.hash.slice(0, 16)}): ${p.sql}`,
      });
      const v = result.version;
      ctx.log(
        `${parent.name}@${parent.version} (${parent.rows} rows) → ${result.created ? 'registered' : 'unchanged:'} ${v.name}@${v.version} (${v.rows} rows)`,
      );
      return { dataset: `${v.name}@${v.version}`, hash: v.hash, rows: v.rows };
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
  },
};

import { createHash } from 'node:crypto';
import { createReadStream, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  type DatasetCatalog,
  type DatasetSchema,
  type FeatureColumn,
  type FeatureMatrix,
  groupAssignment,
  type LabelledMatrix,
  type MatrixFeature,
  type MatrixRequest,
  materializeMatrix,
  prepareDataset,
  randomAssignment,
  stratifiedAssignment,
} from '../../data/index.js';
import { KilnError } from '../../errors.js';
import { selectData } from '../../learn/index.js';
import type { FeatureRef, TrainSpec } from './spec.js';

/** The matrices a training run learns and is judged on, and where they came from. */
export interface TrainingMatrices {
  train: LabelledMatrix;
  valid?: LabelledMatrix;
  test?: LabelledMatrix;
  /** The features as materialised (names, expressions, kinds), for the model's signature. */
  features: MatrixFeature[];
  target: MatrixFeature;
  /** Tags describing the data and the split (dataset name/version/hash, split method, rows). */
  lineage: Record<string, string>;
}

/**
 * Reads the spec's data into typed-array matrices and splits it. A time split reads each part
 * with its own filter and fixes categorical levels to the training part's, so the model and
 * its signature only know levels seen in training; other splits read once and divide the rows
 * in memory (index gathers on typed arrays).
 *
 * Every error is thrown before anything is tracked: a missing column is named here.
 */
export async function loadTrainingData(spec: TrainSpec, data?: DatasetCatalog): Promise<TrainingMatrices> {
  const lineage: Record<string, string> = {};
  let files: string;
  let schema: DatasetSchema | undefined;
  let cleanup: (() => void) | undefined;
  if (spec.data.dataset) {
    if (!data) {
      throw new KilnError(
        'INVALID_PARAMETER_VALUE',
        `data.dataset '${spec.data.dataset}': no data catalog to read it from (pass the store and artifact store)`,
      );
    }
    const version = await data.getVersion(spec.data.dataset);
    files = await data.parquetPath(version);
    schema = version.schema;
    lineage['kiln.dataset.name'] = version.name;
    lineage['kiln.dataset.version'] = String(version.version);
    lineage['kiln.dataset.hash'] = version.hash;
    lineage['kiln.dataset.rows'] = String(version.rows);
  } else {
    const file = spec.data.file!;
    lineage['kiln.data.file'] = file;
    if (/\.parquet$/i.test(file)) {
      files = file;
      lineage['kiln.data.hash'] = await fileSha256(file);
    } else {
      // Non-Parquet sources go through the data layer's normaliser once (types, levels).
      const dir = mkdtempSync(path.join(tmpdir(), 'kiln-train-'));
      cleanup = () => rmSync(dir, { recursive: true, force: true });
      try {
        const prepared = await prepareDataset(file, { outPath: path.join(dir, 'data.parquet') });
        files = prepared.parquetPath;
        schema = prepared.schema;
        lineage['kiln.data.hash'] = prepared.hash;
      } catch (e) {
        cleanup();
        throw e;
      }
    }
  }
  try {
    const features = spec.features.map((f) => toMatrixFeature(f, spec));
    const target = toMatrixFeature(spec.target, spec);
    const base: MatrixRequest = { features, target, ...(spec.data.where ? { where: spec.data.where } : {}) };
    const split = spec.split;
    lineage['kiln.split.method'] = split.method;
    lineage['kiln.split.seed'] = String(split.seed);
    if (spec.data.where) lineage['kiln.data.where'] = spec.data.where;

    let parts: { train: LabelledMatrix; valid?: LabelledMatrix; test?: LabelledMatrix };
    if (split.method === 'time') {
      const col = quoteColumn(split.column);
      const lit = (v: string | number) => (typeof v === 'number' ? String(v) : `'${v.replace(/'/g, "''")}'`);
      const and = (cond: string) => (spec.data.where ? `(${spec.data.where}) AND (${cond})` : cond);
      const trainEnd = split.valid_from ?? split.test_from;
      const train = await materializeMatrix(
        files,
        { ...base, where: and(`${col} < ${lit(trainEnd)}`) },
        schema,
      );
      const fixed = levelsOf(train.x);
      const fixedRequest = { ...base, levels: fixed, ...(train.classes ? { classes: train.classes } : {}) };
      const test = await materializeMatrix(
        files,
        { ...fixedRequest, where: and(`${col} >= ${lit(split.test_from)}`) },
        schema,
      );
      let valid: LabelledMatrix | undefined;
      let trainPart = train;
      if (split.valid_from !== undefined) {
        valid = await materializeMatrix(
          files,
          {
            ...fixedRequest,
            where: and(`${col} >= ${lit(split.valid_from)} AND ${col} < ${lit(split.test_from)}`),
          },
          schema,
        );
      } else if (split.valid > 0) {
        const assign = randomAssignment(train.x.nRows, [1 - split.valid, split.valid], split.seed);
        trainPart = takeRows(train, assign, 0);
        valid = takeRows(train, assign, 1);
      }
      lineage['kiln.split.column'] = split.column;
      lineage['kiln.split.test_from'] = String(split.test_from);
      if (split.valid_from !== undefined) lineage['kiln.split.valid_from'] = String(split.valid_from);
      parts = { train: trainPart, valid, test };
    } else {
      const groupFeature: MatrixFeature | undefined =
        split.method === 'group'
          ? { name: '__kiln_group', expr: quoteColumn(split.column), kind: 'categorical' }
          : undefined;
      const all = await materializeMatrix(
        files,
        { ...base, features: groupFeature ? [...features, groupFeature] : features },
        schema,
      );
      const shares = [1 - split.valid - split.test, split.valid, split.test];
      let assign: Uint8Array;
      if (split.method === 'random') assign = randomAssignment(all.x.nRows, shares, split.seed);
      else if (split.method === 'stratified') {
        if (!all.y)
          throw new KilnError('INVALID_PARAMETER_VALUE', 'split: a stratified split needs a target');
        assign = stratifiedAssignment(all.y, shares, split.seed);
      } else {
        const group = all.x.columns.pop() as Extract<FeatureColumn, { kind: 'categorical' }>;
        assign = groupAssignment(group.codes, group.levels, shares, split.seed);
        lineage['kiln.split.column'] = split.column;
      }
      lineage['kiln.split.valid'] = String(split.valid);
      lineage['kiln.split.test'] = String(split.test);
      parts = {
        train: takeRows(all, assign, 0),
        ...(split.valid > 0 ? { valid: takeRows(all, assign, 1) } : {}),
        ...(split.test > 0 ? { test: takeRows(all, assign, 2) } : {}),
      };
    }
    if (parts.train.x.nRows === 0) {
      throw new KilnError(
        'INVALID_PARAMETER_VALUE',
        `split: the training part is empty (${describeSplit(spec)})`,
      );
    }
    lineage['kiln.split.rows.train'] = String(parts.train.x.nRows);
    if (parts.valid) lineage['kiln.split.rows.valid'] = String(parts.valid.x.nRows);
    if (parts.test) lineage['kiln.split.rows.test'] = String(parts.test.x.nRows);
    return { ...parts, features, target, lineage };
  } finally {
    cleanup?.();
  }
}

function describeSplit(spec: TrainSpec): string {
  return Object.entries(spec.split)
    .map(([k, v]) => `${k}: ${v}`)
    .join(', ');
}

function toMatrixFeature(ref: FeatureRef, spec: TrainSpec): MatrixFeature {
  const name = typeof ref === 'string' ? ref : ref.name;
  const derived = spec.data.derive?.[name];
  const f: MatrixFeature = { name };
  if (typeof ref !== 'string' && ref.expr) f.expr = ref.expr;
  else if (derived !== undefined) f.expr = typeof derived === 'string' ? derived : derived.expr;
  const kind =
    (typeof ref !== 'string' ? ref.kind : undefined) ??
    (typeof derived === 'object' ? derived.kind : undefined);
  if (kind) f.kind = kind;
  return f;
}

/** A column reference in the row-expression language (double quotes when not a plain name). */
function quoteColumn(name: string): string {
  return /^[A-Za-z_][A-Za-z0-9_]*$/.test(name) ? name : `"${name.replace(/"/g, '""')}"`;
}

function levelsOf(x: FeatureMatrix): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const c of x.columns) if (c.kind === 'categorical') out[c.name] = c.levels;
  return out;
}

/** The rows of `m` whose assignment (data/splits.ts) is `part`, in row order (learn's row gather does the copy). */
export function takeRows(m: LabelledMatrix, assign: Uint8Array, part: number): LabelledMatrix {
  let count = 0;
  for (let i = 0; i < assign.length; i++) if (assign[i] === part) count++;
  const index = new Int32Array(count);
  for (let i = 0, k = 0; i < assign.length; i++) if (assign[i] === part) index[k++] = i;
  const picked = selectData({ x: m.x, y: m.y }, index);
  return { ...m, x: picked.x, ...(picked.y ? { y: picked.y } : {}) };
}

async function fileSha256(file: string): Promise<string> {
  const hash = createHash('sha256');
  try {
    for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  } catch (e) {
    throw new KilnError(
      'RESOURCE_DOES_NOT_EXIST',
      `data.file '${file}': cannot read (${(e as Error).message})`,
    );
  }
  return hash.digest('hex');
}

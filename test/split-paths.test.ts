import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { materializeMatrix, type PreparedDataset, prepareDataset, splitParquet } from '../src/data/index.js';
import { defineTrainSpec, loadTrainingData, type TrainSplit } from '../src/pipeline/index.js';

/**
 * One split definition: `kiln data split` (splitParquet over a stored Parquet) and a training
 * spec's `split` (loadTrainingData over the matrix it reads) put the same rows in train,
 * valid and test for the same seed, for every seeded method. Rows are told apart by an `id`
 * column.
 */
let dir: string;
let data: PreparedDataset;

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'kiln-split-paths-'));
  let seed = 7;
  const rand = () => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed / 4294967296;
  };
  const lines = ['id,x,grp,late'];
  for (let i = 0; i < 3000; i++)
    lines.push(`${i},${rand().toFixed(5)},g${Math.floor(rand() * 90)},${rand() < 0.3}`);
  writeFileSync(path.join(dir, 'rows.csv'), `${lines.join('\n')}\n`);
  data = await prepareDataset(path.join(dir, 'rows.csv'), { outPath: path.join(dir, 'rows.parquet') });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function idsOfDataSplit(
  split: TrainSplit & { valid: number; test: number },
): Promise<Record<string, number[]>> {
  const fractions = { train: 1 - split.valid - split.test, valid: split.valid, test: split.test };
  const spec =
    split.method === 'random'
      ? { method: 'random' as const, fractions, seed: split.seed }
      : split.method === 'stratified'
        ? { method: 'stratified' as const, column: 'late', fractions, seed: split.seed }
        : {
            method: 'group' as const,
            column: (split as { column: string }).column,
            fractions,
            seed: split.seed,
          };
  const tag = `${split.method}-${split.seed}`;
  const parts = await splitParquet(data.parquetPath, data.schema, spec, (p) =>
    path.join(dir, `${tag}-${p}.parquet`),
  );
  const out: Record<string, number[]> = {};
  for (const p of parts) {
    const m = await materializeMatrix(p.path, { features: ['id'] });
    out[p.name] = Array.from((m.x.columns[0] as { values: Float64Array }).values);
  }
  return out;
}

async function idsOfTrainingSplit(split: TrainSplit): Promise<Record<string, number[]>> {
  const matrices = await loadTrainingData(
    defineTrainSpec({
      data: { file: data.parquetPath },
      features: ['id', 'x'],
      target: 'late',
      split,
      learner: { name: 'gbdt' },
    }),
  );
  const ids = (m: { x: { columns: unknown[] } } | undefined) =>
    m ? Array.from((m.x.columns[0] as { values: Float64Array }).values) : [];
  return { train: ids(matrices.train), valid: ids(matrices.valid), test: ids(matrices.test) };
}

describe('one split definition: kiln data split and a training spec pick the same rows', () => {
  const cases: TrainSplit[] = [
    { method: 'random', valid: 0.2, test: 0.2, seed: 11 },
    { method: 'random', valid: 0.15, test: 0.25, seed: 0 },
    { method: 'stratified', valid: 0.2, test: 0.2, seed: 5 },
    { method: 'group', column: 'grp', valid: 0.2, test: 0.3, seed: 3 },
  ];
  for (const split of cases) {
    it(`${split.method}, seed ${split.seed}`, async () => {
      const viaData = await idsOfDataSplit(split as TrainSplit & { valid: number; test: number });
      const viaTraining = await idsOfTrainingSplit(split);
      expect(viaData.train!.length).toBeGreaterThan(1000);
      expect(viaData.test!.length).toBeGreaterThan(300);
      expect(viaTraining).toEqual(viaData);
    });
  }

  it('a different seed picks different rows (so the equality above is not vacuous)', async () => {
    const a = await idsOfTrainingSplit({ method: 'random', valid: 0.2, test: 0.2, seed: 1 });
    const b = await idsOfTrainingSplit({ method: 'random', valid: 0.2, test: 0.2, seed: 2 });
    expect(a.test).not.toEqual(b.test);
  });
});

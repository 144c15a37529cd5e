import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { materializeMatrix, prepareDataset } from '../src/data/index.js';
import { KilnError } from '../src/errors.js';
import {
  folderWriter,
  MODEL_PACKAGE_FILES,
  readModelPackage,
  writeModelPackage,
} from '../src/learn/index.js';
import { defineTrainSpec, runTraining, type TrainingResult } from '../src/pipeline/index.js';
import { connect, type KilnClient } from '../src/sdk/index.js';

/**
 * The model package end to end: a real training run writes it into the run's artifacts, and
 * readModelPackage loads it back from the run, from a folder and from a file:// URI to a
 * model whose predictions equal the trained one's bit for bit. Damaged packages fail with a
 * KilnError that names the package and the part.
 */
let home: string;
let csv: string;
let client: KilnClient;
let result: TrainingResult;

function writeCsv(file: string, n: number): void {
  let seed = 99;
  const rand = () => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed / 4294967296;
  };
  const lines = ['x1,x2,colour,late'];
  for (let i = 0; i < n; i++) {
    const x1 = rand() * 2 - 1;
    const x2 = rand() * 2 - 1;
    lines.push(
      [
        x1.toFixed(4),
        x2.toFixed(4),
        ['red', 'green', 'blue'][i % 3],
        x1 + 0.5 * x2 + (rand() - 0.5) * 0.4 > 0,
      ].join(','),
    );
  }
  writeFileSync(file, `${lines.join('\n')}\n`);
}

beforeAll(async () => {
  home = mkdtempSync(path.join(tmpdir(), 'kiln-model-package-'));
  csv = path.join(home, 'synth.csv');
  writeCsv(csv, 800);
  client = await connect(path.join(home, 'tracking'));
  result = await runTraining(
    defineTrainSpec({
      data: { file: csv },
      features: ['x1', { name: 'x2sq', expr: 'x2 * x2' }, 'x2', 'colour'],
      target: 'late',
      split: { method: 'random', valid: 0.2, test: 0.2, seed: 3 },
      learner: { name: 'gbdt', params: { num_iterations: 15, num_leaves: 7, threads: 1 } },
      measure: { latency_rows: 10, batch_rows: 100 },
    }),
    { tracking: client },
  );
}, 120_000);
afterAll(async () => {
  await client.close();
  rmSync(home, { recursive: true, force: true });
});

async function scoringMatrix() {
  const { parquetPath } = await prepareDataset(csv, { outPath: path.join(home, 'score.parquet') });
  return materializeMatrix(parquetPath, {
    features: ['x1', { name: 'x2sq', expr: 'x2 * x2' }, 'x2', 'colour'],
    levels: { colour: result.signature.inputs[3]!.levels! },
  });
}

describe('model package', () => {
  it('loads from runs:/<id>/model with the manifest, signature and bit-identical predictions', async () => {
    const pkg = await readModelPackage(`runs:/${result.runId}/model`, { tracking: client.store });
    expect(pkg.manifest).toMatchObject({
      kind: 'kiln.model-package',
      version: 1,
      learner: 'gbdt',
      task: 'binary',
    });
    expect(pkg.manifest.trainingData?.file?.path).toBe(csv);
    expect(pkg.manifest.trainingData?.file?.hash).toMatch(/^[0-9a-f]{64}$/);
    const run = await client.getRun(result.runId);
    const trainRows = run.data.tags.find((t) => t.key === 'kiln.split.rows.train')?.value;
    expect(String(pkg.manifest.trainingData?.rows)).toBe(trainRows);
    expect(pkg.signature.inputs.map((i) => i.name)).toEqual(['x1', 'x2sq', 'x2', 'colour']);
    expect(pkg.signature.inputs[1]).toMatchObject({ type: 'numeric', expr: 'x2 * x2' });
    // Training ranges: x1 and x2 are drawn from (-1, 1), x2² from [0, 1).
    const x1 = pkg.signature.inputs[0]!.range!;
    expect(x1.min).toBeGreaterThanOrEqual(-1);
    expect(x1.max).toBeLessThanOrEqual(1);
    expect(x1.max - x1.min).toBeGreaterThan(1.9);
    expect(pkg.signature.inputs[1]!.range!.min).toBeGreaterThanOrEqual(0);
    expect([...pkg.signature.inputs[3]!.levels!].sort()).toEqual(['blue', 'green', 'red']);
    expect(pkg.signature.inputs[3]!.range).toBeUndefined();
    const x = (await scoringMatrix()).x;
    expect(Array.from(pkg.model.predict(x))).toEqual(Array.from(result.model.predict(x)));
  });

  it('writes to a folder and reads it back by path and by file:// URI, bit-identical', async () => {
    const folder = path.join(home, 'pkg-folder');
    await writeModelPackage(folderWriter(folder), {
      model: result.model,
      signature: result.signature,
      kilnVersion: 'test',
    });
    const x = (await scoringMatrix()).x;
    const expected = Array.from(result.model.predict(x));
    for (const uri of [folder, pathToFileURL(folder).href]) {
      const pkg = await readModelPackage(uri);
      expect(pkg.manifest.kilnVersion).toBe('test');
      expect(Array.from(pkg.model.predict(x))).toEqual(expected);
    }
  });

  describe('bad packages give a KilnError naming the package and the part', () => {
    const damaged = (name: string, damage: (dir: string) => void): string => {
      const dir = path.join(home, `bad-${name}`);
      cpSync(path.join(home, 'pkg-folder'), dir, { recursive: true });
      damage(dir);
      return dir;
    };
    const expectKilnError = async (uri: string, code: string, message: RegExp) => {
      const err = await readModelPackage(uri).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(KilnError);
      expect((err as KilnError).code).toBe(code);
      expect((err as KilnError).message).toMatch(message);
    };

    it('a missing file', async () => {
      for (const file of Object.values(MODEL_PACKAGE_FILES)) {
        const dir = damaged(`missing-${file}`, (d) => rmSync(path.join(d, file)));
        await expectKilnError(dir, 'RESOURCE_DOES_NOT_EXIST', new RegExp(`${dir}: ${file} is missing`));
      }
      await expectKilnError(path.join(home, 'no-such-folder'), 'RESOURCE_DOES_NOT_EXIST', /is missing/);
    });

    it('corrupted model bytes: truncated, overwritten, or not a model', async () => {
      const model = (d: string) => path.join(d, MODEL_PACKAGE_FILES.model);
      const truncated = damaged('truncated', (d) =>
        writeFileSync(model(d), readFileSync(model(d)).subarray(0, 100)),
      );
      await expectKilnError(
        truncated,
        'INVALID_PARAMETER_VALUE',
        /model\.kiln has 100 bytes, the manifest says \d+/,
      );
      const flipped = damaged('flipped', (d) => {
        const bytes = readFileSync(model(d));
        bytes[3] = bytes[3]! ^ 0xff; // inside the magic
        writeFileSync(model(d), bytes);
      });
      await expectKilnError(
        flipped,
        'INVALID_PARAMETER_VALUE',
        /model\.kiln: not a kiln model file: missing KILNMDL1/,
      );
      const garbledSignature = damaged('signature', (d) =>
        writeFileSync(path.join(d, MODEL_PACKAGE_FILES.signature), '{"inputs": [}'),
      );
      await expectKilnError(garbledSignature, 'INVALID_PARAMETER_VALUE', /signature is not valid JSON/);
    });

    it('a package version newer than this kiln, or not a manifest at all', async () => {
      const manifestOf = (d: string) => path.join(d, MODEL_PACKAGE_FILES.manifest);
      const newer = damaged('newer', (d) => {
        const m = JSON.parse(readFileSync(manifestOf(d), 'utf8'));
        writeFileSync(manifestOf(d), JSON.stringify({ ...m, version: 7 }));
      });
      await expectKilnError(
        newer,
        'INVALID_PARAMETER_VALUE',
        /package version 7 is newer than this kiln reads \(1\)/,
      );
      const other = damaged('other', (d) => writeFileSync(manifestOf(d), '{"name": "left-pad"}'));
      await expectKilnError(other, 'INVALID_PARAMETER_VALUE', /is not a kiln model package manifest/);
    });

    it('URIs it cannot read', async () => {
      await expectKilnError(
        'models:/fraud/3',
        'INVALID_PARAMETER_VALUE',
        /'models:' is not a model location/,
      );
      await expectKilnError('runs:/abc', 'INVALID_PARAMETER_VALUE', /runs:\/<run id>\/<artifact path>/);
      await expectKilnError(
        `runs:/${result.runId}/model`,
        'INVALID_PARAMETER_VALUE',
        /needs a tracking store/,
      );
      const err = await readModelPackage('runs:/0123456789abcdef/model', { tracking: client.store }).catch(
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(KilnError);
      expect((err as KilnError).code).toBe('RESOURCE_DOES_NOT_EXIST');
    });
  });
});

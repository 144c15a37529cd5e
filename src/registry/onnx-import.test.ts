import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openArtifactStore } from '../artifacts/index.js';
import { exportLinearToOnnx, LinearLearner } from '../learn/index.js';
import { openStore, type Store } from '../store/index.js';
import { getModelCard } from './model-card.js';
import { importOnnxModel } from './onnx-import.js';
import { failure } from './registry.suite.js';
import { SqlModelRegistry } from './sql-registry.js';

describe('kiln models import (ONNX)', () => {
  let dir: string;
  let store: Store;
  let registry: SqlModelRegistry;
  beforeEach(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-onnx-import-'));
    store = await openStore({ db: path.join(dir, 'kiln.db') });
    registry = new SqlModelRegistry(store, openArtifactStore(path.join(dir, 'artifacts')));
  });
  afterEach(async () => {
    await store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('stores the file, reads its signature with onnxruntime and cards it; refuses a non-ONNX file leaving nothing', async () => {
    const n = 200;
    const a = Float64Array.from({ length: n }, (_, i) => (i * 37) % 101);
    const b = Float64Array.from({ length: n }, (_, i) => (i * 53) % 89);
    const y = Float64Array.from({ length: n }, (_, i) => (a[i]! + b[i]! > 95 ? 1 : 0));
    const model = await new LinearLearner({ task: 'binary' }).fit({
      x: {
        nRows: n,
        columns: [
          { kind: 'numeric', name: 'amount', values: a },
          { kind: 'numeric', name: 'income', values: b },
        ],
      },
      y,
    });
    const file = path.join(dir, 'model.onnx');
    fs.writeFileSync(file, exportLinearToOnnx(model));
    const { version, signature } = await importOnnxModel(
      registry,
      { file, name: 'scorer' },
      { user: 'alice' },
    );
    expect(version).toMatchObject({ name: 'scorer', version: '1', user_id: 'alice' });
    expect(version.source).toMatch(/^kiln-registry:\/registry\/scorer\/[0-9a-f]{32}$/);
    expect(version.tags).toContainEqual({ key: 'kiln.format', value: 'onnx' });
    expect(signature.inputs.map((i) => i.name)).toEqual(['amount', 'income']);
    const folder = version.source.slice('kiln-registry:/'.length);
    expect((await registry.artifacts.getBytes(`${folder}/model.onnx`)).equals(fs.readFileSync(file))).toBe(
      true,
    );
    const card = await getModelCard(registry, 'scorer', '1');
    expect(card.signature?.inputs.map((i) => i.name)).toEqual(['amount', 'income']);

    const junk = path.join(dir, 'junk.onnx');
    fs.writeFileSync(junk, 'not a model');
    const bad = await failure(importOnnxModel(registry, { file: junk, name: 'scorer' }, { user: 'alice' }));
    expect(bad.code).toBe('INVALID_PARAMETER_VALUE');
    expect(bad.message).toContain(`${junk}: not a loadable ONNX model`);
    expect(
      (
        await failure(
          importOnnxModel(registry, { file: path.join(dir, 'nope.onnx'), name: 'scorer' }, { user: 'a' }),
        )
      ).message,
    ).toContain('no such file');
    expect((await registry.artifacts.list('registry/scorer')).length).toBe(1);
    expect((await registry.searchModelVersions({})).items).toHaveLength(1);
  });
});

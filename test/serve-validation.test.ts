import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServeApp, type ServeApp } from '../src/serve/index.js';
import { flightsSpec, type TrainedFixture, trainFixture } from './serve-fixture.js';

/** Response bodies, read as loosely as JSON.parse returns them (each test asserts the fields it reads). */
type Json = ReturnType<typeof JSON.parse>;

/**
 * Validation rules that depend on the model: missing values where the model cannot score them
 * (a linear model without an impute step), the one-hot step's unseen-level policy, values
 * outside the training range (flagged, not refused), and linear explanations.
 */
let linear: TrainedFixture;
let imputed: TrainedFixture;
let gbdt: TrainedFixture;
let served: ServeApp;

beforeAll(async () => {
  const features = ['distance', 'origin'];
  linear = await trainFixture(flightsSpec({ features, learner: { name: 'linear', params: {} } }));
  imputed = await trainFixture(
    flightsSpec({
      features,
      learner: { name: 'linear', params: {} },
      preprocessing: [
        { kind: 'impute', columns: ['distance'], strategy: 'mean' },
        { kind: 'one-hot', unseen: 'error' },
      ],
    } as never),
  );
  gbdt = await trainFixture();
  // The same GBDT package with a training range recorded for distance.
  const ranged = path.join(gbdt.trackingDir, 'ranged');
  mkdirSync(ranged);
  writeFileSync(path.join(ranged, 'model.kiln'), readFileSync(path.join(gbdt.folder, 'model.kiln')));
  const signature = JSON.parse(readFileSync(path.join(gbdt.folder, 'signature.json'), 'utf8'));
  for (const i of signature.inputs) if (i.name === 'distance') i.range = { min: 100, max: 2000 };
  writeFileSync(path.join(ranged, 'signature.json'), JSON.stringify(signature));
  served = await createServeApp({
    deployment: {
      models: [
        { name: 'linear', versions: [{ version: '1', source: linear.folder, weight: 1 }], maxRows: 100 },
        { name: 'imputed', versions: [{ version: '1', source: imputed.folder, weight: 1 }], maxRows: 100 },
        { name: 'ranged', versions: [{ version: '1', source: ranged, weight: 1 }], maxRows: 100 },
      ],
    },
  });
}, 180_000);

afterAll(async () => served?.close());

async function invoke(model: string, body: unknown) {
  const r = await served.app.inject({
    method: 'POST',
    url: `/invocations?model=${model}`,
    payload: body as object,
  });
  return { status: r.statusCode, json: r.json() as Record<string, Json> };
}

describe('model-dependent input rules', () => {
  it('serves the linear model as trained, and explains it as coefficient × value', async () => {
    const rows = linear.rows.slice(0, 10).map(({ distance, origin }) => ({ distance, origin }));
    const r = await invoke('linear', { dataframe_records: rows, params: { explain: true } });
    expect(r.status).toBe(200);
    expect(r.json.predictions).toEqual(Array.from(linear.expected.subarray(0, 10)));
    const c = r.json.contributions[0];
    expect(Object.keys(c)).toEqual(['distance', 'origin', 'bias']);
    const p = linear.expected[0]!;
    expect(c.distance + c.origin + c.bias).toBeCloseTo(Math.log(p / (1 - p)), 9);
  });

  it('refuses a missing number the linear model cannot score, naming row and field', async () => {
    const r = await invoke('linear', {
      dataframe_records: [
        { distance: 500, origin: 'ORD' },
        { distance: null, origin: 'ORD' },
      ],
    });
    expect(r.status).toBe(400);
    expect(r.json.message).toMatch(
      /^row 1, field 'distance': missing value, and this model cannot score one/,
    );
  });

  it('accepts the missing number when the pipeline imputes it, and applies its unseen-level policy', async () => {
    const ok = await invoke('imputed', { dataframe_records: [{ distance: null, origin: 'ORD' }] });
    expect(ok.status).toBe(200);
    expect(Number.isFinite(ok.json.predictions[0])).toBe(true);
    const unseen = await invoke('imputed', {
      dataframe_records: [
        { distance: 300, origin: 'ORD' },
        { distance: 300, origin: 'XXX' },
      ],
    });
    expect(unseen.status).toBe(400);
    expect(unseen.json.message).toMatch(
      /column 'origin' row 1 has level 'XXX', which was not seen .*policy 'error'/,
    );
  });

  it('flags values outside the training range without refusing them', async () => {
    const row = { ...gbdt.rows[0]!, distance: 5000 };
    const r = await invoke('ranged', { dataframe_records: [gbdt.rows[0], row] });
    expect(r.status).toBe(200);
    expect(r.json.predictions).toHaveLength(2);
    expect(r.json.warnings).toEqual([{ row: 1, field: 'distance', kind: 'out_of_range', value: 5000 }]);
    const metrics = await served.metrics.registry.getSingleMetricAsString('kiln_serve_input_warnings_total');
    expect(metrics).toMatch(/model="ranged",version="1",feature="distance",kind="out_of_range"} 1/);
  });
});

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
// The package root, as `import { … } from 'kiln'` sees it (package.json exports map to its build).
import {
  connect,
  createStudy,
  defineTrainSpec,
  loadStudy,
  loadTrainSpec,
  openStore,
  runTraining,
  tuneFromSpec,
} from '../src/index.js';

const FLIGHTS = path.resolve('node_modules/vega-datasets/data/flights-3m.parquet');
const home = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-api-'));
afterAll(() => {
  fs.rmSync(home, { recursive: true, force: true });
});

const spec = defineTrainSpec({
  name: 'api-tune',
  experiment: 'api',
  data: {
    file: FLIGHTS,
    where: "day(date) = 1 AND hour(date) < 9 AND origin IN ('ORD', 'ATL')",
    derive: { hour: 'hour(date)' },
  },
  features: ['hour', 'distance', 'origin'],
  target: { name: 'late', expr: 'delay > 15' },
  split: { method: 'random', valid: 0.25, test: 0.25, seed: 1 },
  learner: { name: 'gbdt', params: { num_iterations: 4, threads: 1 } },
  measure: { latency_rows: 20, batch_rows: 100 },
  search: {
    space: { num_leaves: { type: 'int', low: 2, high: 16 } },
    sampler: { name: 'random', seed: 1 },
    trials: 2,
  },
});

describe('the package root exports training and tuning', () => {
  it('trains, tunes and reads the study back through root imports only', async () => {
    const client = await connect(home);
    const store = await openStore({ db: path.join(home, 'kiln.db') });
    try {
      const trained = await runTraining(spec, { tracking: client });
      expect(trained.runId).toMatch(/^[0-9a-f]{32}$/);
      const tuned = await tuneFromSpec(spec, { store, client, study: 'api-study' });
      expect(tuned.finished).toHaveLength(2);
      const study = await loadStudy({ store, name: 'api-study' });
      expect(study.trials()).toHaveLength(2);

      const own = await createStudy({ store, name: 'api-own', spec: { sampler: { name: 'random' } } });
      await own.optimize((t) => t.suggestFloat('x', -1, 1) ** 2, { nTrials: 3 });
      expect((await loadStudy({ store, name: 'api-own' })).trials()).toHaveLength(3);
    } finally {
      await store.close();
      await client.close();
    }
  });

  it('loads a YAML spec', () => {
    const file = path.join(home, 'spec.yaml');
    fs.writeFileSync(
      file,
      `data: { file: ${JSON.stringify(FLIGHTS)} }\nfeatures: [distance]\ntarget: { name: late, expr: delay > 15 }\nlearner: { name: gbdt }\n`,
    );
    const loaded = loadTrainSpec(file);
    expect(loaded.learner.name).toBe('gbdt');
    expect(loaded.features).toEqual(['distance']);
  });
});

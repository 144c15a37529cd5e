import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { grantRole, searchAuditLog } from '../auth/index.js';
import { withDuck } from '../data/index.js';
import { attachLabels, SqlPredictionLog } from '../monitor/index.js';
import { getDeployment, setPromotionPolicy } from '../registry/index.js';
import { connect } from '../sdk/index.js';
import { runPipeline } from './run.js';

const ref = (r: string) => `\${${r}}`;

let dir: string;
let home: string;
let csvRows: { x1: number; x2: number; c: string; label: string }[];

/** 400 rows: label is yes when x1 + x2/2 (plus a little noise) is positive; c is noise. */
function tinyCsv(): string {
  let s = 7;
  const rand = () => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return s / 2147483648;
  };
  const rows = ['x1,x2,c,label'];
  for (let i = 0; i < 400; i++) {
    const x1 = rand() * 2 - 1;
    const x2 = rand() * 2 - 1;
    const c = ['a', 'b', 'c'][Math.floor(rand() * 3)];
    rows.push(
      `${x1.toFixed(4)},${x2.toFixed(4)},${c},${x1 + x2 / 2 + (rand() - 0.5) * 0.2 > 0 ? 'yes' : 'no'}`,
    );
  }
  return `${rows.join('\n')}\n`;
}

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'kiln-pipeline-builtin-'));
  home = path.join(dir, '.kiln');
  const csv = tinyCsv();
  writeFileSync(path.join(dir, 'tiny.csv'), csv);
  csvRows = csv
    .trim()
    .split('\n')
    .slice(1)
    .map((l) => {
      const [x1, x2, c, label] = l.split(',');
      return { x1: Number(x1), x2: Number(x2), c: c!, label: label! };
    });
  writeFileSync(
    path.join(dir, 'expect.yaml'),
    stringify({ expectations: [{ row_count: { min: 100 } }, { column: 'label', in_set: ['yes', 'no'] }] }),
  );
  writeFileSync(
    path.join(dir, 'train.yaml'),
    stringify({
      name: 'tiny',
      data: { dataset: 'tiny' },
      features: ['x1', 'x2', 'c'],
      target: 'label',
      split: { method: 'random', valid: 0.2, test: 0.2, seed: 1 },
      learner: { name: 'gbdt', params: { num_iterations: 20, num_leaves: 4, min_data_in_leaf: 5 } },
      metrics: ['auc'],
      measure: { latency_rows: 50, batch_rows: 200 },
    }),
  );
  writeFileSync(
    path.join(dir, 'kiln.yaml'),
    stringify({
      name: 'tiny-ct',
      experiment: 'tiny',
      params: { min_auc: 0.8 },
      steps: {
        ingest: { kind: 'ingest', params: { file: 'tiny.csv', name: 'tiny', expect: 'expect.yaml' } },
        validate: {
          kind: 'validate',
          params: { dataset: ref('steps.ingest.outputs.dataset'), expect: 'expect.yaml' },
        },
        split: {
          kind: 'split',
          params: {
            dataset: ref('steps.validate.outputs.dataset'),
            split: { method: 'random', fractions: { train: 0.75, holdout: 0.25 }, seed: 3 },
          },
        },
        train: {
          kind: 'train',
          params: { spec: 'train.yaml', dataset: ref('steps.validate.outputs.dataset') },
        },
        evaluate: {
          kind: 'evaluate',
          params: {
            run: ref('steps.train.outputs.run_id'),
            require: [`test.auc >= ${ref('params.min_auc')}`],
          },
        },
        register: {
          kind: 'register',
          params: { name: 'tiny-model', run: ref('steps.train.outputs.run_id') },
          after: ['evaluate'],
        },
        promote: {
          kind: 'promote',
          params: { name: 'tiny-model', version: ref('steps.register.outputs.version'), alias: 'champion' },
        },
      },
    }),
  );
  const client = await connect({ home });
  try {
    const registry = client.workspace!.registry!;
    await registry.createRegisteredModel({ name: 'tiny-model' }, { user: 'alice' });
    await setPromotionPolicy(
      registry,
      'tiny-model',
      stringify({
        aliases: ['champion'],
        primary: { metric: 'test.auc', direction: 'maximize', min_improvement: 0 },
      }),
      { user: 'alice' },
    );
  } finally {
    await client.close();
  }
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('built-in steps (each in a worker process)', () => {
  it('ingest → validate → split / train → evaluate → register → promote, then cached on the second run', async () => {
    const first = await runPipeline(path.join(dir, 'kiln.yaml'), { workspace: { home } });
    const by = Object.fromEntries(first.steps.map((s) => [s.step, s]));
    expect(first.steps.map((s) => [s.step, s.status, s.error])).toEqual(
      ['ingest', 'validate', 'split', 'train', 'evaluate', 'register', 'promote'].map((s) => [
        s,
        'succeeded',
        null,
      ]),
    );
    expect(first.status).toBe('SUCCEEDED');
    expect(by.ingest!.outputs).toMatchObject({ dataset: { value: 'tiny@1' }, rows: { value: 400 } });
    expect(by.split!.outputs).toEqual({
      train: { value: 'tiny.train@1' },
      holdout: { value: 'tiny.holdout@1' },
    });
    const runId = (by.train!.outputs!.run_id as { value: string }).value;
    // The train step's tracking run is the training run, linked to the pipeline run.
    expect(runId).toBe(by.train!.trackingRunId);
    expect(by.register!.outputs).toMatchObject({
      version: { value: '1' },
      model_uri: { value: 'models:/tiny-model/1' },
    });
    expect(by.promote!.outputs).toMatchObject({
      decision: { value: 'accepted' },
      alias: { value: 'champion' },
    });

    const client = await connect({ home });
    try {
      const run = await client.getRun(runId);
      const tags = Object.fromEntries(run.data.tags.map((t) => [t.key, t.value]));
      expect(tags['kiln.pipeline.run_id']).toBe(first.runId);
      expect(tags['mlflow.parentRunId']).toBe(first.trackingRunId);
      expect(run.data.metrics.find((m) => m.key === 'test.auc')!.value).toBeGreaterThan(0.8);
      const model = await client.workspace!.registry!.getRegisteredModel('tiny-model');
      expect(model.aliases).toEqual([{ alias: 'champion', version: '1' }]);
    } finally {
      await client.close();
    }

    // Unchanged: every step but promote (never cached by default) is a hit.
    const second = await runPipeline(path.join(dir, 'kiln.yaml'), { workspace: { home } });
    expect(second.steps.map((s) => s.status)).toEqual([
      'cached',
      'cached',
      'cached',
      'cached',
      'cached',
      'cached',
      'succeeded',
    ]);
    expect(second.steps.at(-1)!.outputs!.decision).toEqual({ value: 'unchanged' });

    // A stricter bound than the model meets fails evaluate; register and promote do not run.
    const strict = await runPipeline(path.join(dir, 'kiln.yaml'), {
      workspace: { home },
      params: { min_auc: '1.01' },
    });
    expect(strict.status).toBe('FAILED');
    expect(Object.fromEntries(strict.steps.map((s) => [s.step, s.status]))).toMatchObject({
      train: 'cached',
      evaluate: 'failed',
      register: 'skipped',
      promote: 'skipped',
    });
    expect(strict.steps.find((s) => s.step === 'evaluate')!.error).toContain('misses test.auc >= 1.01');
  }, 120_000);
});

/** Mann–Whitney AUC of scores against yes/no labels (ties count a half). */
function aucOf(scores: number[], labels: boolean[]): number {
  let pos = 0;
  let neg = 0;
  let wins = 0;
  for (let i = 0; i < scores.length; i++) {
    if (!labels[i]) continue;
    pos++;
    for (let j = 0; j < scores.length; j++) {
      if (labels[j]) continue;
      if (i === 0) neg++;
      wins += scores[i]! > scores[j]! ? 1 : scores[i] === scores[j] ? 0.5 : 0;
    }
  }
  neg = labels.filter((l) => !l).length;
  return wins / (pos * neg);
}

describe('transform, deploy and monitor-check steps', () => {
  it('transform registers the query result, deploy sets a stored deployment (role-checked, audited), monitor-check reads drift and alerts', async () => {
    // Runs after the first describe registered tiny@1 and tiny-model/1.
    const user = 'pipeline-bot';
    const previousUser = process.env.KILN_USER;
    process.env.KILN_USER = user;
    const spec = (steps: Record<string, unknown>, params: Record<string, unknown> = {}) => {
      const file = path.join(dir, `steps-${Object.keys(steps).join('-')}.yaml`);
      writeFileSync(file, stringify({ name: 'more-steps', experiment: 'tiny', params, steps }));
      return file;
    };
    try {
      // transform: the SQL's result is a new version, with the rows DuckDB's own count gives.
      const t = await runPipeline(
        spec({
          ingest: { kind: 'ingest', params: { file: 'tiny.csv', name: 'tiny', expect: 'expect.yaml' } },
          transform: {
            kind: 'transform',
            params: {
              dataset: ref('steps.ingest.outputs.dataset'),
              name: 'tiny-wide',
              sql: "SELECT *, x1 + x2 AS s FROM data WHERE c <> 'c'",
            },
          },
        }),
        { workspace: { home } },
      );
      expect(t.steps.map((x) => [x.step, x.status, x.error])).toEqual([
        ['ingest', 'cached', null],
        ['transform', 'succeeded', null],
      ]);
      const kept = csvRows.filter((r) => r.c !== 'c');
      const out = t.steps[1]!.outputs!;
      expect(out.dataset).toEqual({ value: 'tiny-wide@1' });
      expect(out.rows).toEqual({ value: kept.length });
      const client = await connect({ home });
      try {
        const ws = client.workspace!;
        const v = await ws.datasets.getVersion('tiny-wide@1');
        expect(v.schema.columns.map((c) => c.name)).toEqual(['x1', 'x2', 'c', 'label', 's']);
        const file = await ws.datasets.parquetPath(v);
        const sums = await withDuck(async (conn) =>
          (await conn.runAndReadAll(`SELECT sum(s) AS s FROM read_parquet('${file}')`)).getRowObjects(),
        );
        expect(Number(sums[0]!.s)).toBeCloseTo(
          kept.reduce((a, r) => a + r.x1 + r.x2, 0),
          6,
        );
      } finally {
        await client.close();
      }

      // deploy: refused without the editor role, then set once granted; a re-run changes nothing.
      const deploySpec = spec({
        deploy: { kind: 'deploy', params: { name: 'tiny-web', model: 'tiny-model@champion', reason: 'ct' } },
      });
      const denied = await runPipeline(deploySpec, { workspace: { home } });
      expect(denied.status).toBe('FAILED');
      expect(denied.steps[0]!.error).toContain(
        `needs the editor role on 'tiny-model'; ${user} does not hold it`,
      );
      const c2 = await connect({ home });
      try {
        await grantRole(c2.workspace!.store!.db, { user, role: 'editor', scope: 'tiny-*' }, 'alice');
      } finally {
        await c2.close();
      }
      const deployed = await runPipeline(deploySpec, { workspace: { home } });
      expect(deployed.steps[0]!.outputs).toEqual({
        name: { value: 'tiny-web' },
        versions: { value: [{ model: 'models:/tiny-model@champion', weight: 1 }] },
        changed: { value: true },
      });
      const again = await runPipeline(deploySpec, { workspace: { home } });
      expect(again.steps[0]!.outputs!.changed).toEqual({ value: false });

      // monitor-check: traffic for tiny-model/1 with x1 shifted by +1.5 (a drift) and labels.
      const c3 = await connect({ home });
      const now = Date.now();
      const scores: number[] = [];
      const labels: boolean[] = [];
      try {
        const ws = c3.workspace!;
        const d = await getDeployment(ws.registry!, 'tiny-web');
        expect(d.updated_by).toBe(user);
        const audit = await searchAuditLog(ws.store!.db, { action: 'deployment.set', actor: user });
        expect(audit.entries).toHaveLength(1);
        expect(audit.entries[0]!.detail).toMatchObject({
          reason: 'ct',
          resolved: { 'models:/tiny-model@champion': 'models:/tiny-model/1' },
        });
        const records = csvRows.map((r, i) => {
          const p = 1 / (1 + Math.exp(-3 * (r.x1 + r.x2 / 2)));
          scores.push(p);
          labels.push(r.label === 'yes');
          return {
            time: new Date(now - 60_000 + i * 10).toISOString(),
            requestId: `q${i}`,
            model: 'tiny-model',
            version: '1',
            shadow: false,
            latencyMs: 1,
            inputs: { x1: [r.x1 + 1.5], x2: [r.x2], c: [r.c] },
            outputs: { predictions: [p] },
          };
        });
        await new SqlPredictionLog(ws.store!).write(records);
        await attachLabels(
          ws.store!,
          // DuckDB reads the yes/no column as a boolean, so the model's classes are false/true.
          csvRows.map((r, i) => ({ request_id: `q${i}`, label: r.label === 'yes' })),
        );
      } finally {
        await c3.close();
      }
      const checkSpec = spec(
        {
          check: {
            kind: 'monitor-check',
            params: {
              check: 'drift',
              model: 'tiny-model@champion',
              window: '1h',
              share: 0.3,
              fail_on_alert: ref('params.strict'),
            },
          },
        },
        { strict: false },
      );
      const checked = await runPipeline(checkSpec, { workspace: { home } });
      expect(checked.status, checked.steps[0]!.error ?? '').toBe('SUCCEEDED');
      const o = checked.steps[0]!.outputs!;
      expect(o.rows).toEqual({ value: 400 });
      expect(o.version).toEqual({ value: '1' });
      expect((o.drifted as { value: string[] }).value).toContain('x1');
      expect((o.drifted as { value: string[] }).value).not.toContain('c');
      expect([o.labelled, checked.steps[0]!.error]).toEqual([{ value: 400 }, null]);
      expect((o.auc as { value: number }).value).toBeCloseTo(aucOf(scores, labels), 9);
      const strict = await runPipeline(checkSpec, { workspace: { home }, params: { strict: 'true' } });
      expect(strict.status).toBe('FAILED');
      expect(strict.steps[0]!.error).toMatch(/dataset drift over 1h: .*x1/);

      // alerts: the model's rules are evaluated and stored, as kiln monitor check does.
      const c4 = await connect({ home });
      try {
        const { setAlertRules } = await import('../monitor/index.js');
        const ws = c4.workspace!;
        await setAlertRules(
          { store: ws.store!, artifacts: ws.artifacts!, registry: ws.registry! },
          'tiny-model',
          stringify({
            window: '1h',
            rules: [
              { name: 'x1', kind: 'feature_drift', feature: 'x1' },
              { name: 'c', kind: 'feature_drift', feature: 'c' },
            ],
          }),
          'rules.yaml',
          'alice',
        );
      } finally {
        await c4.close();
      }
      const alerts = await runPipeline(
        spec({ alerts: { kind: 'monitor-check', params: { model: 'tiny-model' } } }),
        { workspace: { home } },
      );
      expect(alerts.steps[0]!.outputs).toMatchObject({
        firing: { value: ['x1'] },
        fired: { value: ['x1'] },
        version: { value: '1' },
      });
    } finally {
      if (previousUser === undefined) delete process.env.KILN_USER;
      else process.env.KILN_USER = previousUser;
    }
  }, 180_000);
});

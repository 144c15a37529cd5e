import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalArtifactStore } from '../src/artifacts/index.js';
import { resolveConfig } from '../src/config.js';
import { SqlPredictionLog } from '../src/monitor/index.js';
import {
  HOUR,
  type MonitorFixture,
  setupMonitoredModel,
  T0,
  trafficRecords,
} from '../src/monitor/monitor.suite.js';
import { SqlModelRegistry } from '../src/registry/index.js';
import { buildApp } from '../src/server/index.js';
import { openStore } from '../src/store/index.js';
import { SqlTrackingStore } from '../src/tracking/index.js';
import { runKiln } from './kiln-process.js';

/** Drift through both front doors: `kiln monitor drift` and GET /api/kiln/monitor/drift. */
describe('monitor drift front doors', () => {
  let dir: string;
  let fx: MonitorFixture;
  const end = new Date(T0 + 24 * HOUR).toISOString();

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-drift-'));
    const config = resolveConfig({ home: dir, db: path.join(dir, 'kiln.db') });
    const store = await openStore({ db: config.db });
    const artifacts = new LocalArtifactStore(config.artifacts);
    const tracking = await SqlTrackingStore.create(store, artifacts);
    const registry = new SqlModelRegistry(store, artifacts, { tracking });
    fx = {
      store,
      artifacts,
      registry,
      tracking,
      close: async () => {
        await tracking.close();
        await store.close();
      },
    };
    await setupMonitoredModel(fx);
    await new SqlPredictionLog(store).write(
      trafficRecords(500, { start: T0, stepMs: 1000, shift: 6 }).records,
    );
  });
  afterAll(async () => {
    await fx.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('kiln monitor drift prints the report (JSON and text) and refuses bad flags', async () => {
    const env = { ...process.env, KILN_HOME: dir };
    const db = path.join(dir, 'kiln.db');
    const r = await runKiln(
      [
        'monitor',
        'drift',
        '--model',
        'flights@champion',
        '--window',
        '24h',
        '--end',
        end,
        '--db',
        db,
        '--json',
      ],
      env,
    );
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report.window.requests).toBe(500);
    expect(report.features.find((f: { column: string }) => f.column === 'amount').drifted).toBe(true);
    const text = await runKiln(['monitor', 'drift', '--model', 'flights/1', '--end', end, '--db', db], env);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toContain('dataset drift: no (1/3 features drifted');
    expect(text.stdout).toMatch(/amount\s+wasserstein/);
    const bad = await runKiln(
      ['monitor', 'drift', '--model', 'flights@champion', '--window', '7x', '--db', db],
      env,
    );
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain('kiln: INVALID_PARAMETER_VALUE: --window: expected a duration like 7d');
    const badTest = await runKiln(
      ['monitor', 'drift', '--model', 'flights@champion', '--test', 'amount=nope', '--db', db],
      env,
    );
    expect(badTest.stderr).toContain('--test: expected FEATURE=TEST');
  });

  it('GET /api/kiln/monitor/drift answers the same report and 400s naming the field', async () => {
    const config = resolveConfig({ home: dir, db: fx.store.location });
    const app = await buildApp({ store: fx.store, artifacts: fx.artifacts, config });
    try {
      const ok = await app.inject({
        method: 'GET',
        url: `/api/kiln/monitor/drift?model=flights@champion&window=24h&end=${end}&test=amount=ks`,
      });
      expect(ok.statusCode, ok.body).toBe(200);
      const amount = ok.json().features.find((f: { column: string }) => f.column === 'amount');
      expect(amount.test).toBe('ks');
      expect(amount.drifted).toBe(true);
      const badShare = await app.inject({
        method: 'GET',
        url: '/api/kiln/monitor/drift?model=flights@champion&share=0',
      });
      expect(badShare.statusCode).toBe(400);
      expect(badShare.json()).toMatchObject({ error_code: 'INVALID_PARAMETER_VALUE' });
      expect(badShare.json().message).toContain('share');
      const noModel = await app.inject({ method: 'GET', url: '/api/kiln/monitor/drift' });
      expect(noModel.statusCode).toBe(400);
      expect(noModel.json().message).toContain('model');
      const unknown = await app.inject({ method: 'GET', url: '/api/kiln/monitor/drift?model=nope@champion' });
      expect(unknown.statusCode).toBe(404);
      const badFeature = await app.inject({
        method: 'GET',
        url: '/api/kiln/monitor/drift?model=flights/1&test=zzz=ks',
      });
      expect(badFeature.statusCode).toBe(400);
      expect(badFeature.json().message).toContain("'zzz' is not a monitored feature");
    } finally {
      await app.close();
    }
  });
});

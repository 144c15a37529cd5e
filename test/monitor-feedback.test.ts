import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalArtifactStore } from '../src/artifacts/index.js';
import { resolveConfig } from '../src/config.js';
import { readPredictionWindow, SqlPredictionLog } from '../src/monitor/index.js';
import { buildApp } from '../src/server/index.js';
import { openStore, type Store } from '../src/store/index.js';
import { runKiln } from './kiln-process.js';

/** Labels through both front doors: `kiln monitor feedback FILE` and POST /api/kiln/monitor/feedback. */
describe('monitor feedback', () => {
  let dir: string;
  let db: string;
  let store: Store;
  const T0 = Date.UTC(2026, 0, 1);

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-feedback-'));
    db = path.join(dir, 'kiln.db');
    store = await openStore({ db });
    await new SqlPredictionLog(store).write(
      ['a', 'b', 'c'].map((id, i) => ({
        time: new Date(T0 + i).toISOString(),
        requestId: id,
        model: 'm',
        version: '1',
        shadow: false,
        latencyMs: 1,
        inputs: { x: [i] },
        outputs: { proba: [0.5] },
      })),
    );
  });
  afterAll(async () => {
    await store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('kiln monitor feedback attaches labels, counts unknown ids, and refuses a bad file whole', async () => {
    const env = { ...process.env, KILN_HOME: dir };
    const file = path.join(dir, 'labels.csv');
    fs.writeFileSync(file, 'request_id,label\na,1\nzz,0\n');
    const r = await runKiln(['monitor', 'feedback', file, '--db', db, '--json'], env);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ labelled: 1, unchanged: 0, unknown: 1, unknown_ids: ['zz'] });
    const again = await runKiln(['monitor', 'feedback', file, '--db', db, '--json'], env);
    expect(JSON.parse(again.stdout)).toMatchObject({ labelled: 0, unchanged: 1 });
    const bad = path.join(dir, 'bad.jsonl');
    fs.writeFileSync(bad, '{"request_id":"b","label":1}\n{"request_id":"c"}\n');
    const refused = await runKiln(['monitor', 'feedback', bad, '--db', db], env);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain('bad.jsonl:2: label must be');
    const rows = await readPredictionWindow(store, { model: 'm', from: T0, to: T0 + 10, labelledOnly: true });
    expect(rows.map((x) => x.request_id)).toEqual(['a']);
  });

  it('POST /api/kiln/monitor/feedback attaches labels and gives a 400 naming a bad item', async () => {
    const config = resolveConfig({ home: dir, db: store.location });
    const app = await buildApp({ store, artifacts: new LocalArtifactStore(config.artifacts), config });
    try {
      const ok = await app.inject({
        method: 'POST',
        url: '/api/kiln/monitor/feedback',
        payload: {
          feedback: [
            { request_id: 'c', label: 0 },
            { request_id: 'nope', label: 1 },
          ],
        },
      });
      expect(ok.statusCode, ok.body).toBe(200);
      expect(ok.json()).toEqual({ labelled: 1, unchanged: 0, unknown: 1, unknown_ids: ['nope'] });
      const bad = await app.inject({
        method: 'POST',
        url: '/api/kiln/monitor/feedback',
        payload: {
          feedback: [
            { request_id: 'b', label: 1 },
            { request_id: '', label: 1 },
          ],
        },
      });
      expect(bad.statusCode).toBe(400);
      expect(bad.json().message).toContain('feedback[1]: request_id');
      const rows = await readPredictionWindow(store, {
        model: 'm',
        from: T0,
        to: T0 + 10,
        labelledOnly: true,
      });
      expect(rows.map((x) => x.request_id)).toEqual(['a', 'c']);
      const empty = await app.inject({ method: 'POST', url: '/api/kiln/monitor/feedback', payload: {} });
      expect(empty.statusCode).toBe(400);
    } finally {
      await app.close();
    }
  });
});

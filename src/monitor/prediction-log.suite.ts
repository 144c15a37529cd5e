import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PredictionHook, type PredictionRecord } from '../serve/index.js';
import type { Store } from '../store/index.js';
import {
  attachLabels,
  parseFeedback,
  prunePredictions,
  readLabelledWindows,
  readPredictionWindow,
  SqlPredictionLog,
  sampledIn,
} from './prediction-log.js';

export interface PredictionLogFixture {
  store: Store;
  close(): Promise<void>;
}

const T0 = Date.UTC(2026, 0, 1);

function record(i: number, over: Partial<PredictionRecord> = {}): PredictionRecord {
  return {
    time: new Date(T0 + i * 1000).toISOString(),
    requestId: `r${i}`,
    model: 'fraud',
    version: '1',
    shadow: false,
    latencyMs: 1 + i / 10,
    inputs: { amount: [i * 1.5], email: [`user${i}@x.org`], ssn: [`000-${i}`] },
    outputs: { proba: [i / 100] },
    ...over,
  };
}

/** One suite over every metadata DB (SQLite, Postgres). */
export function runPredictionLogSuite(name: string, make: () => Promise<PredictionLogFixture>): void {
  describe(`prediction log on ${name}`, () => {
    let f: PredictionLogFixture;
    beforeEach(async () => {
      f = await make();
    });
    afterEach(async () => {
      await f.close();
    });

    it('stores batches with redacted and hashed fields, read back by window', async () => {
      const log = new SqlPredictionLog(f.store, { redact: ['ssn'], hash: ['email'], hashSalt: 's' });
      await log.write([0, 1, 2].map((i) => record(i)));
      await log.write([record(3, { version: '2' }), record(3, { version: '3', shadow: true })]);
      const all = await readPredictionWindow(f.store, { model: 'fraud', from: T0, to: T0 + 10_000 });
      expect(all.map((r) => [r.request_id, r.version])).toEqual([
        ['r0', '1'],
        ['r1', '1'],
        ['r2', '1'],
        ['r3', '2'],
      ]);
      expect(all[1]!.inputs.amount).toEqual([1.5]);
      expect(all[1]!.inputs.ssn).toEqual([null]);
      expect(all[1]!.inputs.email![0]).toMatch(/^[0-9a-f]{16}$/);
      expect(all[1]!.inputs.email![0]).not.toEqual(all[2]!.inputs.email![0]);
      expect(all[1]!.latency_ms).toBeCloseTo(1.1, 12);
      expect(all[1]!.time).toBe(T0 + 1000);
      const v1 = await readPredictionWindow(f.store, {
        model: 'fraud',
        version: '1',
        from: T0 + 1000,
        to: T0 + 2000,
      });
      expect(v1.map((r) => r.request_id)).toEqual(['r1']);
      const withShadow = await readPredictionWindow(f.store, {
        model: 'fraud',
        from: T0,
        to: T0 + 10_000,
        includeShadow: true,
      });
      expect(withShadow).toHaveLength(5);
      await expect(readPredictionWindow(f.store, { model: 'fraud', from: 5, to: 5 })).rejects.toThrow(
        /must be after/,
      );
    });

    it('samples by request id, keeping live and shadow rows of one request together', async () => {
      const log = new SqlPredictionLog(f.store, { sampleRate: 0.25 });
      const recs = Array.from({ length: 2000 }, (_, i) => record(i));
      await log.write([...recs, ...recs.map((r) => ({ ...r, shadow: true, version: '9' }))]);
      const kept = await readPredictionWindow(f.store, {
        model: 'fraud',
        from: T0,
        to: T0 + 1e7,
        includeShadow: true,
      });
      const live = kept.filter((r) => !r.shadow).map((r) => r.request_id);
      const shadow = kept.filter((r) => r.shadow).map((r) => r.request_id);
      expect(shadow).toEqual(live);
      expect(live).toEqual(recs.filter((r) => sampledIn(r.requestId, 0.25)).map((r) => r.requestId));
      // 2000 draws at p = 0.25: sd ≈ 19.4; 6 sd either side.
      expect(Math.abs(live.length - 500)).toBeLessThan(117);
      expect(() => new SqlPredictionLog(f.store, { sampleRate: 0 })).toThrow(/sampleRate/);
      expect(() => new SqlPredictionLog(f.store, { redact: ['a'], hash: ['a'] })).toThrow(
        /both redacted and hashed/,
      );
    });

    it('applies retention on write and on demand', async () => {
      let now = T0 + 10_000;
      const log = new SqlPredictionLog(f.store, { retentionMs: 5_000 }, () => now);
      await log.write(Array.from({ length: 10 }, (_, i) => record(i)));
      // Rows at T0..T0+9s with now = T0+10s: those before T0+5s are gone.
      let rows = await readPredictionWindow(f.store, { model: 'fraud', from: 0, to: T0 + 1e6 });
      expect(rows.map((r) => r.request_id)).toEqual(['r5', 'r6', 'r7', 'r8', 'r9']);
      now += 1000; // within a minute of the last prune: no second prune yet
      await log.write([record(0)]);
      rows = await readPredictionWindow(f.store, { model: 'fraud', from: 0, to: T0 + 1e6 });
      expect(rows).toHaveLength(6);
      expect(await prunePredictions(f.store, T0 + 7_000)).toBe(3);
    });

    it('attaches late labels idempotently and counts unknown ids', async () => {
      const log = new SqlPredictionLog(f.store);
      await log.write([record(1), record(2), record(2, { version: '2', shadow: true }), record(3)]);
      const fb = parseFeedback('request_id,label\nr1,1\nr2,0\nnope,1\n', 'fb.csv');
      expect(await attachLabels(f.store, fb, T0 + 99)).toEqual({
        labelled: 2,
        unchanged: 0,
        unknown: 1,
        unknown_ids: ['nope'],
      });
      expect(await attachLabels(f.store, fb, T0 + 100)).toEqual({
        labelled: 0,
        unchanged: 2,
        unknown: 1,
        unknown_ids: ['nope'],
      });
      const corrected = parseFeedback('{"request_id":"r2","label":1}\n', 'fb.jsonl');
      expect((await attachLabels(f.store, corrected)).labelled).toBe(1);
      const rows = await readPredictionWindow(f.store, {
        model: 'fraud',
        from: T0,
        to: T0 + 1e6,
        labelledOnly: true,
        includeShadow: true,
      });
      expect(rows.map((r) => [r.request_id, r.version, r.label])).toEqual([
        ['r1', '1', 1],
        ['r2', '1', 1],
        ['r2', '2', 1],
      ]);
      expect(rows[0]!.label_time).toBe(T0 + 99);
      const windows = await readLabelledWindows(f.store, {
        model: 'fraud',
        from: T0,
        to: T0 + 1e6,
        includeShadow: true,
      });
      expect([...windows.keys()].sort()).toEqual(['1', '2']);
      expect(windows.get('1')!.map((r) => r.request_id)).toEqual(['r1', 'r2']);
    });

    it('serving hands records through the bounded hook without waiting; overflow is dropped and counted', async () => {
      const log = new SqlPredictionLog(f.store);
      let logged = 0;
      let dropped = 0;
      const hook = new PredictionHook(log, 100, {
        logged: (n) => (logged += n),
        dropped: (n) => (dropped += n),
      });
      // 250 offers in one synchronous burst: the drain runs only after this loop yields.
      for (let i = 0; i < 250; i++) hook.offer(() => record(i));
      expect(logged).toBe(100);
      expect(dropped).toBe(150);
      await hook.close();
      const rows = await readPredictionWindow(f.store, { model: 'fraud', from: T0, to: T0 + 1e7 });
      expect(rows.map((r) => r.request_id)).toEqual(Array.from({ length: 100 }, (_, i) => `r${i}`));
    });
  });
}

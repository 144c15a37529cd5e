import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { KilnError } from '../errors.js';
import type { Metric } from '../tracking/index.js';
import { MetricBatcher } from './metric-batcher.js';

/** A receiving end that takes a little while per call and records what arrived and how. */
function recorder(options: { failFirst?: KilnError; delayMs?: number } = {}) {
  const batches: Metric[][] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  let calls = 0;
  const send = async (metrics: Metric[]) => {
    calls++;
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    try {
      await sleep(options.delayMs ?? 1);
      if (calls === 1 && options.failFirst) throw options.failFirst;
      batches.push(metrics);
    } finally {
      inFlight--;
    }
  };
  return {
    send,
    batches,
    get maxInFlight() {
      return maxInFlight;
    },
    get calls() {
      return calls;
    },
  };
}

describe('MetricBatcher', () => {
  it('delivers thousands of points complete and in order, ≤1000 per batch, one batch in flight', async () => {
    const r = recorder();
    const b = new MetricBatcher(r.send, { flushIntervalMs: 5 });
    const n = 12_345;
    for (let i = 0; i < n; i++) {
      b.add(i % 3 === 0 ? 'loss' : 'acc', i * 0.5, i, 1_700_000_000_000 + i);
      // Let the background sends run now and then, as a real training loop's awaits would.
      if (i % 2000 === 0) await sleep(0);
    }
    expect(b.pending).toBeGreaterThan(0);
    await b.close();
    expect(b.pending).toBe(0);
    const all = r.batches.flat();
    expect(all).toHaveLength(n);
    for (let i = 0; i < n; i++) {
      expect(all[i]).toEqual({
        key: i % 3 === 0 ? 'loss' : 'acc',
        value: i * 0.5,
        step: i,
        timestamp: 1_700_000_000_000 + i,
      });
    }
    expect(Math.max(...r.batches.map((x) => x.length))).toBeLessThanOrEqual(1000);
    expect(r.maxInFlight).toBe(1);
  });

  it('sends a partial batch on the timer without a flush', async () => {
    const r = recorder();
    const b = new MetricBatcher(r.send, { flushIntervalMs: 10 });
    b.add('x', 1, 0, 1);
    b.add('x', 2, 1, 2);
    for (let i = 0; i < 500 && r.batches.length === 0; i++) await sleep(10);
    expect(r.batches.flat().map((m) => m.value)).toEqual([1, 2]);
    expect(b.pending).toBe(0);
    await b.close();
  });

  it('keeps a batch that failed transiently and sends it on the next flush', async () => {
    const r = recorder({ failFirst: new KilnError('INTERNAL_ERROR', 'server down') });
    const b = new MetricBatcher(r.send, { maxBatchSize: 10, flushIntervalMs: 60_000 });
    for (let i = 0; i < 25; i++) b.add('m', i, i, i);
    await expect(b.flush()).rejects.toThrow('server down');
    expect(b.pending).toBe(25);
    await b.flush();
    expect(r.batches.flat().map((m) => m.step)).toEqual(Array.from({ length: 25 }, (_, i) => i));
    await b.close();
  });

  it('drops a batch the store rejected (4xx) and still sends the rest', async () => {
    const r = recorder({ failFirst: new KilnError('INVALID_STATE', 'run is deleted') });
    const b = new MetricBatcher(r.send, { maxBatchSize: 10, flushIntervalMs: 60_000 });
    for (let i = 0; i < 25; i++) b.add('m', i, i, i);
    await expect(b.flush()).rejects.toMatchObject({ code: 'INVALID_STATE' });
    expect(b.pending).toBe(15);
    await b.flush();
    expect(r.batches.flat().map((m) => m.step)).toEqual(Array.from({ length: 15 }, (_, i) => i + 10));
    await b.close();
  });

  it('refuses points after close and batch sizes above MLflow’s limit', async () => {
    const r = recorder();
    const b = new MetricBatcher(r.send);
    await b.close();
    expect(() => b.add('x', 1, 0, 0)).toThrow(/ended/);
    expect(() => new MetricBatcher(r.send, { maxBatchSize: 1001 })).toThrow(/1\.\.1000/);
  });
});

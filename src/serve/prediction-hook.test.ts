import { describe, expect, it } from 'vitest';
import { PredictionHook, type PredictionRecord } from './prediction-hook.js';

const record = (i: number): PredictionRecord => ({
  time: '2026-01-01T00:00:00Z',
  requestId: String(i),
  model: 'm',
  version: '1',
  shadow: false,
  latencyMs: 1,
  inputs: { x: [i] },
  outputs: { predictions: [i] },
});

describe('PredictionHook: bounded, non-blocking', () => {
  it('drops and counts when the buffer is full, never waits for the sink, and flush delivers the rest', async () => {
    let release: () => void = () => {};
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const written: PredictionRecord[] = [];
    const counts = { logged: 0, dropped: 0 };
    const hook = new PredictionHook(
      {
        write: async (records) => {
          await gate;
          written.push(...records);
        },
      },
      10,
      { logged: (n) => (counts.logged += n), dropped: (n) => (counts.dropped += n) },
    );
    const started = performance.now();
    for (let i = 0; i < 100; i++) hook.offer(() => record(i));
    expect(performance.now() - started).toBeLessThan(50);
    expect(counts).toEqual({ logged: 10, dropped: 90 });
    release();
    await hook.flush();
    expect(written.map((r) => r.requestId)).toEqual(Array.from({ length: 10 }, (_, i) => String(i)));
    // Space again once drained.
    hook.offer(() => record(100));
    await hook.flush();
    expect(written).toHaveLength(11);
  });

  it('builds no record at all when there is no sink', () => {
    const hook = new PredictionHook(undefined, 10, { logged: () => {}, dropped: () => {} });
    hook.offer(() => {
      throw new Error('must not be called');
    });
  });

  it('counts a failed sink write as dropped records', async () => {
    let dropped = 0;
    const hook = new PredictionHook({ write: async () => Promise.reject(new Error('disk full')) }, 10, {
      logged: () => {},
      dropped: (n) => (dropped += n),
    });
    hook.offer(() => record(1));
    hook.offer(() => record(2));
    await hook.flush();
    expect(dropped).toBe(2);
  });
});

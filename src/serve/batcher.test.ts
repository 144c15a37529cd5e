import { describe, expect, it } from 'vitest';
import { LatencyModel } from './batcher.js';

describe('LatencyModel', () => {
  it('fits run time = a + b · rows from observed batches', () => {
    const m = new LatencyModel();
    for (let i = 0; i < 50; i++) {
      const rows = 1 + ((i * 37) % 500);
      m.observe(rows, 0.2 + 0.004 * rows);
    }
    expect(m.predict(0)).toBeCloseTo(0.2, 9);
    expect(m.predict(1000)).toBeCloseTo(4.2, 9);
  });

  it('follows a change in speed (recent batches weigh more)', () => {
    const m = new LatencyModel(0.9);
    for (let i = 0; i < 100; i++) m.observe(100 + (i % 7), 1);
    for (let i = 0; i < 100; i++) m.observe(100 + (i % 7), 10);
    expect(m.predict(100)).toBeGreaterThan(9.5);
  });
});

import { describe, expect, it } from 'vitest';
import { groupAssignment, randomAssignment, stratifiedAssignment } from '../../data/index.js';
import { takeRows } from './load-data.js';

function counts(assign: Uint8Array, parts = 3): number[] {
  const out = new Array(parts).fill(0);
  for (const p of assign) out[p]++;
  return out;
}

describe('in-memory splits', () => {
  it('random: exact sizes, deterministic by seed, different across seeds', () => {
    const a = randomAssignment(1000, [0.6, 0.2, 0.2], 1);
    expect(counts(a)).toEqual([600, 200, 200]);
    expect(randomAssignment(1000, [0.6, 0.2, 0.2], 1)).toEqual(a);
    const b = randomAssignment(1000, [0.6, 0.2, 0.2], 2);
    expect(b).not.toEqual(a);
    // Not simply the first 600 rows.
    expect(counts(a.subarray(0, 600))[0]).toBeLessThan(400);
  });

  it('stratified: every part keeps the class shares', () => {
    const y = new Float64Array(1000);
    for (let i = 0; i < 1000; i++) y[i] = i % 10 === 0 ? 1 : 0; // 10% positives
    const a = stratifiedAssignment(y, [0.6, 0.2, 0.2], 3);
    for (let p = 0; p < 3; p++) {
      let n = 0;
      let pos = 0;
      for (let i = 0; i < 1000; i++) {
        if (a[i] !== p) continue;
        n++;
        pos += y[i]!;
      }
      expect(pos / n).toBeCloseTo(0.1, 3);
    }
    expect(counts(a)).toEqual([600, 200, 200]);
  });

  it('group: all rows of a group land in one part, shares near the target', () => {
    const n = 5000;
    const codes = new Int32Array(n);
    for (let i = 0; i < n; i++) codes[i] = i % 250;
    const levels = Array.from({ length: 250 }, (_, g) => `g${g}`);
    const a = groupAssignment(codes, levels, [0.6, 0.2, 0.2], 5);
    const partOf = new Map<number, number>();
    for (let i = 0; i < n; i++) {
      const seen = partOf.get(codes[i]!);
      if (seen !== undefined) expect(a[i]).toBe(seen);
      partOf.set(codes[i]!, a[i]!);
    }
    const c = counts(a);
    expect(c[0]! / n).toBeGreaterThan(0.5);
    expect(c[0]! / n).toBeLessThan(0.7);
    expect(c[1]).toBeGreaterThan(0);
    expect(c[2]).toBeGreaterThan(0);
  });

  it('takeRows gathers every column and the label by the assignment', () => {
    const m = {
      x: {
        nRows: 4,
        columns: [
          { kind: 'numeric' as const, name: 'a', values: new Float64Array([1, 2, 3, 4]) },
          { kind: 'numeric' as const, name: 'f', values: new Float32Array([0.5, 1.5, 2.5, 3.5]) },
          {
            kind: 'categorical' as const,
            name: 'b',
            codes: new Int32Array([0, 1, 0, -1]),
            levels: ['u', 'v'],
          },
        ],
      },
      y: new Float64Array([0, 1, 1, 0]),
    };
    const part = takeRows(m, new Uint8Array([1, 0, 1, 1]), 1);
    expect(part.x.nRows).toBe(3);
    expect(Array.from((part.x.columns[0] as { values: Float64Array }).values)).toEqual([1, 3, 4]);
    // A Float32 column stays Float32 (a materialised flights matrix would double in memory otherwise).
    expect((part.x.columns[1] as { values: Float32Array }).values).toEqual(new Float32Array([0.5, 2.5, 3.5]));
    expect(Array.from((part.x.columns[2] as { codes: Int32Array }).codes)).toEqual([0, 0, -1]);
    expect(Array.from(part.y!)).toEqual([0, 1, 0]);
  });
});

describe('loadTrainingData on the flights data', () => {
  it('time split: parts follow the cutoffs and test levels are the training levels', async () => {
    const { loadTrainingData } = await import('./load-data.js');
    const { defineTrainSpec } = await import('./spec.js');
    const spec = defineTrainSpec({
      data: {
        file: 'node_modules/vega-datasets/data/flights-3m.parquet',
        where: "day(date) = 1 AND hour(date) < 7 AND origin IN ('ORD', 'ATL', 'DEN')",
      },
      features: [{ name: 'm', expr: 'month(date)' }, 'origin'],
      target: { name: 'late', expr: 'delay > 15' },
      split: { method: 'time', column: 'date', valid_from: '2001-04-01', test_from: '2001-05-01' },
      learner: { name: 'gbdt' },
    });
    const d = await loadTrainingData(spec);
    const months = (m: { x: { columns: { kind: string }[] } }) =>
      new Set(Array.from((m.x.columns[0] as unknown as { values: Float64Array }).values));
    expect([...months(d.train)].sort()).toEqual([1, 2, 3]);
    expect([...months(d.valid!)]).toEqual([4]);
    // The file runs to 1 July 2001: everything from May on is test.
    expect([...months(d.test!)].sort()).toEqual([5, 6, 7]);
    const levels = (m: typeof d.train) => (m.x.columns[1] as { levels: string[] }).levels;
    expect(levels(d.test!)).toEqual(levels(d.train));
    expect(d.test!.classes).toEqual(['false', 'true']);
    expect(d.lineage['kiln.split.rows.train']).toBe(String(d.train.x.nRows));
  });
});

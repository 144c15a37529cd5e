import { describe, expect, it } from 'vitest';
import { alignSeries, lowerBound } from './align.js';
import { minMaxDownsample } from './downsample.js';
import { emaSmooth } from './smooth.js';

describe('minMaxDownsample', () => {
  it('keeps a one-step spike out of 100,000 points and the envelope of every bucket', () => {
    const n = 100_000;
    const x = new Float64Array(n);
    const y = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      x[i] = i;
      y[i] = Math.sin(i / 500);
    }
    y[54_321] = 50;
    y[77_777] = -40;
    const d = minMaxDownsample(x, y, 500);
    expect(d.x.length).toBeLessThanOrEqual(1002);
    expect(Math.max(...d.y)).toBe(50);
    expect(Math.min(...d.y)).toBe(-40);
    expect([...d.x]).toContain(54_321);
    // x stays sorted (uPlot's contract) and every kept point is a real one.
    for (let i = 1; i < d.x.length; i++) expect(d.x[i]!).toBeGreaterThan(d.x[i - 1]!);
    for (let i = 0; i < d.x.length; i += 37) expect(d.y[i]).toBe(y[d.x[i]!]);
  });
  it('returns short series unchanged and skips NaN', () => {
    expect([...minMaxDownsample([1, 2, 3], [3, 1, 2], 10).y]).toEqual([3, 1, 2]);
    const x = Float64Array.from({ length: 100 }, (_, i) => i);
    const y = Float64Array.from({ length: 100 }, (_, i) => (i % 2 ? Number.NaN : i));
    const d = minMaxDownsample(x, y, 10);
    expect([...d.y].some(Number.isNaN)).toBe(false);
    expect(d.y[d.y.length - 1]).toBe(98);
  });
});

describe('emaSmooth', () => {
  it('is debiased (a constant stays constant) and follows TensorBoard on a step', () => {
    expect([...emaSmooth([5, 5, 5, 5], 0.9)].map((v) => Number(v.toFixed(12)))).toEqual([5, 5, 5, 5]);
    // By hand: w=0.5: last=0.5*0+0.5*0=0 → 0/(1-0.5)=0; then 0.5 → 0.5/0.75; then 0.75 → 0.75/0.875.
    const s = emaSmooth([0, 1, 1], 0.5);
    expect(s[0]).toBe(0);
    expect(s[1]).toBeCloseTo(0.5 / 0.75, 12);
    expect(s[2]).toBeCloseTo(0.75 / 0.875, 12);
    expect([...emaSmooth([1, 2], 0)]).toEqual([1, 2]);
  });
});

describe('alignSeries', () => {
  it('joins runs on the union of their steps with nulls where a run has no point', () => {
    const a = alignSeries([
      { x: [0, 2, 4], y: [1, 2, 3] },
      { x: [1, 2, 2, 5], y: [9, 8, 7, Number.NaN] },
    ]);
    expect(a.x).toEqual([0, 1, 2, 4, 5]);
    expect(a.ys[0]).toEqual([1, null, 2, 3, null]);
    expect(a.ys[1]).toEqual([null, 9, 7, null, null]);
  });
  it('lowerBound finds the first index at or above a value', () => {
    expect(lowerBound([1, 3, 3, 7], 3)).toBe(1);
    expect(lowerBound([1, 3, 3, 7], 8)).toBe(4);
    expect(lowerBound([1, 3, 3, 7], 0)).toBe(0);
  });
});

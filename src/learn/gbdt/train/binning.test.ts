import { describe, expect, it } from 'vitest';
import type { FeatureMatrix } from '../../../data/index.js';
import { binMatrix, findBinMappers } from './binning.js';

const opts = { maxBin: 255, minDataInBin: 3, sampleCount: 200_000, seed: 0 };

describe('findBinMappers / binMatrix', () => {
  it('gives every distinct value its own bin when there are few, and NaN the last bin', () => {
    const values = Float64Array.of(3, 1, Number.NaN, 2, 2, 3, Number.NaN, 1);
    const x: FeatureMatrix = { nRows: values.length, columns: [{ kind: 'numeric', name: 'v', values }] };
    const [m] = findBinMappers(x, opts);
    expect(m.nBins).toBe(4);
    expect(m.missingBin).toBe(3);
    expect(Array.from(m.upper)).toEqual([1.5, 2.5, Number.POSITIVE_INFINITY]);
    const d = binMatrix(x, [m], false);
    expect(Array.from(d.columns[0])).toEqual([2, 0, 3, 1, 1, 2, 3, 0]);
    expect(Array.from(d.rowMajor)).toEqual(Array.from(d.columns[0]));
  });

  it('caps numeric features at max_bin value bins, roughly equal in count, with bin ≤ t ⇔ value ≤ upper[t]', () => {
    const n = 100_000;
    const values = new Float64Array(n);
    let s = 12345;
    for (let i = 0; i < n; i++) {
      s = (Math.imul(s, 1103515245) + 12345) >>> 0;
      values[i] = (s / 4294967296) ** 3 * 1000;
    }
    const x: FeatureMatrix = { nRows: n, columns: [{ kind: 'numeric', name: 'v', values }] };
    const [m] = findBinMappers(x, { ...opts, maxBin: 63 });
    expect(m.nBins).toBeLessThanOrEqual(64);
    expect(m.nBins).toBeGreaterThan(50);
    const d = binMatrix(x, [m], false);
    const counts = new Array(m.nBins).fill(0);
    for (let i = 0; i < n; i++) {
      const b = d.columns[0][i];
      counts[b]++;
      expect(values[i] <= m.upper[b]).toBe(true);
      if (b > 0) expect(values[i] > m.upper[b - 1]).toBe(true);
    }
    const valueBins = counts.slice(0, m.missingBin);
    expect(Math.max(...valueBins)).toBeLessThan((3 * n) / 63);
  });

  it('maps categorical codes by frequency and sends missing, unseen and over-capacity codes to the missing bin', () => {
    const codes = Int32Array.of(2, 2, 2, 0, 0, -1, 3, 1, 1, 1, 1);
    const x: FeatureMatrix = {
      nRows: codes.length,
      columns: [{ kind: 'categorical', name: 'c', codes, levels: ['a', 'b', 'c', 'd', 'never'] }],
    };
    const [m] = findBinMappers(x, { ...opts, maxBin: 3 });
    // Kept (most frequent first): b (4), c (3), a (2); d (1) exceeds the 3-bin capacity.
    expect(Array.from(m.binToCode)).toEqual([1, 2, 0]);
    expect(m.missingBin).toBe(3);
    expect(Array.from(m.codeToBin)).toEqual([2, 0, 1, 3, 3]);
    const d = binMatrix(x, [m], false);
    expect(Array.from(d.columns[0])).toEqual([1, 1, 1, 2, 2, 3, 3, 0, 0, 0, 0]);
  });

  it('uses a fixed sample for bin boundaries, so the same seed gives the same bins', () => {
    const n = 5000;
    const values = Float64Array.from({ length: n }, (_, i) => Math.sin(i) * 100);
    const x: FeatureMatrix = { nRows: n, columns: [{ kind: 'numeric', name: 'v', values }] };
    const a = findBinMappers(x, { ...opts, sampleCount: 1000, seed: 1 })[0];
    const b = findBinMappers(x, { ...opts, sampleCount: 1000, seed: 1 })[0];
    const c = findBinMappers(x, { ...opts, sampleCount: 1000, seed: 2 })[0];
    expect(a.upper).toEqual(b.upper);
    expect(a.upper).not.toEqual(c.upper);
  });
});

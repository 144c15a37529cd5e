import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { categoricalFromCounts, numericDistribution } from './distribution.js';
import { driftHistogram } from './histogram.js';
import type { BinnedDistribution } from './types.js';

function lcg(seed: number) {
  return () => {
    seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
    return seed / 2 ** 32;
  };
}

describe('driftHistogram', () => {
  it('bins exact numeric sides on the reference range as numpy.histogram does', () => {
    const rand = lcg(7);
    const ref = Array.from({ length: 2000 }, () => Math.round(rand() * 1000) / 10);
    // The current side is shifted: some of it falls above the reference's max.
    const cur = Array.from({ length: 1500 }, () => Math.round(rand() * 1000) / 10 + 30);
    const h = driftHistogram(
      numericDistribution(Float64Array.from(ref)),
      numericDistribution(Float64Array.from(cur)),
    );
    expect(h?.kind).toBe('numeric');
    if (h?.kind !== 'numeric') return;
    expect(h.edges).toHaveLength(21);
    const py = `
import json, sys, numpy as np
d = json.load(sys.stdin)
e = np.array(d["edges"])
out = {}
for side in ("ref", "cur"):
    x = np.array(d[side])
    inside = x[(x >= e[0]) & (x <= e[-1])]
    out[side] = [np.histogram(inside, bins=e)[0].tolist(), int((x < e[0]).sum()), int((x > e[-1]).sum())]
print(json.dumps(out))`;
    const want = JSON.parse(
      execFileSync('/usr/bin/python3', ['-c', py], {
        input: JSON.stringify({ edges: h.edges, ref, cur }),
      }).toString(),
    );
    expect([h.reference, h.below.reference, h.above.reference]).toEqual(want.ref);
    expect([h.current, h.below.current, h.above.current]).toEqual(want.cur);
    expect(h.above.current).toBeGreaterThan(0);
  });

  it("groups a profile's fine bins, exactly, and spreads the other side onto the same edges", () => {
    const counts = Float64Array.from({ length: 100 }, (_, i) => i + 1);
    const ref: BinnedDistribution = {
      kind: 'binned',
      lo: 0,
      hi: 10,
      counts,
      below: { count: 3, sum: -3 },
      above: { count: 4, sum: 50 },
      n: 5050 + 7,
      min: -1,
      max: 12.5,
      mean: 5,
      std: 2,
      distinct: 5000,
    };
    const h = driftHistogram(ref, numericDistribution(Float64Array.from([0, 0.5, 0.49, 9.99, 10, 11, -2])));
    if (h?.kind !== 'numeric') throw new Error('numeric expected');
    expect(h.edges).toEqual(Array.from({ length: 21 }, (_, j) => (j === 20 ? 10 : j * 0.5)));
    expect(h.reference).toEqual(Array.from({ length: 20 }, (_, j) => 25 * j + 15));
    expect(h.reference.reduce((a, b) => a + b, 0)).toBe(5050);
    expect([h.below.reference, h.above.reference]).toEqual([3, 4]);
    const want = new Array(20).fill(0);
    want[0] = 2;
    want[1] = 1;
    want[19] = 2;
    expect(h.current).toEqual(want);
    expect([h.below.current, h.above.current]).toEqual([1, 1]);
  });

  it('shows the categories largest in either side first, the rest as other', () => {
    const h = driftHistogram(
      categoricalFromCounts({ a: 50, b: 30, c: 20 }),
      categoricalFromCounts({ a: 10, d: 80, c: 10 }),
      2,
    );
    expect(h).toEqual({
      kind: 'categorical',
      categories: ['d', 'a'],
      reference: [0, 50],
      current: [80, 10],
      other: { reference: 50, current: 10 },
    });
  });
});

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { chooseDriftTest, columnDrift, datasetDrift } from './choose.js';
import { categoricalDistribution, numericDistribution } from './distribution.js';
import { kolmogorovSf } from './ks-distribution.js';
import { DRIFT_TESTS } from './tests.js';
import type { ColumnDistribution, DriftTestName, FeatureKind } from './types.js';

/**
 * Every statistic and p-value against scipy 1.10 (ks_2samp, kstwo.sf, chisquare,
 * wasserstein_distance, jensenshannon) and Evidently's formulas restated in numpy, from
 * test/fixtures/monitor/drift_fixtures.py (regenerate: `/usr/bin/python3 <that file> > drift-cases.json`).
 * Tolerance: 1e-6 absolute, and 1e-6 relative for values above 1.
 */
const fixtures = JSON.parse(
  readFileSync(new URL('../../../test/fixtures/monitor/drift-cases.json', import.meta.url), 'utf8'),
) as {
  cases: {
    name: string;
    reference: Spec;
    current: Spec;
    feature: FeatureKind;
    expected: Partial<
      Record<DriftTestName, { statistic?: number | string; pValue?: number | null; score?: number }>
    >;
  }[];
  kstwo: { n: number; x: number; sf: number }[];
};

type Spec =
  | { kind: 'uniform' | 'sum2' | 'sq'; seed: number; n: number; a: number; b: number }
  | { kind: 'int'; seed: number; n: number; k: number; a: number }
  | { kind: 'cat'; seed: number; n: number; cuts: number[]; labels: string[] };

/** The generator's 32-bit LCG, bit for bit. */
function lcg(seed: number, n: number): Float64Array {
  let s = seed >>> 0;
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = (s + 0.5) / 2 ** 32;
  }
  return out;
}

function generate(spec: Spec): ColumnDistribution {
  if (spec.kind === 'cat') {
    const u = lcg(spec.seed, spec.n);
    const cuts = [...spec.cuts, 2];
    return categoricalDistribution(Array.from(u, (x) => spec.labels[cuts.findIndex((c) => x < c)]));
  }
  const values = new Float64Array(spec.n);
  if (spec.kind === 'int') {
    const u = lcg(spec.seed, spec.n);
    for (let i = 0; i < spec.n; i++) values[i] = Math.floor(spec.k * u[i]) + spec.a;
  } else if (spec.kind === 'sum2') {
    const u = lcg(spec.seed, 2 * spec.n);
    for (let i = 0; i < spec.n; i++) values[i] = spec.a + spec.b * (u[2 * i] + u[2 * i + 1]);
  } else {
    const u = lcg(spec.seed, spec.n);
    for (let i = 0; i < spec.n; i++) values[i] = spec.a + spec.b * (spec.kind === 'sq' ? u[i] * u[i] : u[i]);
  }
  return numericDistribution(values);
}

function close(actual: number, expected: number | string | null | undefined, what: string) {
  if (expected === 'Infinity') return expect(actual, what).toBe(Number.POSITIVE_INFINITY);
  if (typeof expected !== 'number') throw new Error(`${what}: no expected value`);
  const tol = 1e-6 * Math.max(1, Math.abs(expected));
  expect(Math.abs(actual - expected), `${what}: ${actual} vs ${expected}`).toBeLessThanOrEqual(tol);
}

describe('drift statistics equal scipy / Evidently on exact data (1e-6)', () => {
  for (const c of fixtures.cases) {
    it(c.name, () => {
      const ref = generate(c.reference);
      const cur = generate(c.current);
      let checked = 0;
      for (const [name, exp] of Object.entries(c.expected) as [DriftTestName, Record<string, number>][]) {
        const out = DRIFT_TESTS[name].run(ref, cur, c.feature);
        if (exp.statistic !== undefined) close(out.statistic, exp.statistic, `${name} statistic`);
        if (exp.pValue === null) {
          // scipy's chisquare gives NaN for a single category (0 degrees of freedom); kiln defines 1.
          expect(name).toBe('chisquare');
          expect(out.score).toBe(1);
        } else if (exp.pValue !== undefined) close(out.score, exp.pValue, `${name} p-value`);
        if (exp.score !== undefined) close(out.score, exp.score, `${name} score`);
        checked++;
      }
      expect(checked).toBeGreaterThanOrEqual(3);
    });
  }
});

describe('kolmogorovSf equals scipy kstwo.sf in every algorithm branch', () => {
  it(`${fixtures.kstwo.length} (n, x) points`, () => {
    for (const { n, x, sf } of fixtures.kstwo) close(kolmogorovSf(n, x), sf, `kstwo.sf(${x}, ${n})`);
  });
});

describe("Evidently's default test choice", () => {
  const num = (values: number[]) => numericDistribution(values);
  const range = <T>(n: number, f: (i: number) => T): T[] => Array.from({ length: n }, (_, i) => f(i));
  it('reference ≤ 1000 rows: KS for numeric > 5 values, χ² for ≤ 5, Z for binary', () => {
    expect(chooseDriftTest(num(range(1000, (i) => i)), num(range(50, (i) => i)), 'num').name).toBe('ks');
    expect(chooseDriftTest(num(range(1000, (i) => i % 5)), num(range(50, (i) => i % 5)), 'num').name).toBe(
      'chisquare',
    );
    expect(chooseDriftTest(num(range(1000, (i) => i % 2)), num(range(50, (i) => i % 2)), 'num').name).toBe(
      'z',
    );
    const cat = categoricalDistribution(range(300, (i) => `c${i % 3}`));
    expect(chooseDriftTest(cat, cat, 'cat').name).toBe('chisquare');
    const bin = categoricalDistribution(range(300, (i) => (i % 2 ? 'y' : 'n')));
    expect(chooseDriftTest(bin, bin, 'cat').name).toBe('z');
  });
  it('distinct values count over both sides together', () => {
    // 3 values in the reference, 3 other ones in the current: 6 together → KS, not χ².
    expect(
      chooseDriftTest(num(range(900, (i) => i % 3)), num(range(90, (i) => 3 + (i % 3))), 'num').name,
    ).toBe('ks');
  });
  it('reference > 1000 rows: Wasserstein for numeric > 5 values, Jensen–Shannon otherwise', () => {
    expect(chooseDriftTest(num(range(1001, (i) => i)), num(range(50, (i) => i)), 'num').name).toBe(
      'wasserstein',
    );
    expect(chooseDriftTest(num(range(1001, (i) => i % 5)), num(range(50, (i) => i % 5)), 'num').name).toBe(
      'jensenshannon',
    );
    const cat = categoricalDistribution(range(2000, (i) => `c${i % 30}`));
    expect(chooseDriftTest(cat, cat, 'cat').name).toBe('jensenshannon');
  });
});

describe('edge cases', () => {
  it('all-equal columns: no drift by every applicable test', () => {
    const a = numericDistribution(new Float64Array(400).fill(3));
    const b = numericDistribution(new Float64Array(300).fill(3));
    for (const name of [
      'ks',
      'wasserstein',
      'chisquare',
      'z',
      'jensenshannon',
      'psi',
      'hellinger',
    ] as const) {
      const r = columnDrift('x', a, b, 'num', { test: name });
      expect(r.drifted, name).toBe(false);
    }
    expect(columnDrift('x', a, b, 'num').test).toBe('z');
  });
  it('all-equal but different values: drift', () => {
    const a = numericDistribution(new Float64Array(400).fill(3));
    const b = numericDistribution(new Float64Array(300).fill(4));
    expect(columnDrift('x', a, b, 'num').drifted).toBe(true);
    expect(columnDrift('x', a, b, 'num', { test: 'wasserstein' }).score).toBeCloseTo(1 / 0.001, 6);
  });
  it('one category on both sides: p = 1', () => {
    const a = categoricalDistribution(['k', 'k', 'k']);
    const r = columnDrift('c', a, a, 'cat');
    expect([r.test, r.score, r.drifted]).toEqual(['z', 1, false]);
  });
  it('an empty window is refused with a message naming the column; in a dataset it is no_data', () => {
    const a = numericDistribution([1, 2, 3]);
    const empty = numericDistribution([Number.NaN]);
    expect(() => columnDrift('fare', a, empty, 'num')).toThrow(
      /column 'fare' has no values in the current data/,
    );
    const d = datasetDrift([
      { column: 'fare', reference: a, current: empty, feature: 'num' },
      { column: 'hour', reference: a, current: a, feature: 'num' },
    ]);
    expect(d.columns[0]).toEqual({
      column: 'fare',
      status: 'no_data',
      reason: 'no values in the current data',
    });
    expect([d.testedColumns, d.driftedColumns, d.drifted]).toEqual([1, 0, false]);
  });
  it('a test that does not apply is refused', () => {
    const c = categoricalDistribution(['a', 'b', 'c']);
    expect(() => columnDrift('c', c, c, 'cat', { test: 'ks' })).toThrow(/does not apply to cat column 'c'/);
  });
});

describe('dataset drift share', () => {
  const same = numericDistribution(Float64Array.from({ length: 500 }, (_, i) => i));
  const moved = numericDistribution(Float64Array.from({ length: 500 }, (_, i) => i + 300));
  const cols = (k: number) =>
    Array.from({ length: 4 }, (_, i) => ({
      column: `f${i}`,
      reference: same,
      current: i < k ? moved : same,
      feature: 'num' as const,
    }));
  it('drifts at share ≥ 0.5 by default, configurable', () => {
    expect(datasetDrift(cols(2)).drifted).toBe(true);
    expect(datasetDrift(cols(1)).drifted).toBe(false);
    expect(datasetDrift(cols(2), 0.75).drifted).toBe(false);
    expect(datasetDrift(cols(3), 0.75)).toMatchObject({ drifted: true, share: 0.75, driftedColumns: 3 });
    expect(() => datasetDrift(cols(1), 0)).toThrow(/share threshold/);
  });
});

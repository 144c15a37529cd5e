import { describe, expect, it } from 'vitest';
import { bestSoFar, paretoFront, varianceExplained } from './study-math.js';

describe('study math', () => {
  it('tracks the best value so far in either direction, skipping failed trials', () => {
    expect(bestSoFar([3, null, 5, 1, 2], 'minimize')).toEqual([3, 3, 3, 1, 1]);
    expect(bestSoFar([null, 3, 5, 1], 'maximize')).toEqual([null, 3, 5, 5]);
  });
  it('finds the non-dominated points of a two-objective minimisation', () => {
    const pts = [
      [1, 5],
      [2, 2],
      [3, 3], // dominated by [2,2]
      [5, 1],
      [2, 2], // a tie is not domination
      [6, 6],
    ];
    expect(paretoFront(pts, ['minimize', 'minimize'])).toEqual([0, 1, 3, 4]);
    expect(paretoFront(pts, ['maximize', 'minimize'])).toEqual([3, 5]);
  });
  it('computes η² by hand: groups {a: 1,3} {b: 5,7} of a mean-4 objective', () => {
    // SS_total = 9+1+1+9 = 20; SS_between = 2·(2-4)² + 2·(6-4)² = 16; η² = 0.8.
    expect(varianceExplained(['a', 'a', 'b', 'b'], [1, 3, 5, 7])).toBeCloseTo(0.8, 12);
    expect(varianceExplained([1, 2, 3, 4], [7, 7, 7, 7])).toBe(0);
    // A numeric parameter that orders the objective explains nearly all of it.
    const xs = Array.from({ length: 50 }, (_, i) => i);
    expect(
      varianceExplained(
        xs,
        xs.map((x) => 2 * x),
      ),
    ).toBeGreaterThan(0.95);
    expect(
      varianceExplained(
        xs,
        xs.map((x) => (x % 2 ? 1 : -1)),
      ),
    ).toBeLessThan(0.05);
  });
});

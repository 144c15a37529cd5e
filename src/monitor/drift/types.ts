/**
 * Drift tests compare one column's reference distribution with its current one. Every test is a
 * `DriftTest` in its own file, registered in `tests.ts`; `chooseDriftTest` (choose.ts) picks one
 * by Evidently's default rules. The rules every implementation keeps:
 *  - It works on the distributions below (typed arrays of distinct values / bins / categories
 *    with counts), never on one JS object per row, so the same code serves raw arrays and
 *    stored profiles.
 *  - Missing values are not part of a distribution (their share is reported separately); a side
 *    with no values is refused by `runDriftTest` with INVALID_PARAMETER_VALUE before a test runs.
 *  - On exact distributions the score equals Evidently's (and scipy's, where scipy computes it)
 *    to 1e-6; on a binned side it also returns `errorBound`, a proven bound on |score − exact|.
 *  - A test never mutates its inputs.
 */

/** Exact numeric data: distinct finite values ascending, each with its count. */
export interface NumericDistribution {
  kind: 'numeric';
  values: Float64Array;
  counts: Float64Array;
  /** Σ counts. */
  n: number;
}

/**
 * Numeric data known through a profile's fine histogram: `bins` equal-width bins over [lo, hi]
 * (the reference's min..max), plus exact count and sum of the values outside it. min, max,
 * mean and std are exact (profiles keep them exactly).
 */
export interface BinnedDistribution {
  kind: 'binned';
  lo: number;
  hi: number;
  counts: Float64Array;
  below: { count: number; sum: number };
  above: { count: number; sum: number };
  n: number;
  min: number;
  max: number;
  mean: number;
  std: number;
  /** Distinct values (exact, or a HyperLogLog estimate past the profile's exact limit). */
  distinct: number;
}

/** Category counts; `keys[i]` has `counts[i]`. */
export interface CategoricalDistribution {
  kind: 'categorical';
  keys: string[];
  counts: Float64Array;
  n: number;
}

export type ColumnDistribution = NumericDistribution | BinnedDistribution | CategoricalDistribution;

/** Evidently's feature types: a numeric column may still be tested as categories. */
export type FeatureKind = 'num' | 'cat';

export type DriftTestName = 'ks' | 'chisquare' | 'z' | 'wasserstein' | 'jensenshannon' | 'psi' | 'hellinger';

export interface DriftTestOutcome {
  /** The test statistic (KS D, χ², z, or the distance itself). */
  statistic: number;
  /** What is compared with the threshold: the p-value for tests, the distance for distances. */
  score: number;
  /** Set when a side was binned: |score − score on the exact data| ≤ errorBound. */
  errorBound?: number;
  /** For p-values computed from a binned statistic: the p-values at the statistic's bounds. */
  scoreRange?: [number, number];
  /** How a p-value was computed (KS: 'exact' or 'asymp'). */
  method?: string;
}

export interface DriftTest {
  readonly name: DriftTestName;
  /** 'p_value': drift when score < threshold; 'distance': drift when score ≥ threshold. */
  readonly scoreKind: 'p_value' | 'distance';
  readonly defaultThreshold: number;
  /** Feature types the test applies to (as Evidently registers them). */
  readonly featureKinds: readonly FeatureKind[];
  run(reference: ColumnDistribution, current: ColumnDistribution, feature: FeatureKind): DriftTestOutcome;
}

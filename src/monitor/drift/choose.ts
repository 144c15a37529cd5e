import { KilnError } from '../../errors.js';
import { alignCategories, asCategories, distinctCount } from './distribution.js';
import { DRIFT_TESTS } from './tests.js';
import type { ColumnDistribution, DriftTest, DriftTestName, DriftTestOutcome, FeatureKind } from './types.js';

/**
 * Evidently's default test for a column (its `_get_default_stattest`), with n_values the
 * distinct values of both sides together:
 *   reference ≤ 1000 rows: numeric with > 5 values → KS; numeric ≤ 5 and categorical → χ² if
 *     more than 2 values, else the Z-test;
 *   reference > 1000 rows: numeric > 5 values → normed Wasserstein; otherwise Jensen–Shannon.
 */
export const SMALL_REFERENCE_ROWS = 1000;
export const FEW_VALUES = 5;

export function chooseDriftTest(
  reference: ColumnDistribution,
  current: ColumnDistribution,
  feature: FeatureKind,
): DriftTest {
  const values = unionDistinct(reference, current);
  if (reference.n <= SMALL_REFERENCE_ROWS) {
    if (feature === 'num' && values > FEW_VALUES) return DRIFT_TESTS.ks;
    return values > 2 ? DRIFT_TESTS.chisquare : DRIFT_TESTS.z;
  }
  if (feature === 'num' && values > FEW_VALUES) return DRIFT_TESTS.wasserstein;
  return DRIFT_TESTS.jensenshannon;
}

/** Distinct values of both sides together (exact when both are exact; else a lower bound). */
function unionDistinct(a: ColumnDistribution, b: ColumnDistribution): number {
  if (a.kind === 'binned' || b.kind === 'binned') return Math.max(distinctCount(a), distinctCount(b));
  return alignCategories(asCategories(a, 'drift'), asCategories(b, 'drift')).keys.length;
}

export interface ColumnDriftOptions {
  /** A test by name instead of the default choice. */
  test?: DriftTestName;
  /** Instead of the test's default threshold. */
  threshold?: number;
}

export interface ColumnDrift extends DriftTestOutcome {
  column: string;
  test: DriftTestName;
  scoreKind: 'p_value' | 'distance';
  threshold: number;
  drifted: boolean;
  /** A binned p-value whose range straddles the threshold: neither drift nor no drift is proven. */
  undecided?: boolean;
  referenceRows: number;
  currentRows: number;
}

/** One column's drift: the chosen (or named) test, its score and the decision. */
export function columnDrift(
  column: string,
  reference: ColumnDistribution,
  current: ColumnDistribution,
  feature: FeatureKind,
  options: ColumnDriftOptions = {},
): ColumnDrift {
  if (reference.n === 0 || current.n === 0) {
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      `drift: column '${column}' has no values in the ${reference.n === 0 ? 'reference' : 'current'} data`,
    );
  }
  const test = options.test ? DRIFT_TESTS[options.test] : chooseDriftTest(reference, current, feature);
  if (!test) throw new KilnError('INVALID_PARAMETER_VALUE', `drift: unknown test '${options.test}'`);
  if (!test.featureKinds.includes(feature) && !(feature === 'num' && test.featureKinds.includes('cat'))) {
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      `drift: test '${test.name}' does not apply to ${feature} column '${column}'`,
    );
  }
  const threshold = options.threshold ?? test.defaultThreshold;
  const outcome = test.run(reference, current, feature);
  let drifted = test.scoreKind === 'p_value' ? outcome.score < threshold : outcome.score >= threshold;
  // A p-value from a binned statistic is only known to lie in scoreRange: at millions of rows a
  // fine cell's mass moves it across the threshold (0.50 exact vs 0.047 binned at 10M rows in
  // bench:monitor, the whylogs#684 failure). Drift is called only when the whole range is below
  // the threshold; a range that straddles it is reported as undecided, not as drift.
  let undecided = false;
  if (test.scoreKind === 'p_value' && outcome.scoreRange) {
    const [lo, hi] = outcome.scoreRange;
    drifted = hi < threshold;
    undecided = lo < threshold && hi >= threshold;
  }
  return {
    column,
    test: test.name,
    scoreKind: test.scoreKind,
    threshold,
    drifted,
    ...(undecided ? { undecided } : {}),
    referenceRows: reference.n,
    currentRows: current.n,
    ...outcome,
  };
}

export interface DatasetDrift {
  columns: (ColumnDrift | { column: string; status: 'no_data'; reason: string })[];
  driftedColumns: number;
  testedColumns: number;
  share: number;
  /** Dataset drift when share ≥ this. Default 0.5 (Evidently's). */
  shareThreshold: number;
  drifted: boolean;
}

export interface DatasetColumnInput {
  column: string;
  reference: ColumnDistribution;
  current: ColumnDistribution;
  feature: FeatureKind;
  options?: ColumnDriftOptions;
}

/**
 * Drift per column and for the dataset. A column with no values on one side is reported as
 * `no_data` and left out of the share (it is neither drifted nor stable).
 */
export function datasetDrift(inputs: DatasetColumnInput[], shareThreshold = 0.5): DatasetDrift {
  if (!(shareThreshold > 0 && shareThreshold <= 1)) {
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      `drift: share threshold must be in (0, 1], got ${shareThreshold}`,
    );
  }
  const columns: DatasetDrift['columns'] = [];
  let drifted = 0;
  let tested = 0;
  for (const c of inputs) {
    if (c.reference.n === 0 || c.current.n === 0) {
      columns.push({
        column: c.column,
        status: 'no_data',
        reason: `no values in the ${c.reference.n === 0 ? 'reference' : 'current'} data`,
      });
      continue;
    }
    const r = columnDrift(c.column, c.reference, c.current, c.feature, c.options);
    columns.push(r);
    tested++;
    if (r.drifted) drifted++;
  }
  const share = tested > 0 ? drifted / tested : 0;
  return {
    columns,
    driftedColumns: drifted,
    testedColumns: tested,
    share,
    shareThreshold,
    drifted: tested > 0 && share >= shareThreshold,
  };
}

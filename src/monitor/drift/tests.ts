import { chiSquaredTest } from './chi-squared.js';
import { hellingerTest } from './hellinger.js';
import { jensenShannonTest } from './jensen-shannon.js';
import { ksTest } from './ks.js';
import { psiTest } from './psi.js';
import type { DriftTest, DriftTestName } from './types.js';
import { wassersteinTest } from './wasserstein.js';
import { zTest } from './z-test.js';

/** Every drift test by name: adding a test is one file and one line here. */
export const DRIFT_TESTS: Record<DriftTestName, DriftTest> = {
  ks: ksTest,
  chisquare: chiSquaredTest,
  z: zTest,
  wasserstein: wassersteinTest,
  jensenshannon: jensenShannonTest,
  psi: psiTest,
  hellinger: hellingerTest,
};

export const DRIFT_TEST_NAMES = Object.keys(DRIFT_TESTS) as DriftTestName[];

import { describe, expect, it } from 'vitest';
import { IFOREST_DEFAULTS, IsolationForestLearner, iforestParamsSchema } from './index.js';

describe('iforestParamsSchema', () => {
  it('the iforest schema defaults are the learner defaults, and it rejects what the learner rejects', () => {
    expect(iforestParamsSchema.parse({})).toEqual(IFOREST_DEFAULTS);
    expect(iforestParamsSchema.parse({ maxSamples: 0.5, contamination: 0.1 })).toMatchObject({
      maxSamples: 0.5,
      contamination: 0.1,
    });
    for (const bad of [{ nEstimators: 0 }, { contamination: 0.6 }, { contamination: 0 }]) {
      expect(iforestParamsSchema.safeParse(bad).success).toBe(false);
      expect(() => new IsolationForestLearner(bad as never)).toThrow();
    }
    expect(iforestParamsSchema.safeParse({ maxSamples: 'all' }).success).toBe(false);
  });
});

import { describe, expect, it } from 'vitest';
import { LINEAR_DEFAULTS, LinearLearner, linearParamsSchema } from './index.js';

describe('linearParamsSchema', () => {
  it('the linear schema defaults are the learner defaults, and it rejects what the learner rejects', () => {
    expect(linearParamsSchema.parse({})).toEqual(LINEAR_DEFAULTS);
    expect(new LinearLearner(linearParamsSchema.parse({ C: 0.5 })).params).toEqual({
      ...LINEAR_DEFAULTS,
      C: 0.5,
    });
    for (const bad of [{ C: 0 }, { penalty: 'l3' }, { l1Ratio: 1.5 }, { maxIter: 0 }, { task: 'anomaly' }]) {
      expect(linearParamsSchema.safeParse(bad).success).toBe(false);
      expect(() => new LinearLearner(bad as never)).toThrow();
    }
    const unknown = linearParamsSchema.safeParse({ c: 1 });
    expect(unknown.success).toBe(false);
  });
});

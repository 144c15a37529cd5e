import { describe, expect, it } from 'vitest';
import { minimizeQuasiNewton } from './quasi-newton.js';

/**
 * The optimiser gives the event loop turns while it runs with a signal, so an abort scheduled
 * on the loop (what a Ctrl-C handler does) stops it mid-fit; without those turns the timer
 * below could only fire after the loop had run to its end.
 */
describe('minimizeQuasiNewton', () => {
  // An ill-conditioned quadratic (condition number 1e8) with no stopping tolerance: thousands of
  // iterations, each made slow on purpose so the run lasts far longer than the abort delay.
  const n = 200;
  const scale = Float64Array.from({ length: n }, (_, i) => 10 ** ((8 * i) / (n - 1)));
  const slowQuadratic = (x: Float64Array, g: Float64Array) => {
    const until = performance.now() + 0.5;
    while (performance.now() < until) {
      // busy: a costly objective, as a large design matrix would be
    }
    let f = 0;
    for (let i = 0; i < n; i++) {
      const d = x[i]! - 1;
      f += 0.5 * scale[i]! * d * d;
      g[i] = scale[i]! * d;
    }
    return f;
  };
  const options = { maxIter: 100_000, gtol: 0, ftol: 0, memory: 10 };

  it('stops at the next iteration once a timer on the event loop aborts it', async () => {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort('SIGINT'), 100);
    const result = await minimizeQuasiNewton(slowQuadratic, new Float64Array(n), {
      ...options,
      signal: controller.signal,
    });
    clearTimeout(timer);
    expect(controller.signal.aborted).toBe(true);
    expect(result.reason).toBe('stopped');
    expect(result.iterations).toBeGreaterThan(0);
    expect(result.iterations).toBeLessThan(options.maxIter);
    // The point handed back is a real iterate: better than the start.
    expect(result.objective).toBeLessThan(slowQuadratic(new Float64Array(n), new Float64Array(n)));
  });
});

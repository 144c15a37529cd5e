import { describe, expect, it } from 'vitest';
import { mirrorToShadow, pickRoute, unitOfKey } from './router.js';

describe('router', () => {
  it('hashes keys uniformly into [0, 1)', () => {
    let below = 0;
    for (let i = 0; i < 20_000; i++) {
      const u = unitOfKey(`k${i}`, 'route');
      if (!(u >= 0 && u < 1)) throw new Error(`unitOfKey out of range: ${u}`);
      if (u < 0.25) below++;
    }
    // Binomial(20000, 0.25): sd = 61; ±300 is ~5 sd.
    expect(Math.abs(below - 5000)).toBeLessThan(300);
  });

  it('zero-weight versions get no traffic; the shadow draw is independent of the route draw', () => {
    const routes = [
      { version: 'a', weight: 1 },
      { version: 'b', weight: 0 },
    ];
    const picked = new Set<string>();
    for (let i = 0; i < 1000; i++) picked.add(pickRoute(routes, `u${i}`).version);
    expect([...picked]).toEqual(['a']);
    let both = 0;
    const split = [
      { version: 'a', weight: 1 },
      { version: 'b', weight: 1 },
    ];
    for (let i = 0; i < 10_000; i++)
      if (pickRoute(split, `u${i}`).version === 'b' && mirrorToShadow(0.5, `u${i}`)) both++;
    // Independent halves: 2,500 expected, sd = 43.
    expect(Math.abs(both - 2500)).toBeLessThan(200);
  });
});

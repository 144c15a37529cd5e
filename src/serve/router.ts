import { createHash } from 'node:crypto';

/**
 * Traffic routing inside one deployment: which version answers a request (weights, canary),
 * and whether it is mirrored to the shadow version.
 *
 * - Without a routing key, a version is drawn at random with probability weight / Σ weights.
 * - With a key (the `x-kiln-routing-key` header, or the request's `routing_key` parameter), the
 *   draw is a hash of the key, so the same key always lands on the same version while the
 *   weights stay the same (a user keeps one experience through a canary).
 * - The shadow draw uses an independent hash (or random number), so which requests are mirrored
 *   does not depend on which version answered them.
 */
export interface Route {
  version: string;
  weight: number;
}

/** [0, 1) from a key and a salt, uniform over keys (first 48 bits of SHA-1). */
export function unitOfKey(key: string, salt: string): number {
  const h = createHash('sha1').update(salt).update('\0').update(key).digest();
  return h.readUIntBE(0, 6) / 2 ** 48;
}

export function pickRoute<R extends Route>(
  routes: readonly R[],
  key: string | undefined,
  random: () => number = Math.random,
): R {
  if (routes.length === 1) return routes[0]!;
  const total = routes.reduce((s, r) => s + r.weight, 0);
  const u = (key === undefined ? random() : unitOfKey(key, 'route')) * total;
  let cum = 0;
  for (const r of routes) {
    cum += r.weight;
    if (u < cum) return r;
  }
  return routes[routes.length - 1]!;
}

export function mirrorToShadow(
  share: number,
  key: string | undefined,
  random: () => number = Math.random,
): boolean {
  if (share <= 0) return false;
  if (share >= 1) return true;
  return (key === undefined ? random() : unitOfKey(key, 'shadow')) < share;
}

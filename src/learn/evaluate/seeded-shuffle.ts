/**
 * A seeded stream of uint32 values (a 32-bit LCG) and an in-place Fisher–Yates shuffle drawing
 * from it: same seed, same order, on every platform. Cross-validation folds and permutation
 * importance both shuffle with it; callers that need several independent shuffles keep drawing
 * from one stream.
 */
export function seededStream(seed: number): () => number {
  let s = (seed * 2654435761 + 1) >>> 0;
  return () => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    return s;
  };
}

export function shuffleInPlace(a: Uint32Array, next: () => number): void {
  for (let i = a.length - 1; i > 0; i--) {
    const j = next() % (i + 1);
    const t = a[i];
    a[i] = a[j];
    a[j] = t;
  }
}

/**
 * Category codes of a column re-expressed against the level table a model was fitted on:
 * levels the model never saw become -1 (missing), so a model scores any data set's
 * categorical columns the same way whatever order its levels came in. Shared by every
 * learner that keeps a fitted level table (linear's design, iforest's trees).
 */
export function remapCodes(
  codes: Int32Array,
  levels: readonly string[],
  fitted: readonly string[],
): Int32Array {
  let same = levels.length === fitted.length;
  for (let i = 0; same && i < levels.length; i++) same = levels[i] === fitted[i];
  if (same) return codes;
  const index = new Map<string, number>();
  fitted.forEach((l, i) => {
    index.set(l, i);
  });
  const map = Int32Array.from(levels, (l) => index.get(l) ?? -1);
  const out = new Int32Array(codes.length);
  for (let i = 0; i < codes.length; i++) {
    const c = codes[i];
    out[i] = c < 0 ? -1 : map[c];
  }
  return out;
}

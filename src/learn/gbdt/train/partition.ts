/**
 * One thread's part of splitting a leaf's rows: rows[start, end) whose bin in `column` maps to
 * goLeft = 1 are copied, in order, to outLeft from `start`, the others to outRight from
 * `start`. Returns how many went left. Chunks processed on different threads and laid back
 * chunk by chunk give exactly the stable partition one thread would produce.
 */
export function partitionChunk(
  rows: Int32Array,
  start: number,
  end: number,
  column: Uint8Array,
  goLeft: Uint8Array,
  outLeft: Int32Array,
  outRight: Int32Array,
): number {
  let nl = start;
  let nr = start;
  for (let i = start; i < end; i++) {
    const row = rows[i];
    if (goLeft[column[row]] === 1) outLeft[nl++] = row;
    else outRight[nr++] = row;
  }
  return nl - start;
}

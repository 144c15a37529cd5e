import { KilnError } from '../../errors.js';

/**
 * Row order by score, highest first, as the ranking metrics need it. Large inputs use an LSD
 * radix sort over the IEEE-754 bits (four 16-bit passes), because GBDT early stopping computes
 * AUC on the validation set every round and a comparator sort of millions of indices would
 * dominate that loop. Ties keep no particular order: every ranking metric groups tied scores.
 */
export function orderByScoreDescending(score: ArrayLike<number>, where: string): Uint32Array {
  const n = score.length;
  rejectNaN(score, where);
  if (n < 4096) {
    const idx = new Uint32Array(n);
    for (let i = 0; i < n; i++) idx[i] = i;
    idx.sort((a, b) => score[b] - score[a]);
    return idx;
  }
  const hi = new Uint32Array(n);
  const lo = new Uint32Array(n);
  descendingKeys(score, hi, lo);
  let idx = new Uint32Array(n);
  let tmp = new Uint32Array(n);
  for (let i = 0; i < n; i++) idx[i] = i;
  const count = new Uint32Array(65536);
  for (let pass = 0; pass < 4; pass++) {
    const keys = pass < 2 ? lo : hi;
    const shift = (pass & 1) * 16;
    count.fill(0);
    for (let i = 0; i < n; i++) count[(keys[idx[i]] >>> shift) & 0xffff]++;
    // A pass where every key shares the digit leaves the order unchanged.
    if (count[(keys[idx[0]] >>> shift) & 0xffff] === n) continue;
    countsToOffsets(count);
    for (let i = 0; i < n; i++) {
      const r = idx[i];
      tmp[count[(keys[r] >>> shift) & 0xffff]++] = r;
    }
    const t = idx;
    idx = tmp;
    tmp = t;
  }
  return idx;
}

/**
 * Binary labels in order of score, highest first, together with the sorted keys (equal keys ⇔
 * equal scores, so tied runs can be found): what an unweighted ROC AUC needs. The labels
 * travel with the keys through the radix passes, so no pass reads through an index; on 1 M
 * scores this took 80–120 ms against 190–220 ms for orderByScoreDescending plus the walk
 * through its order.
 */
export function labelsByScoreDescending(
  yTrue: ArrayLike<number>,
  score: ArrayLike<number>,
  where: string,
): { labels: Uint8Array; hi: Uint32Array; lo: Uint32Array } {
  const n = score.length;
  rejectNaN(score, where);
  let hi = new Uint32Array(n);
  let lo = new Uint32Array(n);
  let labels = new Uint8Array(n);
  descendingKeys(score, hi, lo);
  for (let i = 0; i < n; i++) labels[i] = yTrue[i] === 1 ? 1 : 0;
  let tmpHi = new Uint32Array(n);
  let tmpLo = new Uint32Array(n);
  let tmpLabels = new Uint8Array(n);
  const count = new Uint32Array(65536);
  for (let pass = 0; pass < 4; pass++) {
    const keys = pass < 2 ? lo : hi;
    const shift = (pass & 1) * 16;
    count.fill(0);
    for (let i = 0; i < n; i++) count[(keys[i] >>> shift) & 0xffff]++;
    if (n === 0 || count[(keys[0] >>> shift) & 0xffff] === n) continue;
    countsToOffsets(count);
    for (let i = 0; i < n; i++) {
      const at = count[(keys[i] >>> shift) & 0xffff]++;
      tmpHi[at] = hi[i];
      tmpLo[at] = lo[i];
      tmpLabels[at] = labels[i];
    }
    [hi, tmpHi] = [tmpHi, hi];
    [lo, tmpLo] = [tmpLo, lo];
    [labels, tmpLabels] = [tmpLabels, labels];
  }
  return { labels, hi, lo };
}

function rejectNaN(score: ArrayLike<number>, where: string): void {
  for (let i = 0; i < score.length; i++) {
    if (Number.isNaN(score[i])) {
      throw new KilnError('INVALID_PARAMETER_VALUE', `${where}: score at row ${i} is NaN`);
    }
  }
}

/**
 * Unsigned 64-bit keys (hi, lo) that sort ascending as the scores sort descending; −0 gets
 * +0's key, as the two compare equal.
 */
function descendingKeys(score: ArrayLike<number>, hi: Uint32Array, lo: Uint32Array): void {
  const f = new Float64Array(1);
  const u = new Uint32Array(f.buffer);
  for (let i = 0; i < score.length; i++) {
    f[0] = score[i] + 0;
    let h = u[1];
    let l = u[0];
    if (h & 0x80000000) {
      h = ~h >>> 0;
      l = ~l >>> 0;
    } else {
      h = (h | 0x80000000) >>> 0;
    }
    // Invert so that larger scores come first in ascending key order.
    hi[i] = ~h >>> 0;
    lo[i] = ~l >>> 0;
  }
}

/** Turns digit counts into each digit's first output position (an exclusive prefix sum). */
function countsToOffsets(count: Uint32Array): void {
  let sum = 0;
  for (let d = 0; d < count.length; d++) {
    const c = count[d];
    count[d] = sum;
    sum += c;
  }
}

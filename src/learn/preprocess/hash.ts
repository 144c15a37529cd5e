import type { CategoricalColumn, FeatureColumn, FeatureMatrix } from '../../data/index.js';
import { KilnError } from '../../errors.js';
import { findColumn, pickColumns, replaceColumns } from './columns.js';
import type { FittedTransform, HashStep, TransformState } from './types.js';

/**
 * MurmurHash3 (x86, 32-bit) of a string's UTF-8 bytes, as a signed int32, the function
 * sklearn's FeatureHasher uses; so bucket = |h| mod n is the same bucket sklearn picks.
 */
export function murmurhash3(text: string, seed = 0): number {
  const bytes = new TextEncoder().encode(text);
  let h = seed >>> 0;
  const c1 = 0xcc9e2d51;
  const c2 = 0x1b873593;
  const nBlocks = bytes.length >>> 2;
  for (let b = 0; b < nBlocks; b++) {
    const i = b * 4;
    let k = bytes[i] | (bytes[i + 1] << 8) | (bytes[i + 2] << 16) | (bytes[i + 3] << 24);
    k = Math.imul(k, c1);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, c2);
    h ^= k;
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  const tail = nBlocks * 4;
  const rest = bytes.length & 3;
  if (rest > 0) {
    let k = 0;
    if (rest === 3) k ^= bytes[tail + 2] << 16;
    if (rest >= 2) k ^= bytes[tail + 1] << 8;
    k ^= bytes[tail];
    k = Math.imul(k, c1);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, c2);
    h ^= k;
  }
  h ^= bytes.length;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h | 0;
}

export function hashBucket(level: string, nBuckets: number): number {
  return Math.abs(murmurhash3(level)) % nBuckets;
}

/**
 * Replaces a high-cardinality categorical column by a categorical column of `nBuckets` hash
 * buckets (levels '#0' … '#n−1'). Nothing is learned, so unseen levels simply land in their
 * bucket; the estimator then sees a bounded level set.
 */
export class FittedHasher implements FittedTransform {
  readonly kind = 'hash';
  private bucketLevels?: string[];
  constructor(
    readonly columns: string[],
    readonly nBuckets: number,
  ) {}

  private levels(): string[] {
    this.bucketLevels ??= Array.from({ length: this.nBuckets }, (_, i) => `#${i}`);
    return this.bucketLevels;
  }

  transform(x: FeatureMatrix): FeatureMatrix {
    const out = new Map<string, FeatureColumn[]>();
    for (const name of this.columns) {
      const col = findColumn(x, name, 'categorical', 'hash') as CategoricalColumn;
      const byCode = Int32Array.from(col.levels, (l) => hashBucket(l, this.nBuckets));
      const codes = Int32Array.from(col.codes, (c) => (c < 0 ? -1 : byCode[c]));
      out.set(name, [{ kind: 'categorical', name, codes, levels: this.levels() }]);
    }
    return replaceColumns(x, out);
  }

  state(): TransformState {
    return { kind: 'hash', columns: this.columns, nBuckets: this.nBuckets };
  }

  static fromState(s: TransformState): FittedHasher {
    return new FittedHasher(s.columns as string[], s.nBuckets as number);
  }
}

export function fitHasher(step: HashStep, x: FeatureMatrix): FittedHasher {
  const n = step.nBuckets ?? 1024;
  if (!Number.isInteger(n) || n < 2) {
    throw new KilnError('INVALID_PARAMETER_VALUE', `hash: nBuckets must be an integer >= 2, got ${n}`);
  }
  return new FittedHasher(
    pickColumns(x, step.columns, 'categorical', 'hash').map((c) => c.name),
    n,
  );
}

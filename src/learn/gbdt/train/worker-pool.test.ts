import { describe, expect, it } from 'vitest';
import type { FeatureMatrix } from '../../../data/index.js';
import { binMatrix, findBinMappers } from './binning.js';
import { BIN_DOUBLES } from './histogram.js';
import { type TrainingBuffers, TrainingPool } from './worker-pool.js';

/** A two-thread pool over n rows of two numeric features, with real shared buffers. */
async function pool(n: number): Promise<{ pool: TrainingPool; buffers: TrainingBuffers }> {
  const a = Float64Array.from({ length: n }, (_, i) => i % 97);
  const b = Float64Array.from({ length: n }, (_, i) => (i * 7) % 31);
  const x: FeatureMatrix = {
    nRows: n,
    columns: [
      { kind: 'numeric', name: 'a', values: a },
      { kind: 'numeric', name: 'b', values: b },
    ],
  };
  const mappers = findBinMappers(x, { maxBin: 255, minDataInBin: 3, sampleCount: n, seed: 0 });
  const data = binMatrix(x, mappers, true);
  const sab = (bytes: number) => new SharedArrayBuffer(bytes);
  const rows = new Int32Array(sab(4 * n));
  for (let i = 0; i < n; i++) rows[i] = i;
  const buffers: TrainingBuffers = {
    nRows: n,
    nFeatures: 2,
    binOffset: data.binOffset,
    rowMajor: data.rowMajor,
    columns: data.columns,
    gradHess: new Float32Array(sab(8 * n)).fill(1),
    rows,
    hist: new Float64Array(sab(8 * BIN_DOUBLES * data.binOffset[2] * 4)),
    score: new Float64Array(sab(8 * n)),
    prob: null,
    expNeg: null,
    y: new Float64Array(sab(8 * n)),
    weight: undefined,
    objective: { name: 'regression', nOutputs: 1, huberDelta: 1 },
    numLeaves: 4,
    inBag: new Uint8Array(sab(n)).fill(1),
    validBins: null,
    validScore: null,
  };
  return { pool: await TrainingPool.create(buffers, 2), buffers };
}

describe('TrainingPool', () => {
  it('partitions stably across threads: the left rows, then the right, each in order', async () => {
    const n = 50_000;
    const { pool: p, buffers } = await pool(n);
    try {
      const goLeft = new Uint8Array(256);
      for (let bin = 0; bin < 256; bin += 2) goLeft[bin] = 1;
      const col = buffers.columns[0];
      const nLeft = p.partition(0, n, 0, goLeft);
      const expected = [
        ...Array.from({ length: n }, (_, i) => i).filter((i) => goLeft[col[i]] === 1),
        ...Array.from({ length: n }, (_, i) => i).filter((i) => goLeft[col[i]] === 0),
      ];
      expect(nLeft).toBe(expected.filter((i) => goLeft[col[i]] === 1).length);
      expect(Array.from(buffers.rows)).toEqual(expected);
    } finally {
      await p.close();
    }
  });

  it('a job that throws on a worker is reported by the calling thread instead of hanging it', async () => {
    const { pool: p } = await pool(10_000);
    // The pool's handshake, driven by hand: no public method sends a command workers reject.
    const handshake = p as unknown as {
      dispatch(cmd: number, a0: number, a1: number, a2: number): void;
      awaitWorkers(): void;
    };
    try {
      handshake.dispatch(99, 0, 0, 0);
      expect(() => handshake.awaitWorkers()).toThrow(/gbdt training worker failed: .*unknown command 99/);
      // A failed pool stays failed: later jobs report the same error rather than run on.
      expect(() => p.partition(0, 10_000, 0, new Uint8Array(256).fill(1))).toThrow(/unknown command 99/);
    } finally {
      await p.close();
    }
  });

  it('a job that throws on every thread surfaces as an error and the pool still closes', async () => {
    const { pool: p } = await pool(50_000);
    // Feature 9 does not exist: the calling thread and the worker both throw mid-partition.
    expect(() => p.partition(0, 50_000, 9, new Uint8Array(256))).toThrow();
    await p.close();
  });
});

import type { BinnedEnsemble, LinkedEnsemble, PerfectEnsemble } from './binned.js';
import { Code, wasmModule } from './wasm.js';

/**
 * The scoring kernel, generated per ensemble as WebAssembly: the binned perfect-tree walk of
 * binned.ts, LANES walks side by side — LANES rows of a block through one tree, or for a
 * single row LANES of its trees, which are independent too — the depth unrolled, every size
 * and offset an immediate. Binning stays in JavaScript (~3 % of the time); the walk is
 * WebAssembly, which reads memory without a bounds check per typed-array access. Leaves are
 * added in tree order (baseScore, then trees 0, 1, …), so scores equal the node walk's bit
 * for bit.
 *
 * Memory ('mem', exported): nodes, "goes right" sets, leaves and tree outputs, written once
 * from `image`; then a block of binned rows (one uint16 per feature) and a block of output
 * rows, reused per block. A node is two i32: the byte offset of its feature's bin in a binned
 * row (2f) and the byte address of its set. A step is one rule for every node, numeric or
 * categorical: right = bit `bin` of the set, i = 2i + 1 + right. The steps of all lanes at
 * one depth are emitted together (lane-major order ran 2× slower: each lane's chain of
 * dependent loads then stalls). The module is written as bytes by wasm.ts (no toolchain);
 * worker threads (parallel.ts) instantiate the same bytes, so every thread runs one definition.
 *
 * Measured on the 200-tree, 255-leaf flights model (process CPU time, one thread; 2-core box,
 * see BENCHMARKS.md and bench/gbdt-kernel.ts): node walk 36–40k rows/s; binned JavaScript,
 * one row at a time 49–56k, 8 rows side by side 83–98k (load 8–10, 2026-12-02); generated
 * JavaScript 8 lanes 190k rows/CPU-s, WebAssembly 467k (load 13–15, 2026-12-03, commit
 * a000610 has both). One row: JavaScript, one padded tree at a time 13.3 µs, 8 trees side by
 * side 5.1–6.1 µs, WebAssembly 3.9 µs. A walk of the real, unpadded trees over raw double
 * thresholds (no binning, children adjacent, one compare a step) took 27.2 µs: its
 * data-dependent branches mispredict, the padded walk has none. Numeric splits as sets like
 * categorical ones (instead of a threshold compare OR-ed with a set bit, two bin slots per
 * feature for the NaN direction): batch 2.24–2.30 → 1.80–1.83 µs a row, one row 3.3–3.5 →
 * 2.8–3.1 µs (load 1–2, 2026-12-03 14:45); 10 lanes beat 8 by 1–2 % (batch) and 8 % (one
 * row), 6 and 12 were slower; a 4-byte node (set word index << 8 | 2f) gained nothing.
 * Linked layout (any depth; binned.ts), same CPU-time bench, load ~20, 2026-12-03 20:18: on the
 * depth-18 bench:serve model batch 2.39 µs a row, one row 3.72 µs (node walk: ~20 and 14.5); on
 * the depth-8 flights model 1.86 / 3.72 µs against the perfect layout's 1.68 / 2.59, so the
 * perfect layout stays for ensembles up to MAX_PERFECT_DEPTH deep.
 */
export const LANES = 10;

// The WebAssembly global, typed as far as this file uses it (tsconfig has no DOM lib).
declare const WebAssembly: {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: unknown };
};
interface WasmMemory {
  buffer: ArrayBuffer;
}
export const KERNEL_BLOCK_ROWS = 512;

/**
 * A kernel column: numeric values, or categorical codes already in the model's level table
 * (-1 or anything outside [0, levels) = missing).
 */
export type KernelColumn = Float64Array | Float32Array | Int32Array;

export interface ScoringKernel {
  /** Raw scores of rows [r0, r1) into out[(r − r0) · k …] (baseScore included). */
  predictRange(columns: readonly KernelColumn[], r0: number, r1: number, out: Float64Array): void;
  /** One dense row (model order; categorical codes as numbers, -1/NaN missing) → out[0 .. k). No allocation. */
  predictRow(row: ArrayLike<number>, out: Float64Array): void;
  /** Bins rows [r0, r1) block by block and scores nothing: what bench/gbdt-kernel.ts times binning by. */
  binOnly(columns: readonly KernelColumn[], r0: number, r1: number): void;
}

/** Everything a thread needs to build the kernel (plain typed arrays: it is posted to workers). */
export interface KernelData {
  module: Uint8Array;
  /** Memory contents from address 0: nodes, bitsets, leaves, tree outputs. */
  image: Uint8Array;
  pages: number;
  binsAt: number;
  outAt: number;
  width: number;
  nOutputs: number;
  baseScore: Float64Array;
  cuts: Float64Array;
  cutStart: Int32Array;
  nLevels: Int32Array;
}

const align8 = (n: number) => (n + 7) & ~7;

export function kernelData(b: BinnedEnsemble): KernelData | null {
  if (b.nTrees === 0) return null;
  const { score, scoreRow, image, binsAt, outAt, pages } =
    b.layout === 'perfect' ? perfectKernel(b) : linkedKernel(b);
  const cutStart = new Int32Array(b.nFeatures + 1);
  for (let f = 0; f < b.nFeatures; f++) cutStart[f + 1] = cutStart[f]! + (b.cuts[f]?.length ?? 0);
  const cuts = new Float64Array(cutStart[b.nFeatures]!);
  for (let f = 0; f < b.nFeatures; f++) if (b.cuts[f]) cuts.set(b.cuts[f]!, cutStart[f]!);
  return {
    module: wasmModule(
      [
        { name: 'score', code: score },
        { name: 'scoreRow', code: scoreRow },
      ],
      pages,
    ),
    image,
    pages,
    binsAt,
    outAt,
    width: b.nFeatures,
    nOutputs: b.nOutputs,
    baseScore: Float64Array.from(b.baseScore),
    cuts,
    cutStart,
    nLevels: Int32Array.from(b.nLevels, (n, f) => (b.cuts[f] ? -1 : n)),
  };
}

/** The generated functions and the memory image of one layout (see binned.ts). */
interface LayoutKernel {
  score: Code;
  scoreRow: Code;
  image: Uint8Array;
  binsAt: number;
  outAt: number;
  pages: number;
}

/** The bins block and the output block after the trees (from byte `at`), and the pages for all. */
function rowBlocks(at: number, W: number, k: number) {
  const binsAt = align8(at);
  const outAt = align8(binsAt + KERNEL_BLOCK_ROWS * W * 2);
  const pages = Math.ceil((outAt + KERNEL_BLOCK_ROWS * k * 8) / 65536);
  return { binsAt, outAt, pages };
}

/** Moves the batch cursors LANES rows on: row index, bins row address, output row address. */
function advanceRows(c: Code, r: number, rb: number, ob: number, W: number, k: number): void {
  c.get(r).i32(LANES).add().set(r);
  c.get(rb)
    .i32(LANES * W * 2)
    .add()
    .set(rb);
  c.get(ob)
    .i32(LANES * k * 8)
    .add()
    .set(ob);
}

/** With a set's byte address on the stack: bit `bin` of the set (1 = goes right). */
function pushRightBit(c: Code, bin: number): void {
  c.get(bin).i32(5).shrU().i32(2).shl().add().load32();
  c.get(bin).shrU().i32(1).and();
}

/** Perfect trees: heap order, child = 2i + 1 + right, the depth unrolled. */
function perfectKernel(b: PerfectEnsemble): LayoutKernel {
  const D = b.depth;
  const nInternal = (1 << D) - 1;
  const nLeafSlots = 1 << D;
  const W = b.nFeatures;
  const k = b.nOutputs;
  const nTrees = b.nTrees;
  const nodesAt = 0;
  const bitsAt = align8(nodesAt + nTrees * nInternal * 8);
  const leafAt = align8(bitsAt + b.rightBits.length * 4);
  const toutAt = align8(leafAt + nTrees * nLeafSlots * 8);
  const { binsAt, outAt, pages } = rowBlocks(toutAt + nTrees * 4, W, k);

  const image = new Uint8Array(binsAt);
  const i32 = new Int32Array(image.buffer, 0, binsAt >> 2);
  for (let n = 0; n < nTrees * nInternal; n++) {
    i32[(nodesAt >> 2) + 2 * n] = 2 * b.feature[n]!;
    i32[(nodesAt >> 2) + 2 * n + 1] = bitsAt + 4 * b.setStart[n]!;
  }
  new Uint32Array(image.buffer, bitsAt, b.rightBits.length).set(b.rightBits);
  new Float64Array(image.buffer, leafAt, nTrees * nLeafSlots).set(b.leafValue);
  for (let t = 0; t < nTrees; t++) i32[(toutAt >> 2) + t] = 8 * b.treeOutput[t]!;

  const step = D;
  // One step of every lane: lanes[j] says where lane j's node and bin reads are.
  type Lane = { i: number; nodeOffset: number; binOffset: number };
  const walk = (c: Code, lanes: Lane[], nb: number, rb: number, q: number, bin: number) => {
    for (let d = 0; d < step; d++) {
      for (const lane of lanes) {
        c.get(nb).get(lane.i).i32(3).shl().add().tee(q).load32(lane.nodeOffset);
        c.get(rb).add().load16u(lane.binOffset).set(bin);
        c.get(lane.i).i32(1).shl().i32(1).add();
        c.get(q).load32(lane.nodeOffset + 4);
        pushRightBit(c, bin);
        c.add().set(lane.i);
      }
    }
  };

  // Moves the tree cursor n trees on: the tree index and its node and leaf block addresses.
  const advanceTrees = (c: Code, n: number, t: number, nb: number, lb: number) => {
    c.get(t).i32(n).add().set(t);
    c.get(nb)
      .i32(n * nInternal * 8)
      .add()
      .set(nb);
    c.get(lb)
      .i32(n * nLeafSlots * 8)
      .add()
      .set(lb);
  };

  // score(nRows): rows [0, nRows) of the bins block (nRows a multiple of LANES) into the out block.
  const score = new Code(1);
  {
    const c = score;
    const nRows = 0;
    const [t, nb, lb, ob0, r, rb, ob, q, bin] = Array.from({ length: 9 }, () => c.local());
    const lanes: Lane[] = Array.from({ length: LANES }, (_, j) => ({
      i: c.local(),
      nodeOffset: 0,
      binOffset: j * W * 2,
    }));
    c.i32(0)
      .set(t)
      .i32(nodesAt)
      .set(nb)
      .i32(leafAt - nInternal * 8)
      .set(lb);
    c.block().loop();
    c.get(t).i32(nTrees).geU().brIf(1);
    c.get(t).i32(2).shl().load32(toutAt).i32(outAt).add().set(ob0);
    c.i32(0).set(r).i32(binsAt).set(rb).get(ob0).set(ob);
    c.block().loop();
    c.get(r).get(nRows).geU().brIf(1);
    for (const lane of lanes) c.i32(0).set(lane.i);
    walk(c, lanes, nb, rb, q, bin);
    lanes.forEach((lane, j) => {
      c.get(ob)
        .get(ob)
        .loadF64(j * k * 8)
        .get(lb)
        .get(lane.i)
        .i32(3)
        .shl()
        .add()
        .loadF64()
        .addF64()
        .storeF64(j * k * 8);
    });
    advanceRows(c, r, rb, ob, W, k);
    c.br(0).end().end();
    advanceTrees(c, 1, t, nb, lb);
    c.br(0).end().end();
  }

  // scoreRow(rb, ob): the binned row at byte rb, every tree added to the output row at byte ob;
  // LANES trees side by side, leaves added in tree order.
  const scoreRow = new Code(2);
  {
    const c = scoreRow;
    const rb = 0;
    const ob = 1;
    const [t, nb, lb, tout, q, bin] = Array.from({ length: 6 }, () => c.local());
    const lanes: Lane[] = Array.from({ length: LANES }, (_, j) => ({
      i: c.local(),
      nodeOffset: j * nInternal * 8,
      binOffset: 0,
    }));
    const groups = Math.floor(nTrees / LANES);
    c.i32(0)
      .set(t)
      .i32(nodesAt)
      .set(nb)
      .i32(leafAt - nInternal * 8)
      .set(lb)
      .i32(toutAt)
      .set(tout);
    c.block().loop();
    c.get(t)
      .i32(groups * LANES)
      .geU()
      .brIf(1);
    for (const lane of lanes) c.i32(0).set(lane.i);
    walk(c, lanes, nb, rb, q, bin);
    lanes.forEach((lane, j) => {
      c.get(ob)
        .get(tout)
        .load32(j * 4)
        .add()
        .tee(q);
      c.get(q)
        .loadF64()
        .get(lb)
        .get(lane.i)
        .i32(3)
        .shl()
        .add()
        .loadF64(j * nLeafSlots * 8)
        .addF64()
        .storeF64();
    });
    advanceTrees(c, LANES, t, nb, lb);
    c.get(tout)
      .i32(LANES * 4)
      .add()
      .set(tout);
    c.br(0).end().end();
    // The last nTrees % LANES trees, one at a time.
    const one: Lane[] = [lanes[0]!].map((l) => ({ ...l, nodeOffset: 0 }));
    c.block().loop();
    c.get(t).i32(nTrees).geU().brIf(1);
    c.i32(0).set(one[0]!.i);
    walk(c, one, nb, rb, q, bin);
    c.get(ob).get(tout).load32().add().tee(q);
    c.get(q).loadF64().get(lb).get(one[0]!.i).i32(3).shl().add().loadF64().addF64().storeF64();
    advanceTrees(c, 1, t, nb, lb);
    c.get(tout).i32(4).add().set(tout);
    c.br(0).end().end();
  }
  return { score, scoreRow, image, binsAt, outAt, pages };
}

/**
 * Linked trees: a node is 16 bytes (2f, set address, left child address, unused), a walk's
 * cursor is the node's byte address, next = child + 16 · right, and a leaf steps to itself,
 * so a walk of the tree's depth (per tree, a loop: the steps are not unrolled) ends on its
 * leaf. Leaf values sit at leafAt + address / 2 (8 bytes per 16-byte node). A tree table
 * (16 bytes per tree: root address, depth, output byte offset, and for the first tree of each
 * group of LANES the group's deepest depth) drives both functions.
 */
function linkedKernel(b: LinkedEnsemble): LayoutKernel {
  const W = b.nFeatures;
  const k = b.nOutputs;
  const nTrees = b.nTrees;
  const nNodes = b.child.length;
  const bitsAt = nNodes * 16;
  const leafAt = align8(bitsAt + b.rightBits.length * 4);
  const treesAt = align8(leafAt + nNodes * 8);
  const treesEnd = treesAt + nTrees * 16;
  const { binsAt, outAt, pages } = rowBlocks(treesEnd, W, k);

  const image = new Uint8Array(binsAt);
  const i32 = new Int32Array(image.buffer, 0, binsAt >> 2);
  for (let n = 0; n < nNodes; n++) {
    i32[4 * n] = 2 * b.feature[n]!;
    i32[4 * n + 1] = bitsAt + 4 * b.setStart[n]!;
    i32[4 * n + 2] = 16 * b.child[n]!;
  }
  new Uint32Array(image.buffer, bitsAt, b.rightBits.length).set(b.rightBits);
  new Float64Array(image.buffer, leafAt, nNodes).set(b.leafValue);
  const groups = Math.floor(nTrees / LANES);
  for (let t = 0; t < nTrees; t++) {
    const at = (treesAt >> 2) + 4 * t;
    i32[at] = 16 * b.treeRoot[t]!;
    i32[at + 1] = b.treeDepth[t]!;
    i32[at + 2] = 8 * b.treeOutput[t]!;
    if (t % LANES === 0 && t < groups * LANES) {
      i32[at + 3] = Math.max(...b.treeDepth.subarray(t, t + LANES));
    }
  }

  // `s` steps of every lane (p: the lane's cursor local, binOffset: where its row's bins are).
  type Lane = { p: number; binOffset: number };
  const walk = (c: Code, lanes: Lane[], s: number, rb: number, bin: number) => {
    c.block().loop();
    c.get(s).eqz().brIf(1);
    for (const { p, binOffset } of lanes) {
      c.get(rb).get(p).load32(0).add().load16u(binOffset).set(bin);
      c.get(p).load32(8);
      c.get(p).load32(4);
      pushRightBit(c, bin);
      c.i32(4).shl().add().set(p);
    }
    c.get(s).i32(1).sub().set(s);
    c.br(0).end().end();
  };
  // Pushes the leaf value lane cursor p ended on.
  const leaf = (c: Code, p: number) => c.get(p).i32(1).shrU().loadF64(leafAt);

  // score(nRows): rows [0, nRows) of the bins block (nRows a multiple of LANES) into the out block.
  const score = new Code(1);
  {
    const c = score;
    const nRows = 0;
    const [tt, root, steps, ob0, r, rb, ob, s, bin] = Array.from({ length: 9 }, () => c.local());
    const lanes: Lane[] = Array.from({ length: LANES }, (_, j) => ({ p: c.local(), binOffset: j * W * 2 }));
    c.i32(treesAt).set(tt);
    c.block().loop();
    c.get(tt).i32(treesEnd).geU().brIf(1);
    c.get(tt).load32(0).set(root).get(tt).load32(4).set(steps);
    c.get(tt).load32(8).i32(outAt).add().set(ob0);
    c.i32(0).set(r).i32(binsAt).set(rb).get(ob0).set(ob);
    c.block().loop();
    c.get(r).get(nRows).geU().brIf(1);
    for (const lane of lanes) c.get(root).set(lane.p);
    c.get(steps).set(s);
    walk(c, lanes, s, rb, bin);
    lanes.forEach((lane, j) => {
      c.get(ob)
        .get(ob)
        .loadF64(j * k * 8);
      leaf(c, lane.p)
        .addF64()
        .storeF64(j * k * 8);
    });
    advanceRows(c, r, rb, ob, W, k);
    c.br(0).end().end();
    c.get(tt).i32(16).add().set(tt);
    c.br(0).end().end();
  }

  // scoreRow(rb, ob): the binned row at byte rb, every tree added to the output row at byte ob;
  // LANES trees side by side (walked to the group's deepest depth), leaves added in tree order.
  const scoreRow = new Code(2);
  {
    const c = scoreRow;
    const rb = 0;
    const ob = 1;
    const [tt, s, q, bin] = Array.from({ length: 4 }, () => c.local());
    const lanes: Lane[] = Array.from({ length: LANES }, () => ({ p: c.local(), binOffset: 0 }));
    const addLeaf = (lane: Lane, j: number) => {
      c.get(ob)
        .get(tt)
        .load32(j * 16 + 8)
        .add()
        .tee(q);
      c.get(q).loadF64();
      leaf(c, lane.p).addF64().storeF64();
    };
    c.i32(treesAt).set(tt);
    c.block().loop();
    c.get(tt)
      .i32(treesAt + groups * LANES * 16)
      .geU()
      .brIf(1);
    lanes.forEach((lane, j) => {
      c.get(tt)
        .load32(j * 16)
        .set(lane.p);
    });

    c.get(tt).load32(12).set(s);
    walk(c, lanes, s, rb, bin);
    lanes.forEach(addLeaf);
    c.get(tt)
      .i32(LANES * 16)
      .add()
      .set(tt);
    c.br(0).end().end();
    // The last nTrees % LANES trees, one at a time, each to its own depth.
    const one = lanes.slice(0, 1);
    c.block().loop();
    c.get(tt).i32(treesEnd).geU().brIf(1);
    c.get(tt).load32(0).set(one[0]!.p).get(tt).load32(4).set(s);
    walk(c, one, s, rb, bin);
    addLeaf(one[0]!, 0);
    c.get(tt).i32(16).add().set(tt);
    c.br(0).end().end();
  }
  return { score, scoreRow, image, binsAt, outAt, pages };
}

/** Instantiates the module (synchronously: it is small) and wraps it as a ScoringKernel. */
export function compileKernel(d: KernelData): ScoringKernel {
  const instance = new WebAssembly.Instance(new WebAssembly.Module(d.module), {});
  const exports = instance.exports as {
    mem: WasmMemory;
    score(nRows: number): void;
    scoreRow(rb: number, ob: number): void;
  };
  const buffer = exports.mem.buffer;
  new Uint8Array(buffer, 0, d.image.length).set(d.image);
  const W = d.width;
  const k = d.nOutputs;
  const bins = new Uint16Array(buffer, d.binsAt, KERNEL_BLOCK_ROWS * W);
  const scores = new Float64Array(buffer, d.outAt, KERNEL_BLOCK_ROWS * k);
  const { baseScore, cuts, cutStart, nLevels } = d;
  const nFeatures = nLevels.length;
  const { score, scoreRow } = exports;

  const lowerBound = (lo: number, hi: number, v: number): number => {
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (cuts[mid]! < v) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
  // bin(v) = #{cuts < v}, NaN = K + 1 for K cuts. Categorical: code + 1, 0 = missing (see binned.ts).
  const binColumns = (columns: readonly KernelColumn[], r0: number, r1: number): void => {
    for (let f = 0; f < nFeatures; f++) {
      const col = columns[f]!;
      const levels = nLevels[f]!;
      let o = f;
      if (levels < 0) {
        const c0 = cutStart[f]!;
        const c1 = cutStart[f + 1]!;
        const nanBin = c1 - c0 + 1;
        for (let r = r0; r < r1; r++, o += W) {
          const v = col[r]!;
          bins[o] = v !== v ? nanBin : lowerBound(c0, c1, v) - c0;
        }
      } else {
        for (let r = r0; r < r1; r++, o += W) {
          const code = col[r]!;
          bins[o] = code >= 0 && code < levels ? code + 1 : 0;
        }
      }
    }
  };

  return {
    predictRange(columns, r0, r1, out) {
      for (let s = r0; s < r1; s += KERNEL_BLOCK_ROWS) {
        const e = Math.min(r1, s + KERNEL_BLOCK_ROWS);
        const n = e - s;
        binColumns(columns, s, e);
        for (let r = 0; r < n; r++) for (let j = 0; j < k; j++) scores[r * k + j] = baseScore[j]!;
        const full = n - (n % LANES);
        score(full);
        for (let r = full; r < n; r++) scoreRow(d.binsAt + r * W * 2, d.outAt + r * k * 8);
        out.set(scores.subarray(0, n * k), (s - r0) * k);
      }
    },
    binOnly(columns, r0, r1) {
      for (let s = r0; s < r1; s += KERNEL_BLOCK_ROWS)
        binColumns(columns, s, Math.min(r1, s + KERNEL_BLOCK_ROWS));
    },
    predictRow(row, out) {
      for (let f = 0; f < nFeatures; f++) {
        const v = row[f]!;
        const levels = nLevels[f]!;
        if (levels < 0) {
          const c0 = cutStart[f]!;
          const c1 = cutStart[f + 1]!;
          bins[f] = v !== v ? c1 - c0 + 1 : lowerBound(c0, c1, v) - c0;
        } else {
          bins[f] = v >= 0 && v < levels && v === Math.floor(v) ? v + 1 : 0;
        }
      }
      for (let j = 0; j < k; j++) scores[j] = baseScore[j]!;
      scoreRow(d.binsAt, d.outAt);
      for (let j = 0; j < k; j++) out[j] = scores[j]!;
    },
  };
}

/**
 * Where GBDT scoring time goes, one step at a time, on a saved model (the trees
 * `npm run bench:gbdt-predict -- --save-model FILE` trained) and flights May–Jun rows:
 *
 *   npx tsx bench/gbdt-kernel.ts --model /tmp/scoring-flights.model
 *
 * Every variant runs in this one process on one thread, measured in process CPU time (the box
 * is shared: wall time would measure the neighbours), in alternating rounds (A B A B …) so a
 * change in load hits every variant alike; the median over rounds is printed. Variants:
 * - row/kernel: the kernel's one-row entry (bin the row, LANES padded trees walked side by side);
 *   commit a000610 of this script also ran the generated-JavaScript kernel beside WebAssembly;
 * - row/model: `GbdtModel.predictRow`, the public path (link function included);
 * - row/matrix: `GbdtModel.predict` on a one-row FeatureMatrix, what serving (src/serve) calls;
 * - batch/bin: binning the batch only; batch/kernel: the kernel's predictRange (bin + walk);
 * - batch/model: `GbdtModel.predictRaw` on one thread (remap, columns, kernel).
 * `--layout perfect|linked` builds the kernel variants with that tree layout (binned.ts; the
 * model's own paths keep the one it picks by depth), to compare them on the same trees.
 */
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { Command } from 'commander';
import type { FeatureMatrix } from '../src/data/index.js';
import { GbdtModel } from '../src/learn/gbdt/index.js';
import { binEnsemble } from '../src/learn/gbdt/predict/binned.js';
import { compileKernel, type KernelColumn, kernelData } from '../src/learn/gbdt/predict/kernel.js';
import { loadFlights } from './flights-rows.js';

function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function main(): Promise<void> {
  const o = new Command()
    .requiredOption('--model <file>', 'saved kiln GBDT model (GbdtModel.serialize bytes)')
    .option('--batch <n>', 'May–Jun rows', (v) => Number(v), 100_000)
    .option('--rounds <n>', 'alternating rounds (median reported)', (v) => Number(v), 7)
    .option('--only <list>', 'comma-separated variant names to run (default all)', '')
    .option(
      '--layout <name>',
      "kernel tree layout for the row/kernel and batch variants: 'perfect' or 'linked' (default: by depth)",
    )
    .option('--json', 'print one JSON object')
    .parse()
    .opts();
  const model = GbdtModel.deserialize(readFileSync(o.model));
  const { test } = await loadFlights(1, o.batch);
  const n = test.nRows;
  const nf = model.featureNames.length;
  const dense = model.toDenseRows(test);
  const levelCounts = model.info.features.map((f) => (f.kind === 'categorical' ? f.levels!.length : 0));
  const binned = binEnsemble(model.ensemble, levelCounts, o.layout)!;
  const kernel = compileKernel(kernelData(binned)!);
  // Kernel columns in model order, as predictRaw hands them over (codes already in the model's table).
  const byName = new Map(test.columns.map((c) => [c.name, c]));
  const columns: KernelColumn[] = model.featureNames.map((name) => {
    const c = byName.get(name)!;
    return c.kind === 'numeric' ? c.values : c.codes;
  });
  const out = new Float64Array(n * model.nOutputs);
  const one = new Float64Array(model.nOutputs);
  const rows = Array.from({ length: n }, (_, r) => dense.subarray(r * nf, (r + 1) * nf));
  // One-row matrices, as a server hands a one-row request to predict (10,000, reused in turn).
  const oneRowMatrices: FeatureMatrix[] = Array.from({ length: Math.min(n, 10_000) }, (_, r) => ({
    nRows: 1,
    columns: test.columns.map((c) =>
      c.kind === 'numeric'
        ? { ...c, values: c.values.subarray(r, r + 1) }
        : { ...c, codes: c.codes.subarray(r, r + 1) },
    ),
  }));

  // Each variant: rows handled per call of `run`, and run itself.
  const variants: Record<string, () => void> = {
    'row/kernel': () => {
      for (let r = 0; r < n; r++) kernel.predictRow(rows[r]!, one);
    },
    'row/model': () => {
      for (let r = 0; r < n; r++) model.predictRow(rows[r]!, one);
    },
    'row/matrix': () => {
      for (let r = 0; r < n; r++) model.predict(oneRowMatrices[r % oneRowMatrices.length]!);
    },
    'batch/bin': () => kernel.binOnly(columns, 0, n),
    'batch/kernel': () => kernel.predictRange(columns, 0, n, out),
    'batch/model': () => {
      model.predictRaw(test, { threads: 1 });
    },
  };
  const only = String(o.only).split(',').filter(Boolean);
  const names = Object.keys(variants).filter((v) => only.length === 0 || only.includes(v));
  for (const name of names) variants[name]!(); // warm-up: compile every variant first
  const times = new Map<string, number[]>(names.map((v) => [v, []]));
  const loadBefore = loadavg();
  for (let round = 0; round < o.rounds; round++) {
    for (const name of names) {
      const t0 = cpuMs();
      variants[name]!();
      times.get(name)!.push(cpuMs() - t0);
    }
  }
  const result = names.map((name) => {
    const ms = median(times.get(name)!);
    return {
      variant: name,
      cpu_ms: ms,
      rows_per_cpu_second: (n / ms) * 1000,
      cpu_us_per_row: (ms * 1000) / n,
    };
  });
  const machine = {
    at: new Date().toISOString(),
    load_before: loadBefore.map((v) => Number(v.toFixed(2))),
    load_after: loadavg().map((v) => Number(v.toFixed(2))),
  };
  if (o.json) {
    console.log(
      JSON.stringify({
        rows: n,
        trees: model.nTrees,
        layout: binned.layout,
        depth: binned.depth,
        machine,
        result,
      }),
    );
    return;
  }
  console.log(
    `${n} rows, ${model.nTrees} trees (depth ${binned.depth}, ${binned.layout} layout); ${machine.at}, load ${machine.load_before.join(' ')} → ${machine.load_after.join(' ')}; median of ${o.rounds} alternating rounds, process CPU time`,
  );
  for (const r of result) {
    console.log(
      `${r.variant.padEnd(14)} ${r.cpu_ms.toFixed(0).padStart(8)} ms  ${r.rows_per_cpu_second.toFixed(0).padStart(9)} rows/CPU-s  ${r.cpu_us_per_row.toFixed(2).padStart(7)} µs/row`,
    );
  }
}

await main();

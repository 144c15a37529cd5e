/**
 * GBDT prediction benchmark: kiln's scorer vs onnxruntime-node running the exported ONNX model
 * vs XGBoost 1.7 running the very same trees (kiln's model written as XGBoost JSON), on
 * flights-3m rows.
 *
 *   npm run bench:gbdt-predict                       # train on 500k Jan–Apr rows, score 100k May–Jun rows
 *   npm run bench:gbdt-predict -- --train-rows 200000 --trees 100 --json
 *   npm run bench:gbdt-predict -- --synthetic        # random 200-tree ensemble instead of training
 *
 * Batch: rows/s for one call on the whole batch (median of --repeats calls after a warm-up).
 * Single row: latency of one-row calls (p50 / p99 over --single-rows calls), each contender
 * through its own public API: kiln `predictRow`, ort `session.run` on a [1, F] tensor, XGBoost
 * `inplace_predict` on a one-row DataFrame (timed inside Python). Every contender's batch is
 * run at each of --thread-counts (default 1 and 2: kiln `predict(x, { threads })`, ort
 * intraOpNumThreads, XGBoost nthread) and the ratios compare equal thread counts. The date and
 * the machine's load average are printed with the figures: on a shared box only the ratios
 * of one run are comparable.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import * as ort from 'onnxruntime-node';
import type { FeatureMatrix } from '../src/data/index.js';
import { mixedFeatures, randomEnsemble, randomMatrix } from '../src/learn/gbdt/hand-built-models.js';
import { GbdtLearner, GbdtModel } from '../src/learn/gbdt/index.js';
import { toXgboostJson } from '../src/learn/gbdt/xgboost-json.js';
import { exportGbdtToOnnx } from '../src/learn/onnx/index.js';
import { loadFlights } from './flights-rows.js';

const here = dirname(fileURLToPath(import.meta.url));

interface Result {
  contender: string;
  threads: number;
  rows_per_second: number;
  single_p50_us: number;
  single_p99_us: number;
  /** Largest |p − kiln's p| over the batch. */
  max_abs_diff_vs_kiln: number;
}

function percentile(sorted: Float64Array, q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function main(): Promise<void> {
  const program = new Command()
    .option('--train-rows <n>', 'training rows sampled from Jan–Apr', (v) => Number(v), 500_000)
    .option('--batch <n>', 'rows scored in one batch call (sampled from May–Jun)', (v) => Number(v), 100_000)
    .option('--trees <n>', 'boosting rounds', (v) => Number(v), 200)
    .option('--leaves <n>', 'max leaves per tree', (v) => Number(v), 255)
    .option('--depth <n>', 'max depth', (v) => Number(v), 8)
    .option('--threads <n>', 'training threads', (v) => Number(v), 2)
    .option('--thread-counts <list>', 'comma-separated scoring thread counts, every contender', '1,2')
    .option('--repeats <n>', 'timed batch calls per contender (median reported)', (v) => Number(v), 5)
    .option('--single-rows <n>', 'timed single-row calls per contender', (v) => Number(v), 5000)
    .option('--synthetic', 'score a random ensemble instead of training one on flights')
    .option(
      '--model <file>',
      'score this saved kiln model (GbdtModel.serialize bytes) instead of training one',
    )
    .option('--save-model <file>', 'write the trained model here (for later --model runs on the same trees)')
    .option('--skip <peers>', 'comma-separated peers to skip (onnx3,onnx5,xgboost)', '')
    .option('--json', 'print one JSON object instead of a table');
  program.parse();
  const o = program.opts();
  const log = (s: string) => {
    if (!o.json) console.log(s);
  };
  const skip = new Set(String(o.skip).split(',').filter(Boolean));
  const threadCounts = String(o.threadCounts).split(',').map(Number);
  const startedAt = new Date().toISOString();
  const loadBefore = loadavg();

  let model: GbdtModel;
  let test: FeatureMatrix;
  let source: string;
  if (o.synthetic) {
    const features = mixedFeatures(5, 2, 230);
    const ensemble = randomEnsemble({
      features,
      nOutputs: 1,
      nTreesPerOutput: o.trees,
      maxDepth: o.depth,
      seed: 1,
    });
    model = new GbdtModel(ensemble, { task: 'binary', objective: 'binary', features });
    test = randomMatrix(features, o.batch, 2, 0.02, ensemble);
    source = `synthetic ensemble (${o.trees} random trees of depth ≤ ${o.depth}, 5 numeric + 2 categorical features of 230 levels)`;
  } else {
    const t0 = performance.now();
    const data = await loadFlights(o.model ? 1 : o.trainRows, o.batch);
    const t1 = performance.now();
    if (o.model) {
      model = GbdtModel.deserialize(readFileSync(o.model));
      test = data.test;
      source = `saved kiln model ${o.model} on ${test.nRows} flights-3m May–Jun rows (data ${((t1 - t0) / 1000).toFixed(1)} s)`;
    } else {
      const learner = new GbdtLearner({
        objective: 'binary',
        num_iterations: o.trees,
        num_leaves: o.leaves,
        max_depth: o.depth,
        learning_rate: 0.1,
        threads: o.threads,
      });
      model = (await learner.fit({ x: data.train, y: data.y })) as GbdtModel;
      test = data.test;
      source =
        `kiln GbdtLearner on flights-3m: ${data.train.nRows} Jan–Apr rows, ${o.trees} trees, ${o.leaves} leaves, depth ${o.depth} ` +
        `(data ${((t1 - t0) / 1000).toFixed(1)} s, training ${((performance.now() - t1) / 1000).toFixed(1)} s)`;
      if (o.saveModel) writeFileSync(o.saveModel, model.serialize());
    }
  }
  const nNodes = model.ensemble.featureIndex.length;
  log(`${source}; model: ${model.nTrees} trees, ${nNodes} nodes; batch of ${test.nRows} rows`);

  const nf = model.featureNames.length;
  const dense = model.toDenseRows(test);
  const results: Result[] = [];

  // kiln: batch, at every thread count
  const kilnPred = model.predict(test);
  const kilnBatch = threadCounts.map((threads) => {
    model.predict(test, { threads });
    const times: number[] = [];
    for (let i = 0; i < o.repeats; i++) {
      const t0 = performance.now();
      model.predict(test, { threads });
      times.push((performance.now() - t0) / 1000);
    }
    return test.nRows / median(times);
  });
  // kiln: single rows (dense rows in model order, as a server would hold them)
  const nSingle = Math.min(o.singleRows, test.nRows);
  const out = new Float64Array(model.nOutputs);
  const lat = new Float64Array(nSingle);
  for (let i = 0; i < Math.min(2000, nSingle); i++)
    model.predictRow(dense.subarray(i * nf, (i + 1) * nf), out);
  for (let i = 0; i < nSingle; i++) {
    const row = dense.subarray(i * nf, (i + 1) * nf);
    const t0 = process.hrtime.bigint();
    model.predictRow(row, out);
    lat[i] = Number(process.hrtime.bigint() - t0) / 1000;
  }
  lat.sort();
  threadCounts.forEach((threads, i) => {
    results.push({
      contender: 'kiln',
      threads,
      rows_per_second: kilnBatch[i]!,
      single_p50_us: percentile(lat, 0.5),
      single_p99_us: percentile(lat, 0.99),
      max_abs_diff_vs_kiln: 0,
    });
  });

  // onnxruntime-node on the exported model, both encodings of categorical splits.
  const input = Float32Array.from(dense);
  for (const mlOpset of [3, 5] as const) {
    for (const threads of threadCounts) {
      if (skip.has(`onnx${mlOpset}`)) continue;
      const session = await ort.InferenceSession.create(exportGbdtToOnnx(model, { mlOpset }), {
        intraOpNumThreads: threads,
        interOpNumThreads: 1,
      });
      const batch = new ort.Tensor('float32', input, [test.nRows, nf]);
      const first = await session.run({ input: batch });
      const probs = first.probabilities!.data as Float32Array;
      let diff = 0;
      for (let r = 0; r < test.nRows; r++) diff = Math.max(diff, Math.abs(probs[r * 2 + 1]! - kilnPred[r]!));
      const times: number[] = [];
      for (let i = 0; i < o.repeats; i++) {
        const t0 = performance.now();
        await session.run({ input: batch });
        times.push((performance.now() - t0) / 1000);
      }
      const single = new Float64Array(nSingle);
      const tensors = Array.from(
        { length: nSingle },
        (_, i) => new ort.Tensor('float32', input.subarray(i * nf, (i + 1) * nf), [1, nf]),
      );
      for (let i = 0; i < Math.min(500, nSingle); i++) await session.run({ input: tensors[i]! });
      for (let i = 0; i < nSingle; i++) {
        const t0 = process.hrtime.bigint();
        await session.run({ input: tensors[i]! });
        single[i] = Number(process.hrtime.bigint() - t0) / 1000;
      }
      single.sort();
      results.push({
        contender: `onnxruntime-node ${ort.env.versions.common} (ai.onnx.ml ${mlOpset})`,
        threads,
        rows_per_second: test.nRows / median(times),
        single_p50_us: percentile(single, 0.5),
        single_p99_us: percentile(single, 0.99),
        max_abs_diff_vs_kiln: diff,
      });
      await session.release();
    }
  }

  // XGBoost on the same trees.
  if (!skip.has('xgboost')) {
    const dir = mkdtempSync(join(tmpdir(), 'kiln-bench-gbdt-predict-'));
    try {
      const xgbInput = Float32Array.from(dense, (v, i) =>
        model.info.features[i % nf]!.kind === 'categorical' && v < 0 ? Number.NaN : v,
      );
      writeFileSync(join(dir, 'model.json'), toXgboostJson(model));
      writeFileSync(join(dir, 'x.f32'), new Uint8Array(xgbInput.buffer));
      writeFileSync(
        join(dir, 'meta.json'),
        JSON.stringify({
          rows: test.nRows,
          names: model.featureNames,
          levels: model.info.features.map((f) => f.levels?.length ?? 0),
        }),
      );
      for (const threads of threadCounts) {
        const stdout = execFileSync(
          '/usr/bin/python3',
          [
            join(here, 'peers', 'gbdt_predict_peer.py'),
            dir,
            String(threads),
            String(o.repeats),
            String(nSingle),
          ],
          {
            encoding: 'utf8',
            maxBuffer: 1 << 26,
            env: { ...process.env, OMP_NUM_THREADS: String(threads) },
            stdio: ['ignore', 'pipe', 'inherit'],
          },
        );
        const peer = JSON.parse(stdout.trim().split('\n').pop()!);
        const b = readFileSync(join(dir, 'xgb_pred.f64'));
        const xgbPred = new Float64Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
        let diff = 0;
        for (let r = 0; r < test.nRows; r++) diff = Math.max(diff, Math.abs(xgbPred[r]! - kilnPred[r]!));
        results.push({
          contender: `xgboost ${peer.version} inplace_predict`,
          threads,
          rows_per_second: peer.rows_per_second,
          single_p50_us: peer.single_p50_us,
          single_p99_us: peer.single_p99_us,
          max_abs_diff_vs_kiln: diff,
        });
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  const ratios = results
    .filter((r) => r.contender !== 'kiln')
    .map((r) => {
      const kiln = results.find((k) => k.contender === 'kiln' && k.threads === r.threads)!;
      return {
        peer: r.contender,
        threads: r.threads,
        throughput_kiln_over_peer: kiln.rows_per_second / r.rows_per_second,
        p50_latency_kiln_over_peer: kiln.single_p50_us / r.single_p50_us,
      };
    });
  const machine = {
    started_at: startedAt,
    load_average_before: loadBefore.map((v) => Number(v.toFixed(2))),
    load_average_after: loadavg().map((v) => Number(v.toFixed(2))),
  };
  if (o.json) {
    console.log(
      JSON.stringify({
        source,
        trees: model.nTrees,
        nodes: nNodes,
        batchRows: test.nRows,
        machine,
        results,
        ratios,
      }),
    );
    return;
  }
  console.log(
    `${machine.started_at}, load average ${machine.load_average_before.join(' ')} before, ${machine.load_average_after.join(' ')} after`,
  );
  console.log(
    `${'contender'.padEnd(50)} ${'threads'.padStart(7)} ${'batch rows/s'.padStart(13)} ${'1-row p50 µs'.padStart(13)} ${'1-row p99 µs'.padStart(13)}  max |Δp| vs kiln`,
  );
  for (const r of results) {
    console.log(
      `${r.contender.padEnd(50)} ${String(r.threads).padStart(7)} ${r.rows_per_second.toFixed(0).padStart(13)} ${r.single_p50_us.toFixed(1).padStart(13)} ${r.single_p99_us.toFixed(1).padStart(13)}  ${r.max_abs_diff_vs_kiln.toExponential(2)}`,
    );
  }
  for (const r of ratios) {
    console.log(
      `kiln / ${r.peer}, ${r.threads} thread(s): throughput ×${r.throughput_kiln_over_peer.toFixed(2)}, single-row p50 latency ×${r.p50_latency_kiln_over_peer.toFixed(2)} (lower is faster)`,
    );
  }
}

await main();

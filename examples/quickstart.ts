/**
 * kiln quickstart: the first half of the loop on real data, end to end, in about a minute.
 *
 *   npm run quickstart
 *
 * 1. data   ingests vega-datasets' 3 million US flights (Jan–Jun 2001) as a versioned,
 *           validated, profiled dataset (examples/flights/data.yaml + expectations.yaml);
 * 2. train  trains kiln's gradient-boosted trees to predict "leaves > 15 min late" from time
 *           of day, weekday, distance, origin and destination (categorical), training on
 *           January–March, validating on April and testing on May–June;
 * 3. track  records the run: params, per-round metrics, test metrics, the model with its
 *           signature, the evaluation report, latency and size, data lineage.
 * Then it prints how to browse what it stored.
 *
 * Everything lands in the embedded store under ./.kiln (KILN_HOME). Set
 * KILN_TRACKING_URI=http://127.0.0.1:5000 to track the run on a running `kiln server` instead.
 */
import path from 'node:path';
import { loadDataSpec, loadExpectations } from '../src/data/index.js';
import { connect, openWorkspace } from '../src/index.js';
import { defineTrainSpec, runTraining } from '../src/pipeline/index.js';

const here = import.meta.dirname;
const FLIGHTS = path.join(here, '..', 'node_modules', 'vega-datasets', 'data', 'flights-3m.parquet');
const DATA_SPEC = path.join(here, 'flights', 'data.yaml');
const EXPECTATIONS = path.join(here, 'flights', 'expectations.yaml');

const say = (line: string) => process.stdout.write(`${line}\n`);
const seconds = (since: number) => `${((performance.now() - since) / 1000).toFixed(1)} s`;

// The data lands in the local workspace even when KILN_TRACKING_URI sends the run to a server.
const local = await openWorkspace({ trackingUri: undefined });
const data = local.datasets;
const kiln = await connect();

try {
  // 1. Data: validate before registering; the same bytes ingested again give the same version.
  let t = performance.now();
  say('kiln quickstart\n\n1. ingest flights-3m.parquet (validate, profile, version)…');
  const ingest = await data.ingest({
    file: FLIGHTS,
    name: 'flights',
    spec: loadDataSpec(DATA_SPEC),
    specPlace: DATA_SPEC,
    expectations: loadExpectations(EXPECTATIONS),
    requireValid: true,
    description: 'US domestic flights, January to June 2001 (vega-datasets)',
    createdBy: 'quickstart',
  });
  const v = ingest.version;
  const checks = ingest.validation?.results.length ?? 0;
  say(
    `   flights@${v.version}  ${v.rows.toLocaleString('en-US')} rows  hash ${v.hash.slice(0, 12)}  ` +
      `${checks} expectations passed  ${ingest.created ? 'new version' : 'already stored'}  (${seconds(t)})`,
  );

  // 2–3. Train on the stored version (its derived hour/weekday/late columns), tracked.
  t = performance.now();
  say('\n2. train gradient-boosted trees on Jan–Mar, validate on Apr, test on May–Jun…');
  const spec = defineTrainSpec({
    name: 'flights-gbdt-quickstart',
    experiment: 'quickstart',
    // The first 5 days of each month keep this under a minute; drop `where` for all 3M rows.
    data: { dataset: `flights@${v.version}`, where: 'day <= 5' },
    features: ['hour', 'minute', 'weekday', 'day', 'distance', 'origin', 'destination'],
    target: 'late',
    split: { method: 'time', column: 'date', valid_from: '2001-04-01', test_from: '2001-05-01' },
    learner: {
      name: 'gbdt',
      params: { num_iterations: 100, learning_rate: 0.1, num_leaves: 31, min_data_in_leaf: 50 },
    },
    metrics: ['auc', 'logloss', 'average_precision'],
    cost: { false_positive: 1, false_negative: 5, per_1k_predictions: 0.01, threshold: 0.2 },
  });
  let lastRound = 0;
  const result = await runTraining(spec, {
    tracking: kiln,
    data,
    onIteration: (info) => {
      if (info.iteration - lastRound >= 25) {
        lastRound = info.iteration;
        const auc = info.metrics['valid.auc'];
        say(`   round ${info.iteration}${auc === undefined ? '' : `  valid AUC ${auc.toFixed(4)}`}`);
      }
      return undefined;
    },
  });
  const m = result.metrics;
  const fmt = (x: number | undefined, digits = 4) => (x === undefined ? '–' : x.toFixed(digits));
  say(`   done in ${seconds(t)}`);
  say(`\n3. tracked run ${result.runId} (experiment 'quickstart')`);
  say(
    `   test AUC ${fmt(m['test.auc'])}  valid AUC ${fmt(m['valid.auc'])}  test log loss ${fmt(m['test.logloss'])}`,
  );
  say(
    `   model ${(result.measurements.model_size_bytes / 1024).toFixed(0)} KiB, single-row p99 ` +
      `${fmt(result.measurements.p99_latency_us, 1)} µs, ${result.iterations} rounds`,
  );
  say(`
Browse it:
  npx kiln data show flights
  npx kiln runs ls --experiment quickstart --metrics test.auc,valid.auc,p99_latency_us
  npx kiln runs show ${result.runId}
  npx kiln server          # MLflow-compatible REST on http://127.0.0.1:5000

Point existing MLflow code at the server:
  export MLFLOW_TRACKING_URI=http://127.0.0.1:5000
Train your own: npx kiln train examples/flights/train.yaml   (see docs/train-and-tune.md)`);
} finally {
  await kiln.close();
  await local.close();
}

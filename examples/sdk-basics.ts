/**
 * The SDK on its own: fits a logistic regression on the Wisconsin breast-cancer data (569
 * tumours, 30 measurements, malignant vs benign) and records the run with the SDK: params,
 * per-epoch metrics (buffered and sent in the background), the model and its validation
 * predictions as artifacts. Then it prints how to browse what it logged.
 *
 *   npx tsx examples/sdk-basics.ts
 *
 * Data goes to the embedded store under ./.kiln (KILN_HOME), or to the server that
 * KILN_TRACKING_URI / MLFLOW_TRACKING_URI names if one is set.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { connect } from '../src/index.js';
import { accuracy, logLoss, rocAuc } from '../src/learn/index.js';

const SKLEARN_CSV = '/usr/lib/python3/dist-packages/sklearn/datasets/data/breast_cancer.csv';
const BUNDLED_CSV = path.join(import.meta.dirname, 'data', 'breast_cancer.csv');

// sklearn's CSV has no feature names; these are its DESCR's, in column order.
const MEASUREMENTS = [
  'radius',
  'texture',
  'perimeter',
  'area',
  'smoothness',
  'compactness',
  'concavity',
  'concave points',
  'symmetry',
  'fractal dimension',
];
const FEATURES = [
  ...MEASUREMENTS.map((f) => `mean ${f}`),
  ...MEASUREMENTS.map((f) => `${f} error`),
  ...MEASUREMENTS.map((f) => `worst ${f}`),
];

const params = {
  model: 'logistic_regression',
  optimiser: 'full-batch gradient descent',
  learning_rate: 0.5,
  l2: 1e-3,
  epochs: 300,
  valid_fraction: 0.2,
  seed: 42,
};

interface Dataset {
  x: Float64Array; // row-major n × p
  y: Float64Array; // 1 = benign, 0 = malignant (sklearn's coding)
  n: number;
  p: number;
  source: string;
}

/** sklearn's format: a header "n,p,class0,class1", then p feature columns and the class per row. */
function readBreastCancer(): Dataset {
  const source = fs.existsSync(SKLEARN_CSV) ? SKLEARN_CSV : BUNDLED_CSV;
  const lines = fs.readFileSync(source, 'utf8').trim().split('\n');
  const [n, p] = lines[0].split(',').map(Number);
  const x = new Float64Array(n * p);
  const y = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const cells = lines[i + 1].split(',');
    if (cells.length !== p + 1)
      throw new Error(`${source}: row ${i + 2} has ${cells.length} columns, expected ${p + 1}`);
    for (let j = 0; j < p; j++) x[i * p + j] = Number(cells[j]);
    y[i] = Number(cells[p]);
  }
  return { x, y, n, p, source };
}

/** Deterministic shuffle (mulberry32), so every run of this example splits alike. */
function shuffledIndices(n: number, seed: number): Uint32Array {
  let s = seed >>> 0;
  const rand = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const idx = Uint32Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [idx[i], idx[j]] = [idx[j], idx[i]];
  }
  return idx;
}

function take(data: Dataset, rows: Uint32Array): { x: Float64Array; y: Float64Array; n: number } {
  const { p } = data;
  const x = new Float64Array(rows.length * p);
  const y = new Float64Array(rows.length);
  rows.forEach((r, i) => {
    x.set(data.x.subarray(r * p, r * p + p), i * p);
    y[i] = data.y[r];
  });
  return { x, y, n: rows.length };
}

function predict(x: Float64Array, n: number, p: number, w: Float64Array, b: number): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let z = b;
    for (let j = 0; j < p; j++) z += x[i * p + j] * w[j];
    out[i] = 1 / (1 + Math.exp(-z));
  }
  return out;
}

const data = readBreastCancer();
const { p } = data;
const order = shuffledIndices(data.n, params.seed);
const nValid = Math.round(data.n * params.valid_fraction);
const valid = take(data, order.subarray(0, nValid));
const train = take(data, order.subarray(nValid));

// Standardise with the training rows' mean and standard deviation only.
const mean = new Float64Array(p);
const std = new Float64Array(p);
for (let j = 0; j < p; j++) {
  let s = 0;
  for (let i = 0; i < train.n; i++) s += train.x[i * p + j];
  mean[j] = s / train.n;
  let v = 0;
  for (let i = 0; i < train.n; i++) v += (train.x[i * p + j] - mean[j]) ** 2;
  std[j] = Math.sqrt(v / train.n) || 1;
}
for (const part of [train, valid]) {
  for (let i = 0; i < part.n; i++)
    for (let j = 0; j < p; j++) part.x[i * p + j] = (part.x[i * p + j] - mean[j]) / std[j];
}

const kiln = await connect();
const run = await kiln.startRun({
  experiment: 'sdk-basics',
  name: 'logreg-breast-cancer',
  tags: { dataset: 'sklearn breast_cancer', task: 'binary classification' },
});
await run.logParams({ ...params, n_train: train.n, n_valid: valid.n, n_features: p, data_file: data.source });

const w = new Float64Array(p);
let b = 0;
const grad = new Float64Array(p);
for (let epoch = 0; epoch < params.epochs; epoch++) {
  const prob = predict(train.x, train.n, p, w, b);
  grad.fill(0);
  let gb = 0;
  for (let i = 0; i < train.n; i++) {
    const r = prob[i] - train.y[i];
    gb += r;
    for (let j = 0; j < p; j++) grad[j] += r * train.x[i * p + j];
  }
  for (let j = 0; j < p; j++) w[j] -= params.learning_rate * (grad[j] / train.n + params.l2 * w[j]);
  b -= (params.learning_rate * gb) / train.n;

  // Logged every epoch without awaiting: the SDK batches the points in the background.
  const validProb = predict(valid.x, valid.n, p, w, b);
  run.logMetrics(
    {
      train_loss: logLoss(train.y, prob),
      valid_loss: logLoss(valid.y, validProb),
      valid_auc: rocAuc(valid.y, validProb),
      valid_accuracy: accuracy(
        valid.y,
        validProb.map((q) => (q >= 0.5 ? 1 : 0)),
      ),
    },
    epoch,
  );
}

const validProb = predict(valid.x, valid.n, p, w, b);
const final = {
  valid_auc: rocAuc(valid.y, validProb),
  valid_accuracy: accuracy(
    valid.y,
    validProb.map((q) => (q >= 0.5 ? 1 : 0)),
  ),
  valid_loss: logLoss(valid.y, validProb),
};

await run.logJson(
  {
    kind: 'logistic_regression',
    classes: { 0: 'malignant', 1: 'benign' },
    features: FEATURES.slice(0, p),
    standardise: { mean: [...mean], std: [...std] },
    weights: [...w],
    bias: b,
  },
  'model/model.json',
);
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-sdk-basics-'));
const predictionsCsv = path.join(scratch, 'valid_predictions.csv');
fs.writeFileSync(
  predictionsCsv,
  `label,prob_benign\n${Array.from(validProb, (q, i) => `${valid.y[i]},${q.toFixed(6)}`).join('\n')}\n`,
);
await run.logArtifact(predictionsCsv, 'evaluation');
fs.rmSync(scratch, { recursive: true, force: true });
await run.end();
await kiln.close();

const where =
  process.env.KILN_TRACKING_URI ||
  process.env.MLFLOW_TRACKING_URI ||
  path.resolve(process.env.KILN_HOME ?? '.kiln');
process.stdout.write(`
kiln SDK example: logged run ${run.id} to ${where}
  experiment  sdk-basics
  data        ${data.source} (${train.n} train / ${valid.n} validation rows, ${p} features)
  params      ${Object.keys(params).length + 4}, metrics ${4 * params.epochs} points (4 per epoch × ${params.epochs} epochs)
  result      validation AUC ${final.valid_auc.toFixed(4)}, accuracy ${final.valid_accuracy.toFixed(4)}, log loss ${final.valid_loss.toFixed(4)}
  artifacts   model/model.json, evaluation/valid_predictions.csv

Browse it:
  npx kiln runs ls --experiment sdk-basics
  npx kiln runs show ${run.id}
  npx kiln server                      # MLflow-compatible server on http://127.0.0.1:5000

Point existing MLflow code (Python or anything else) at the server:
  export MLFLOW_TRACKING_URI=http://127.0.0.1:5000
`);

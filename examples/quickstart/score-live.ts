/**
 * The retrain pipeline's `score` step (retrain.yaml): judges the champion and the candidate on
 * the same rows, the labelled live window, before the promote step asks the gate.
 *
 *   node --import tsx score-live.ts MODEL CANDIDATE_VERSION WINDOW
 *
 * Why a step of its own: the candidate was trained on newer data than the champion, so their
 * logged test AUCs are on different held-out rows and the gate (rightly) refuses to compare
 * them. Here both models score the requests the champion answered in the last WINDOW that have
 * their labels now (the prediction log, with the feedback attached), rows neither model trained
 * on (training kept the first days of each month; the replay sends later days). The step logs
 * `live.auc`, `live.logloss` and `live.rows` to both versions' runs, tagged with the window, and
 * policy-live.yaml's primary metric is `live.auc`.
 *
 * It runs as a pipeline command step: KILN_DB and KILN_ARTIFACTS name the pipeline's workspace,
 * and KILN_VALUES_FILE receives the step's value outputs.
 */
import { writeFileSync } from 'node:fs';
import { connect, createServeApp } from '../../src/index.js';
import { binaryMetrics, parseDuration, readPredictionWindow } from '../../src/monitor/index.js';
import type { Workspace } from '../../src/workspace.js';

const [model, candidate, window = '6h'] = process.argv.slice(2);
if (!model || !candidate) {
  process.stderr.write('usage: score-live.ts MODEL CANDIDATE_VERSION [WINDOW]\n');
  process.exit(2);
}

// The pipeline's workspace by its parts: MLFLOW_TRACKING_URI, which a command step also gets,
// names a loopback server for MLflow clients, not the database this step reads.
const kiln = await connect({ db: process.env.KILN_DB, artifacts: process.env.KILN_ARTIFACTS });
const { registry, store } = kiln.workspace as Workspace;
if (!registry || !store) throw new Error('score-live.ts needs a local workspace (KILN_DB)');
try {
  const registered = await registry.getRegisteredModel(model);
  const holder = registered.aliases.find((a: { alias: string }) => a.alias === 'champion')?.version;
  if (holder === undefined) throw new Error(`${model} has no champion to compare with`);
  const to = Date.now();
  const from = to - parseDuration(window, 'window');
  const logged = await readPredictionWindow(store, {
    model,
    version: String(holder),
    from,
    to,
    labelledOnly: true,
  });
  if (logged.length < 50)
    throw new Error(
      `only ${logged.length} labelled live requests of ${model}/${holder} in the last ${window}`,
    );
  // Each logged request is one row: its raw inputs, as the client sent them.
  const columns = Object.keys(logged[0]!.inputs);
  const rows = logged.map((r) => columns.map((c) => r.inputs[c]?.[0] ?? null));
  const labels = logged.map((r) =>
    r.label === 1 || r.label === true || r.label === '1' || r.label === 'true' ? 1 : 0,
  );

  const versions = [String(holder), candidate];
  const served = await createServeApp({
    deployment: {
      models: versions.map((v) => ({
        name: `v${v}`,
        versions: [{ version: v, source: `models:/${model}/${v}`, weight: 1 }],
        maxRows: Math.max(100_000, rows.length),
      })),
    },
    load: { workspace: kiln.workspace as Workspace },
  });
  const scores: Record<string, { auc: number; logloss: number }> = {};
  try {
    for (const v of versions) {
      const res = await served.app.inject({
        method: 'POST',
        url: `/invocations?model=v${v}`,
        payload: { dataframe_split: { columns, data: rows } },
      });
      if (res.statusCode !== 200)
        throw new Error(`scoring ${model}/${v}: ${res.statusCode} ${res.body.slice(0, 300)}`);
      const p = (res.json() as { predictions: number[] }).predictions;
      const m = binaryMetrics(labels, p, 0.5);
      scores[v] = { auc: m.auc ?? Number.NaN, logloss: m.logloss ?? Number.NaN };
    }
  } finally {
    await served.close();
  }

  const windowTag = `${new Date(from).toISOString()}/${new Date(to).toISOString()} ${model}/${holder} labelled`;
  const timestamp = Date.now();
  for (const v of versions) {
    const runId = (await registry.getModelVersion(model, v)).run_id;
    if (!runId) throw new Error(`${model}/${v} has no run to log its live metrics to`);
    await kiln.store.logBatch({
      run_id: runId,
      metrics: [
        { key: 'live.auc', value: scores[v]!.auc, timestamp, step: 0 },
        { key: 'live.logloss', value: scores[v]!.logloss, timestamp, step: 0 },
        { key: 'live.rows', value: logged.length, timestamp, step: 0 },
      ],
      tags: [{ key: 'kiln.live.window', value: windowTag }],
    });
    process.stdout.write(
      `${model}/${v}${v === candidate ? ' (candidate)' : ' (champion)'}: live AUC ${scores[v]!.auc.toFixed(4)}, log loss ${scores[v]!.logloss.toFixed(4)} on ${logged.length} labelled requests\n`,
    );
  }
  if (process.env.KILN_VALUES_FILE)
    writeFileSync(
      process.env.KILN_VALUES_FILE,
      JSON.stringify({
        rows: logged.length,
        champion: String(holder),
        champion_live_auc: scores[String(holder)]!.auc,
        candidate_live_auc: scores[candidate]!.auc,
      }),
    );
} finally {
  await kiln.close();
}

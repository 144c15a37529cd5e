/**
 * kiln quickstart: the whole loop on real data, on this machine, in a few minutes.
 *
 *   npm run quickstart                 # ~3–4 minutes on 2 cores; leaves the UI running
 *   npm run quickstart -- --fast       # a smaller slice, under a minute
 *   npm run quickstart -- --no-serve   # stop everything at the end (also: KILN_QUICKSTART_NO_SERVE=1,
 *                                      # or stdout not a terminal, as in CI and tests)
 *
 *  1. data      ingest vega-datasets' 3 million US flights (Jan–Jun 2001) as a validated,
 *               profiled, versioned dataset, and split off the history a model may learn from
 *               (January–April);
 *  2. train     a gradient-boosted baseline: will a flight leave more than 15 minutes late?
 *  3. tune      a short TPE study whose trials must answer a single row within a latency bound;
 *  4. register  both, and promote through the promotion gate under a policy (policy.yaml);
 *  5. serve     `kiln serve models:/flights-delay@champion` on loopback, logging predictions;
 *  6. live      later days of May as live HTTP traffic, their labels arriving later through the
 *               feedback API of `kiln server`; drift of the live inputs against the training
 *               profile, live performance against the offline test;
 *  7. live      the first half of June the same way, then the monitor's alert check;
 *  8. retrain   the alert starts a pipeline in `kiln server` (an event trigger on `alert.fired`:
 *               examples/quickstart/retrain.yaml) that retrains on January–May, scores champion
 *               and candidate on the same labelled live window and promotes through the gate;
 *               `kiln serve` hot-reloads the new champion;
 *  9. live      the second half of June goes to the new champion;
 * 10. summary   every version with its metrics, latency, cost, value, drift and gate decisions,
 *               and the UI's address, with `kiln server` left running (Ctrl-C stops it).
 *
 * Everything lands in the embedded store under ./.kiln (KILN_HOME): SQLite, local files, the
 * local pipeline executor. The quickstart opens that folder itself (KILN_TRACKING_URI is not
 * used). Run it again and the data is found already stored; the model gets a new name.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { loadDataSpec, loadExpectations } from '../src/data/index.js';
import { KilnError } from '../src/errors.js';
import { connect } from '../src/index.js';
import type { CheckResult, DriftReport, PerformanceReport } from '../src/monitor/index.js';
import type { ModelOutcomes } from '../src/outcomes/index.js';
import {
  addTrigger,
  loadTrainSpec,
  runTraining,
  SqlPipelineStore,
  type TrainSpec,
  tuneFromSpec,
} from '../src/pipeline/index.js';
import { type PromotionResult, promoteVersion, setPromotionPolicy } from '../src/registry/index.js';
import type { Workspace } from '../src/workspace.js';
import { http, type KilnProcess, startKiln } from './quickstart/processes.js';
import { say, seconds, stepBar } from './quickstart/progress.js';
import { type ReplayResult, replay, sampleFlights } from './quickstart/replay.js';

const here = import.meta.dirname;
const QS = path.join(here, 'quickstart');
const FLIGHTS = path.join(here, '..', 'node_modules', 'vega-datasets', 'data', 'flights-3m.parquet');
const DATA_SPEC = path.join(here, 'flights', 'data.yaml');
const EXPECTATIONS = path.join(here, 'flights', 'expectations.yaml');

const argv = new Set(process.argv.slice(2));
for (const a of argv)
  if (!['--fast', '--no-serve'].includes(a)) {
    process.stderr.write(
      `kiln: INVALID_PARAMETER_VALUE: quickstart: unknown option '${a}' (--fast, --no-serve)\n`,
    );
    process.exit(2);
  }
const FAST = argv.has('--fast');
const STAY =
  !argv.has('--no-serve') && process.env.KILN_QUICKSTART_NO_SERVE !== '1' && process.stdout.isTTY === true;
/** How much of the data each mode uses: the first `days` of each month train, later days are live. */
const SIZE = FAST
  ? { days: 2, rounds: 40, trials: 4, tuneRounds: 32, live: 1200, concurrency: 8 }
  : { days: 2, rounds: 100, trials: 10, tuneRounds: 64, live: 5000, concurrency: 8 };
const LATENCY_BOUND_US = 300;
const home = path.resolve(process.env.KILN_HOME ?? '.kiln');
const actor = { user: process.env.KILN_USER ?? 'quickstart' };
const fmt = (x: number | undefined, digits = 4) =>
  x === undefined || Number.isNaN(x) ? '–' : x.toFixed(digits);

const total = performance.now();
const kiln = await connect({ home });
const ws = kiln.workspace as Workspace;
const { datasets, registry, store } = ws;
if (!registry || !store) throw new KilnError('INVALID_STATE', `${home} is not a local workspace`);
const children: KilnProcess[] = [];
// Children get the workspace as a folder; nothing may point them at another one.
const {
  KILN_TRACKING_URI: _k,
  MLFLOW_TRACKING_URI: _m,
  KILN_DB: _d,
  KILN_ARTIFACTS: _a,
  ...baseEnv
} = process.env;
const childEnv = { ...baseEnv, KILN_HOME: home, KILN_USER: actor.user, KILN_LOG_LEVEL: 'warn' };
// The processes and model of this run, for the helpers below.
let serverProcess: KilnProcess | undefined;
let serveProcess: KilnProcess | undefined;
let modelName = '';
let stopping = false;
const stopAll = async () => {
  if (stopping) return;
  stopping = true;
  for (const c of children.reverse()) await c.stop().catch(() => undefined);
  await kiln.close().catch(() => undefined);
};
process.on('SIGINT', () => void stopAll().then(() => process.exit(130)));
process.on('SIGTERM', () => void stopAll().then(() => process.exit(143)));

try {
  say(
    `kiln quickstart${FAST ? ' --fast' : ''}: the loop on 3 million real flights, workspace ${path.relative(process.cwd(), home) || '.'}\n`,
  );

  // kiln server starts first (it takes a few seconds): its UI, its REST API (feedback, drift,
  // performance, alert checks) and its pipeline trigger scheduler serve the later steps.
  const serverStarting = startServer();
  serverStarting.catch(() => undefined);

  // 1. Data: validate before registering; the same bytes ingested again give the same version.
  let t = performance.now();
  say('1. data: ingest flights-3m.parquet (validate, profile, version), split off January–April');
  const ingestBar = stepBar('ingest', 5, 'steps');
  let ingestSteps = 0;
  const ingest = await datasets.ingest({
    file: FLIGHTS,
    name: 'flights',
    spec: loadDataSpec(DATA_SPEC),
    specPlace: DATA_SPEC,
    expectations: loadExpectations(EXPECTATIONS),
    requireValid: true,
    description: 'US domestic flights, January to June 2001 (vega-datasets)',
    createdBy: actor.user,
    onProgress: (step: string, done: boolean) => {
      if (done) ingestBar.update(++ingestSteps, step);
    },
  });
  ingestBar.stop();
  const flights = ingest.version;
  say(
    `   flights@${flights.version}  ${flights.rows.toLocaleString('en-US')} rows  hash ${flights.hash.slice(0, 12)}  ` +
      `${ingest.validation?.results.length ?? 0} expectations passed  ${ingest.created ? 'new version' : 'already stored'}`,
  );
  const parts = await datasets.split(
    `flights@${flights.version}`,
    { method: 'time', column: 'date', cutoff: '2001-05-01', names: ['history', 'later'] },
    { prefix: 'flights' },
  );
  const history = parts.history!;
  const historyCheck = await datasets.validate(
    `${history.name}@${history.version}`,
    loadExpectations(EXPECTATIONS),
  );
  say(
    `   ${history.name}@${history.version}  ${history.rows.toLocaleString('en-US')} rows (January–April, profiled)  ` +
      `validation ${historyCheck.passed ? 'passed' : 'FAILED'}  (${seconds(t)})`,
  );

  // 2. Baseline, on the history's first days of each month.
  t = performance.now();
  say(
    `\n2. train: gradient-boosted trees on the first ${SIZE.days} days of Jan–Feb, validate on Mar, test on Apr`,
  );
  const baseSpec = loadTrainSpec(path.join(QS, 'train.yaml'));
  baseSpec.data = {
    ...baseSpec.data,
    dataset: `${history.name}@${history.version}`,
    where: `day <= ${SIZE.days}`,
  };
  baseSpec.learner = {
    ...baseSpec.learner,
    params: { ...baseSpec.learner.params, num_iterations: SIZE.rounds },
  };
  const trainBar = stepBar('train', SIZE.rounds, 'rounds');
  const baseline = await runTraining(baseSpec, {
    tracking: kiln,
    data: datasets,
    runName: 'baseline',
    onIteration: (info) => {
      const auc = info.metrics['valid.auc'];
      trainBar.update(info.iteration + 1, auc === undefined ? '' : `valid AUC ${auc.toFixed(4)}`);
      return undefined;
    },
  });
  trainBar.stop();
  say(
    `   run ${baseline.runId}  test AUC ${fmt(baseline.metrics['test.auc'])}  ` +
      `p99 ${fmt(baseline.measurements.p99_latency_us, 1)} µs/row  (${seconds(t)})`,
  );

  // 3. Tuning: TPE with ASHA pruning; a trial slower than the bound is not a candidate.
  t = performance.now();
  say(
    `\n3. tune: ${SIZE.trials} TPE trials (ASHA pruning), constraint p99_latency_us <= ${LATENCY_BOUND_US}`,
  );
  const tuneSpec: TrainSpec = {
    ...baseSpec,
    name: 'flights-tune',
    learner: { ...baseSpec.learner, params: { ...baseSpec.learner.params, num_iterations: SIZE.tuneRounds } },
    search: {
      study: `quickstart-${new Date().toISOString().replace(/[-:.]/g, '').slice(0, 15)}`,
      trials: SIZE.trials,
      sampler: { name: 'tpe', seed: 1 },
      pruner: { name: 'asha', minResource: 4, reductionFactor: 4 },
      report_every: 4,
      space: {
        learning_rate: { type: 'float', low: 0.03, high: 0.3, log: true },
        num_leaves: { type: 'int', low: 8, high: 128, log: true },
        min_data_in_leaf: { type: 'int', low: 20, high: 400, log: true },
        feature_fraction: { type: 'float', low: 0.6, high: 1.0 },
        lambda_l2: { type: 'float', low: 0.001, high: 10, log: true },
      },
      objectives: [{ metric: 'valid.auc', direction: 'maximize' }],
      constraints: [`p99_latency_us <= ${LATENCY_BOUND_US}`],
    } as unknown as TrainSpec['search'],
  };
  const tuneBar = stepBar('tune', SIZE.trials, 'trials');
  let trialsDone = 0;
  const tuned = await tuneFromSpec(tuneSpec, {
    storage: ws.studies,
    client: kiln,
    data: datasets,
    parallel: 2,
    onTrialFinished: (trial) =>
      tuneBar.update(++trialsDone, `trial ${trial.number} ${trial.state.toLowerCase()}`),
  });
  tuneBar.stop();
  const best = tuned.summary.best[0];
  const counts = tuned.summary.counts;
  say(
    `   study ${tuned.study}: ${counts.COMPLETE ?? 0} complete, ${counts.PRUNED ?? 0} pruned; ` +
      (best?.runId
        ? `best trial ${best.number} valid AUC ${fmt(best.values?.[0])}${best.feasible ? '' : ' (violates the latency bound)'}`
        : 'no feasible trial') +
      `  (${seconds(t)})`,
  );

  // 4. Registry and gate: the baseline first, then the tuned model has to beat it.
  t = performance.now();
  const model = await freeModelName('flights-delay');
  modelName = model;
  say(`\n4. register ${model} and promote through the gate (examples/quickstart/policy.yaml)`);
  await registry.createRegisteredModel(
    { name: model, description: 'Will a US flight leave >15 min late? (quickstart)' },
    actor,
  );
  await setPromotionPolicy(registry, model, readFileSync(path.join(QS, 'policy.yaml'), 'utf8'), actor);
  const versions: VersionRow[] = [];
  const v1 = await registerRun(model, baseline.runId, 'baseline', `Jan–Feb, days 1–${SIZE.days}`);
  versions.push(v1);
  v1.decisions.push(await promote(model, v1.version, 'the first champion'));
  if (best?.runId) {
    const v2 = await registerRun(
      model,
      best.runId,
      `tuned (trial ${best.number})`,
      `Jan–Feb, days 1–${SIZE.days}`,
    );
    versions.push(v2);
    v2.decisions.push(await promote(model, v2.version, 'tuned'));
  }
  const firstChampion = await champion(model);
  say(`   ${model}@champion = version ${firstChampion}  (${seconds(t)})`);

  // 5. Serve the alias: kiln serve follows champion and logs every prediction.
  t = performance.now();
  const server = await serverStarting;
  serverProcess = server;
  say(`\n5. serve: kiln serve models:/${model}@champion (prediction log on), kiln server at ${server.url}`);
  const serve = await startKiln(
    [
      'serve',
      `models:/${model}@champion`,
      '--tracking-uri',
      home,
      '--prediction-store',
      '--port',
      '0',
      '--workers',
      '1',
      '--watch',
      '1',
      '--log-level',
      'warn',
    ],
    childEnv,
  );
  children.push(serve);
  serveProcess = serve;
  say(`   serving on ${serve.url}  (${seconds(t)})`);

  // Going live: alert rules on the served alias, the live policy, and the retraining trigger.
  // The AUC rule fires when live AUC falls 0.01 under the champion's offline test AUC.
  const offlineAuc = versions.find((v) => v.version === firstChampion)!.metric('test.auc') ?? 0.6;
  const aucFloor = Math.floor((offlineAuc - 0.01) * 1000) / 1000;
  await setPromotionPolicy(registry, model, readFileSync(path.join(QS, 'policy-live.yaml'), 'utf8'), actor);
  const pipelines = new SqlPipelineStore(store);
  await addTrigger(pipelines, {
    name: `${model}-retrain`,
    event: 'alert.fired',
    match: { 'payload.model': model },
    spec: path.join(QS, 'retrain.yaml'),
    params: {
      dataset: `flights@${flights.version}`,
      model,
      where: `day <= ${SIZE.days}`,
      rounds: String(SIZE.rounds),
    },
    createdBy: actor.user,
  });
  const triggeredAfter = Date.now();

  // 6–7. Live traffic with labels behind it, then drift and measured performance of each
  // stretch of it; a replayed month takes seconds, so windows are the replay's own span.
  const championBefore = versions.find((v) => v.version === firstChampion)!;
  t = performance.now();
  const may = await liveStretch('May', 5, SIZE.days + 1, 31, '6. live');
  championBefore.live.set('May', may.figures);
  t = performance.now();
  const june1 = await liveStretch('June 1st half', 6, SIZE.days + 1, 15, '7. live');
  championBefore.live.set('June-1', june1.figures);
  // The monitor's check, as `kiln server --monitor-interval-ms` runs it on a timer, over the
  // rules in alerts.yaml watching the last stretch of traffic.
  const rulesYaml = readFileSync(path.join(QS, 'alerts.yaml'), 'utf8')
    .replace('below: 0.6,', `below: ${aucFloor},`)
    .replace('window: 1h', `window: ${june1.windowSeconds}s`);
  await http(`${server.url}/api/kiln/monitor/alerts/rules/${model}`, {
    method: 'PUT',
    body: { rules: rulesYaml },
  });
  const check = await http<{ check: CheckResult }>(`${server.url}/api/kiln/monitor/check`, {
    body: { model },
  });
  const fired = firedRules(check.check);
  say(
    `   alert check (alerts.yaml; auc below ${aucFloor} = offline test AUC − 0.01): ` +
      `${fired.length > 0 ? `fired ${fired.join(', ')}` : 'nothing fired'}`,
  );

  // 8. The alert starts the retrain pipeline in kiln server; kiln serve picks up the new champion.
  let retrained: VersionRow | undefined;
  if (fired.length > 0) {
    t = performance.now();
    say(
      `\n8. retrain: the alert fired trigger ${model}-retrain; kiln server runs examples/quickstart/retrain.yaml`,
    );
    const run = await waitForPipeline(pipelines, triggeredAfter);
    // In the order they ran (a skipped step last).
    const steps = (await pipelines.listSteps(run.runId)).sort(
      (a, b) => (a.startTime ?? Number.MAX_SAFE_INTEGER) - (b.startTime ?? Number.MAX_SAFE_INTEGER),
    );
    for (const s of steps)
      say(
        `   ${s.step.padEnd(9)} ${s.status.padEnd(9)} ${s.error ? s.error.slice(0, 200) : outputsLine(s.outputs)}`,
      );
    const reg = steps.find((s) => s.step === 'register')?.outputs;
    const regVersion = reg?.version && 'value' in reg.version ? reg.version.value : undefined;
    const newVersion = regVersion === undefined ? undefined : String(regVersion);
    if (newVersion) {
      const mv = await registry.getModelVersion(model, newVersion);
      retrained = await versionRow(
        newVersion,
        mv.run_id ?? '',
        'retrained (pipeline)',
        `Jan–Mar, days 1–${SIZE.days}`,
      );
      versions.push(retrained);
      const decision = await lastDecision(model, newVersion);
      if (decision) retrained.decisions.push(decision);
    }
    say(`   pipeline ${run.runId.slice(0, 8)} ${run.status.toLowerCase()}  (${seconds(t)})`);
  } else say('\n8. retrain: no alert fired, so nothing retrains');
  const finalChampion = await champion(model);
  if (finalChampion !== firstChampion) {
    t = performance.now();
    const served = await waitForServedVersion(serve.url, model, finalChampion);
    say(`   kiln serve hot-reloaded ${model}@champion: now version ${served}  (${seconds(t)})`);
  }
  // The score step logged live.* to the runs it judged.
  for (const v of versions) v.run = await kiln.getRun(v.runId);

  // 9. The rest of June, on whichever version holds champion now.
  t = performance.now();
  const june2 = await liveStretch('June 2nd half', 6, 16, 30, `9. live (champion version ${finalChampion})`);
  const juneRow = versions.find((v) => v.version === finalChampion)!;
  juneRow.live.set('June-2', june2.figures);

  // 10. Summary.
  const outcomes = await http<ModelOutcomes>(
    `${server.url}/api/kiln/models/outcomes?name=${model}&window=1h`,
  ).catch(() => undefined);
  summary(model, versions, finalChampion, june1.drift, outcomes);
  say(`\nDone in ${seconds(total)}.`);
  say(`
Open the UI: ${server.url}/${existsSync(path.join(here, '..', 'dist', 'ui', 'index.html')) ? '' : '  (not built in this checkout: npm run build, then restart kiln server)'}
Browse from the CLI (another terminal):
  npx kiln models history ${model}@champion
  npx kiln monitor drift --model ${model}@champion --window 1h
  npx kiln pipeline ls
  npx kiln runs ls --experiment quickstart --metrics test.auc,live.auc,p99_latency_us`);
  if (STAY) {
    await serve.stop();
    children.splice(children.indexOf(serve), 1);
    say(`\nkiln server is running at ${server.url} — Ctrl-C stops it.`);
    await new Promise<void>((resolve) => server.child.once('exit', () => resolve()));
  }
} finally {
  await stopAll();
}

// ---------------------------------------------------------------------------------------

interface LiveFigures {
  auc?: number;
  logloss?: number;
  rows: number;
}

interface VersionRow {
  version: string;
  runId: string;
  role: string;
  trainedOn: string;
  run: Awaited<ReturnType<typeof kiln.getRun>>;
  metric(key: string): number | undefined;
  decisions: PromotionResult[];
  live: Map<string, LiveFigures>;
}

/** Replays one month's days [fromDay, toDay] and reports drift and performance over exactly them. */
async function liveStretch(label: string, month: number, fromDay: number, toDay: number, heading: string) {
  const monthName = month === 5 ? 'May' : 'June';
  say(
    `\n${heading}: ${SIZE.live.toLocaleString('en-US')} flights of ${monthName} (days ${fromDay}–${toDay}) as HTTP requests, labels through feedback`,
  );
  const flights = await sampleFlights(FLIGHTS, month, fromDay - 1, toDay, SIZE.live);
  // Each stretch's window starts a whole second after the previous stretch's last request.
  await new Promise((r) => setTimeout(r, 1100));
  const from = Date.now();
  const r = await replay(flights, {
    serveUrl: serveProcess!.url,
    serverUrl: serverProcess!.url,
    idPrefix: `${modelName}-${label.replace(/\W+/g, '-').toLowerCase()}`,
    concurrency: SIZE.concurrency,
    bar: stepBar(label, flights.length, 'requests'),
  });
  sayReplay(r);
  const end = Date.now() + 1;
  const windowSeconds = Math.ceil((end - from) / 1000);
  const q = `model=${modelName}@champion&window=${windowSeconds}s&end=${new Date(end).toISOString()}`;
  const drift = await http<DriftReport>(`${serverProcess!.url}/api/kiln/monitor/drift?${q}`);
  const perf = await http<PerformanceReport>(`${serverProcess!.url}/api/kiln/monitor/performance?${q}`);
  sayDrift(drift);
  sayPerformance(perf);
  const figures: LiveFigures = {
    auc: perf.measured?.auc,
    logloss: perf.measured?.logloss,
    rows: perf.labels.labelled,
  };
  return { replay: r, drift, perf, figures, windowSeconds };
}

async function startServer(): Promise<KilnProcess> {
  const args = (port: string) => [
    'server',
    '--home',
    home,
    '--port',
    port,
    '--schedule-interval-ms',
    '1000',
    '--monitor-interval-ms',
    '0',
  ];
  const wanted = process.env.KILN_QUICKSTART_PORT ?? (STAY ? '5000' : '0');
  let s: KilnProcess;
  try {
    s = await startKiln(args(wanted), childEnv);
  } catch (e) {
    // 5000 taken (another kiln server?): any free port will do.
    if (wanted === '0' || !/already in use/.test(String(e))) throw e;
    s = await startKiln(args('0'), childEnv);
  }
  children.push(s);
  return s;
}

async function freeModelName(base: string): Promise<string> {
  for (let i = 1; ; i++) {
    const name = i === 1 ? base : `${base}-${i}`;
    try {
      await registry!.getRegisteredModel(name);
    } catch (e) {
      if (e instanceof KilnError && e.code === 'RESOURCE_DOES_NOT_EXIST' && !e.message.includes('deleted'))
        return name;
      if (!(e instanceof KilnError)) throw e;
    }
  }
}

async function versionRow(
  version: string,
  runId: string,
  role: string,
  trainedOn: string,
): Promise<VersionRow> {
  const row: VersionRow = {
    version,
    runId,
    role,
    trainedOn,
    run: await kiln.getRun(runId),
    metric: (key) => row.run.data.metrics.find((m) => m.key === key)?.value,
    decisions: [],
    live: new Map(),
  };
  return row;
}

async function registerRun(
  model: string,
  runId: string,
  role: string,
  trainedOn: string,
): Promise<VersionRow> {
  const v = await registry!.createModelVersion(
    {
      name: model,
      source: `runs:/${runId}/model`,
      run_id: runId,
      tags: [{ key: 'kiln.quickstart.role', value: role }],
    },
    actor,
  );
  return versionRow(String(v.version), runId, role, trainedOn);
}

async function promote(model: string, version: string, why: string): Promise<PromotionResult> {
  const r = await promoteVersion(
    registry!,
    { name: model, version, alias: 'champion' },
    { ...actor, reason: why },
  );
  say(`   version ${version} → @champion: ${r.decision.toUpperCase()}`);
  for (const rule of r.rules)
    say(`     ${rule.outcome === 'passed' ? 'ok    ' : 'FAILED'} ${rule.rule}: ${rule.detail}`);
  return r;
}

async function champion(model: string): Promise<string> {
  const m = await registry!.getRegisteredModel(model);
  return String(m.aliases.find((a: { alias: string }) => a.alias === 'champion')?.version ?? '');
}

async function lastDecision(model: string, version: string): Promise<PromotionResult | undefined> {
  const rows = await store!.db
    .selectFrom('registry_promotions')
    .selectAll()
    .where('name', '=', model)
    .where('version', '=', Number(version))
    .orderBy('promotion_id', 'desc')
    .limit(1)
    .execute();
  const r = rows[0];
  if (!r) return undefined;
  return {
    promotion_id: Number(r.promotion_id),
    name: model,
    version,
    alias: r.alias,
    decision: r.decision as PromotionResult['decision'],
    incumbent_version: r.incumbent_version === null ? null : String(r.incumbent_version),
    rules: JSON.parse(r.rules_json),
    actor: r.actor,
    time: Number(r.time),
  };
}

function firedRules(check: CheckResult): string[] {
  return check.rules.filter((r) => r.action === 'fired').map((r) => r.rule);
}

async function waitForPipeline(pipelines: SqlPipelineStore, after: number) {
  const bar = stepBar('pipeline', 7, 'steps');
  const deadline = Date.now() + 5 * 60_000;
  for (;;) {
    const runs = (await pipelines.listRuns({ name: 'flights-retrain', limit: 5 })).filter(
      (r) => r.startTime >= after,
    );
    const run = runs[0];
    if (run) {
      const steps = await pipelines.listSteps(run.runId);
      const done = steps.filter((s) => !['pending', 'running'].includes(s.status));
      bar.setTotal(steps.length);
      bar.update(done.length, steps.find((s) => s.status === 'running')?.step ?? '');
      if (run.status !== 'RUNNING') {
        bar.stop();
        return run;
      }
    }
    if (Date.now() > deadline) {
      bar.stop();
      throw new KilnError('INVALID_STATE', 'the retrain pipeline did not finish within 5 minutes');
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}

async function waitForServedVersion(serveUrl: string, model: string, version: string): Promise<string> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const m = await http<{ versions: string[] }>(`${serveUrl}/v2/models/${model}`).catch(() => ({
      versions: [] as string[],
    }));
    if (m.versions.includes(version)) return version;
    if (Date.now() > deadline)
      throw new KilnError(
        'INVALID_STATE',
        `kiln serve still serves ${m.versions.join(', ')} a minute after the promotion`,
      );
    await new Promise((r) => setTimeout(r, 250));
  }
}

function outputsLine(outputs: Record<string, { value?: unknown; file?: unknown }> | null): string {
  if (!outputs) return '';
  return Object.entries(outputs)
    .filter(([, o]) => o.value !== undefined && typeof o.value !== 'object')
    .map(
      ([k, o]) =>
        `${k}=${typeof o.value === 'number' ? Number(o.value.toPrecision(4)) : String(o.value).slice(0, 40)}`,
    )
    .join('  ');
}

function sayReplay(r: ReplayResult): void {
  const rate = r.requests / r.seconds;
  say(
    `   ${r.requests} requests in ${r.seconds.toFixed(1)} s (${rate.toFixed(0)}/s), ${r.failed} failed, answered by version ` +
      `${[...r.versions].map(([v, n]) => `${v}×${n}`).join(' ')}; ${r.labelled} labels attached` +
      (r.unknownLabels ? ` (${r.unknownLabels} not found in the log)` : ''),
  );
  if (r.firstError) say(`   first failure: ${r.firstError}`);
}

function sayDrift(d: DriftReport): void {
  say(
    `   drift vs ${d.reference.dataset} (${d.reference.rows.toLocaleString('en-US')} rows): ` +
      `${d.dataset.driftedFeatures} of ${d.dataset.testedFeatures} features drifted` +
      `${d.dataset.drifted ? ' — dataset drift' : ''}`,
  );
  for (const f of d.features)
    if (f.status === 'tested')
      say(
        `     ${f.column.padEnd(12)} ${String(f.test).padEnd(15)} score ${fmt(f.score)} (threshold ${f.threshold})  ${f.drifted ? 'DRIFT' : 'ok'}`,
      );
  const p = d.prediction;
  if (p.status === 'tested')
    say(
      `     ${'predictions'.padEnd(12)} ${String(p.test).padEnd(15)} score ${fmt(p.score)} (threshold ${p.threshold})  ${p.drifted ? 'DRIFT' : 'ok'}` +
        `  mean ${fmt(p.referenceMean, 3)} → ${fmt(p.currentMean, 3)}`,
    );
}

function sayPerformance(p: PerformanceReport): void {
  const m = p.measured ?? {};
  const tr = p.training?.metrics ?? {};
  say(
    `   ${p.model.uri ?? ''} live (${p.labels.labelled} labelled): AUC ${fmt(m.auc)} vs offline ${p.training?.part ?? 'test'} ${fmt(tr.auc)}` +
      `  (change ${fmt(p.change?.auc)}), log loss ${fmt(m.logloss)} vs ${fmt(tr.logloss)}` +
      (p.estimated ? `; estimated before labels (CBPE) AUC ${fmt(p.estimated.auc)}` : ''),
  );
}

function summary(
  model: string,
  rows: VersionRow[],
  finalChampion: string,
  drift: DriftReport,
  outcomes: ModelOutcomes | undefined,
): void {
  const money = (x: number | undefined) => (x === undefined ? '–' : x.toPrecision(2));
  say(`\nSummary: ${model}`);
  const header = [
    'version',
    'role',
    'trained on',
    'test AUC',
    'live May',
    'Jun 1–15',
    'Jun 16–30',
    'scored',
    'p99 µs',
    'cost/1k',
    'value/1k',
    'gate',
  ];
  const table = rows.map((v) => {
    const d = v.decisions[v.decisions.length - 1];
    return [
      `${v.version}${v.version === finalChampion ? ' *' : ''}`,
      v.role,
      v.trainedOn,
      fmt(v.metric('test.auc')),
      fmt(v.live.get('May')?.auc),
      fmt(v.live.get('June-1')?.auc),
      fmt(v.live.get('June-2')?.auc),
      fmt(v.metric('live.auc')),
      fmt(v.metric('p99_latency_us'), 1),
      money(v.metric('cost_per_1k_predictions')),
      fmt(v.metric('test.value_per_1k'), 0),
      d ? `${d.decision}${d.incumbent_version ? ` vs v${d.incumbent_version}` : ''}` : '–',
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...table.map((r) => r[i]!.length)));
  const line = (cells: string[]) => `  ${cells.map((c, i) => c.padEnd(widths[i]!)).join('  ')}`.trimEnd();
  say(line(header));
  for (const r of table) say(line(r));
  say('  * holds @champion. test AUC and value/1k (USD per 1,000 predictions, the value matrix of');
  say("  train.yaml) are on each version's own held-out test month. live: AUC measured on the labelled");
  say("  requests that version answered. scored: the retrain pipeline's score step, champion and");
  say("  candidate on the same labelled live requests (the gate's live.auc). p99: one row scored");
  say('  in-process; cost/1k: its CPU at KILN_COST_CPU_HOUR.');
  say(
    `\n  drift (June 1–15 window vs ${drift.reference.dataset}): features ${
      drift.features
        .filter((f) => f.drifted)
        .map((f) => `${f.column} (${f.test} ${fmt(f.score, 3)})`)
        .join(', ') || 'none'
    }; predictions ${
      drift.prediction.drifted
        ? `drifted (${drift.prediction.test} ${fmt(drift.prediction.score, 3)}, mean ${fmt(drift.prediction.referenceMean, 3)} → ${fmt(drift.prediction.currentMean, 3)})`
        : 'no drift'
    }; dataset drift ${drift.dataset.drifted ? 'yes' : 'no'}`,
  );
  say('\n  Promotions (the gate, policy.yaml offline, policy-live.yaml once serving):');
  for (const v of rows)
    for (const d of v.decisions) {
      const key = d.rules.find((r) => r.rule.startsWith('primary:'));
      const failed = d.rules.filter((r) => r.outcome === 'failed');
      say(
        `    version ${v.version} ${d.decision}: ${failed.length > 0 ? failed.map((r) => r.detail).join('; ') : (key?.detail ?? '')}`,
      );
    }
  if (outcomes?.versions?.length) {
    say(`\n  Served (kiln models outcomes ${model} --window 1h):`);
    for (const o of outcomes.versions)
      say(
        `    version ${o.version}: ${o.predictions} predictions over HTTP, latency p50 ${fmt(o.latency_ms?.p50, 2)} ms, ` +
          `p99 ${fmt(o.latency_ms?.p99, 2)} ms` +
          (o.cost.per_1k_predictions
            ? `, serving cost ${money(o.cost.per_1k_predictions)} ${outcomes.currency} per 1k`
            : ''),
      );
  }
}

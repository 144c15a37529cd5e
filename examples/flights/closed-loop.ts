/**
 * The flights continuous-training loop, end to end, on real data (issue 16 item 6):
 *
 *   npm run example:ct                                  # local executor, a thinned slice
 *   npm run example:ct -- --executor bullmq --redis redis://127.0.0.1:6379   # steps on kiln workers
 *   npm run example:ct -- --sample "true" --replay 20000   # every flight of each window
 *
 * 1. `kiln pipeline run examples/flights/ct.yaml` trains the January–March champion of
 *    flights-live, the gate (ct-policy.yaml) promotes it and the deploy step points
 *    `deployments:/flights-live` at it;
 * 2. `kiln serve deployments:/flights-live --prediction-store` serves it; `kiln server` checks the
 *    alert rules (alerts.yaml) every few seconds and fires pipeline triggers;
 * 3. April–May flights are replayed as traffic through `kiln serve`, each answer's label (did it
 *    leave > 15 min late) fed back through POST /api/kiln/monitor/feedback;
 * 4. the drift alert fires, the trigger (`kiln pipeline trigger add … --param from=2001-04-01
 *    --param to=2001-06-01`) runs ct.yaml on the newest window, the challenger passes the gate,
 *    the deploy step moves the deployment and `kiln serve` swaps versions while traffic flows;
 * 5. June flights are replayed to the new champion; both versions then score the same June
 *    flights, so the AUC before/after is measured on identical rows.
 * It prints what happened (and `--out FILE` writes it as JSON): drift per feature, AUCs, times,
 * failed requests, the audit entries and the lineage. Everything lives in `--home` (default a
 * fresh temporary folder, kept). test/pipeline-closed-loop.test.ts runs it on a small slice.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { grantRole } from '../../src/auth/index.js';
import { sqlString, withDuck } from '../../src/data/index.js';
import { setPromotionPolicy } from '../../src/registry/index.js';
import { connect } from '../../src/sdk/index.js';

const HERE = import.meta.dirname;
const REPO = path.resolve(HERE, '..', '..');
const FLIGHTS = path.join(REPO, 'node_modules', 'vega-datasets', 'data', 'flights-3m.parquet');
const KILN = [process.execPath, '--import', import.meta.resolve('tsx'), path.join(REPO, 'src/cli/main.ts')];
const MODEL = 'flights-live';
const USER = 'ct-bot';

export interface ClosedLoopOptions {
  /** The workspace folder (KILN_HOME). */
  home: string;
  /** Row filter thinning every window (ct.yaml's `sample`). */
  sample: string;
  trees: number;
  /** Flights replayed from April–May, and from June. */
  replay: number;
  /** Requests in flight at once. */
  concurrency: number;
  executor: 'local' | 'bullmq';
  redis?: string;
  /** kiln server's alert-check interval. */
  monitorIntervalMs: number;
  /** Give up waiting for the alert → retrain → swap after this long. */
  timeoutMs: number;
  log(line: string): void;
}

interface Flight {
  hour: number;
  minute: number;
  weekday: number;
  day: number;
  distance: number;
  origin: string;
  destination: string;
  late: boolean;
}

export interface ClosedLoopResult {
  options: Omit<ClosedLoopOptions, 'log' | 'home'>;
  home: string;
  champion: { version: string; trainSeconds: number; testAuc: number | undefined };
  challenger: { version: string; testAuc: number | undefined };
  replay: {
    requests: number;
    failed: number;
    byVersion: Record<string, number>;
    labelled: number;
    /** Seconds from the first replayed request. */
    alertFiredAfter: number | undefined;
    retrainStartedAfter: number | undefined;
    switchedAfter: number | undefined;
  };
  alert: { rule: string; evidence: Record<string, unknown> } | undefined;
  drift: unknown;
  live: { champion: unknown; challenger: unknown };
  june: { rows: number; championAuc: number; challengerAuc: number };
  retrain: { runId: string; trigger: unknown; status: string; steps: { step: string; status: string }[] };
  audit: { action: string; target: string; actor: string }[];
  lineage: unknown;
  report: string;
}

/** Mann–Whitney AUC (ties count a half), by sorting once. */
export function auc(scores: ArrayLike<number>, labels: ArrayLike<boolean>): number {
  const idx = Array.from({ length: scores.length }, (_, i) => i).sort((a, b) => scores[a]! - scores[b]!);
  let pos = 0;
  let rankSum = 0;
  for (let i = 0; i < idx.length; ) {
    let j = i;
    while (j + 1 < idx.length && scores[idx[j + 1]!] === scores[idx[i]!]) j++;
    const rank = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++)
      if (labels[idx[k]!]) {
        pos++;
        rankSum += rank;
      }
    i = j + 1;
  }
  const neg = idx.length - pos;
  return (rankSum - (pos * (pos + 1)) / 2) / (pos * neg);
}

function kilnEnv(o: ClosedLoopOptions): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, KILN_HOME: o.home, KILN_USER: USER };
  for (const k of ['KILN_TRACKING_URI', 'MLFLOW_TRACKING_URI', 'KILN_DB', 'KILN_ARTIFACTS', 'KILN_TOKEN'])
    delete env[k];
  if (o.executor === 'bullmq') env.KILN_REDIS = o.redis;
  else delete env.KILN_REDIS;
  return env;
}

/** `kiln …args` to completion; throws with its stderr on a non-zero exit. */
function kiln(o: ClosedLoopOptions, args: string[]): Promise<string> {
  const child = spawn(KILN[0]!, [...KILN.slice(1), ...args], {
    cwd: REPO,
    env: kilnEnv(o),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => {
    out += d;
  });
  child.stderr.on('data', (d) => {
    err += d;
  });
  return new Promise((resolve, reject) =>
    child.on('close', (code) =>
      code === 0 ? resolve(out) : reject(new Error(`kiln ${args.join(' ')} exited ${code}: ${err || out}`)),
    ),
  );
}

interface LongProcess {
  child: ChildProcess;
  match: RegExpExecArray;
  stop(): Promise<void>;
}

/** A long-running `kiln …args`, resolved once its stdout matches `ready`. */
async function startKiln(o: ClosedLoopOptions, args: string[], ready: RegExp): Promise<LongProcess> {
  const child = spawn(KILN[0]!, [...KILN.slice(1), ...args], {
    cwd: REPO,
    env: kilnEnv(o),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stderr!.on('data', (d) => {
    err = (err + d).slice(-20_000);
  });
  const match = await new Promise<RegExpExecArray>((resolve, reject) => {
    child.stdout!.on('data', (d) => {
      out += d;
      const m = ready.exec(out);
      if (m) resolve(m);
    });
    child.on('exit', (code) => reject(new Error(`kiln ${args[0]} exited ${code}: ${out}${err}`)));
  });
  return {
    child,
    match,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/** Flights of [from, to) passing `sample`: the `replay` of them a hash of the row picks, in time order. */
async function flightsOf(from: string, to: string, sample: string, n: number): Promise<Flight[]> {
  return withDuck(async (conn) => {
    const reader = await conn.runAndReadAll(
      `SELECT hour(date) AS hour, minute(date) AS minute, dayofweek(date) AS weekday, day(date) AS day,
              distance, origin, destination, delay > 15 AS late
         FROM (SELECT * FROM read_parquet(${sqlString(FLIGHTS)})
                WHERE date >= DATE ${sqlString(from)} AND date < DATE ${sqlString(to)} AND (${sample})
                ORDER BY hash(date, origin, destination, delay) LIMIT ${n})
        ORDER BY date`,
    );
    return reader.getRowObjects().map((r) => ({
      hour: Number(r.hour),
      minute: Number(r.minute),
      weekday: Number(r.weekday),
      day: Number(r.day),
      distance: Number(r.distance),
      origin: String(r.origin),
      destination: String(r.destination),
      late: r.late === true,
    }));
  });
}

const FEATURES = ['hour', 'minute', 'weekday', 'day', 'distance', 'origin', 'destination'] as const;

/** One OIP v2 request of one flight; the version that answered and its request id. */
async function infer(
  base: string,
  f: Flight,
): Promise<{ ok: true; version: string; id: string; p: number } | { ok: false; why: string }> {
  try {
    const r = await fetch(`${base}/v2/models/flights-live/infer`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        inputs: FEATURES.map((name) => ({
          name,
          shape: [1],
          datatype: typeof f[name] === 'string' ? 'BYTES' : 'FP64',
          data: [f[name]],
        })),
      }),
    });
    const body = (await r.json()) as { model_version?: string; outputs?: { name: string; data: number[] }[] };
    if (r.status !== 200) return { ok: false, why: `${r.status} ${JSON.stringify(body).slice(0, 200)}` };
    return {
      ok: true,
      version: String(body.model_version),
      id: r.headers.get('x-request-id')!,
      p: body.outputs!.find((x) => x.name === 'predictions')!.data[0]!,
    };
  } catch (e) {
    return { ok: false, why: (e as Error).message };
  }
}

/** Scores flights in batches through /invocations of a `kiln serve` of one version. */
async function scoreAll(base: string, flights: Flight[]): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < flights.length; i += 1000) {
    const rows = flights.slice(i, i + 1000).map((f) => Object.fromEntries(FEATURES.map((k) => [k, f[k]])));
    const r = await fetch(`${base}/invocations`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ dataframe_records: rows }),
    });
    if (r.status !== 200) throw new Error(`scoring: ${r.status} ${await r.text()}`);
    out.push(...((await r.json()) as { predictions: number[] }).predictions);
  }
  return out;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function runClosedLoop(o: ClosedLoopOptions): Promise<ClosedLoopResult> {
  const spec = path.join(HERE, 'ct.yaml');
  const params = ['--param', `sample=${o.sample}`, '--param', `trees=${o.trees}`];
  const running: LongProcess[] = [];
  // Ctrl-C stops the servers and workers this started, not only this process.
  const onSignal = () => {
    for (const p of running) p.child.kill('SIGTERM');
    process.exit(130);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    // The model, its gate and who the pipeline acts as (the deploy step needs editor on it).
    const client = await connect({ home: o.home });
    try {
      const ws = client.workspace!;
      await ws.registry!.createRegisteredModel({ name: MODEL }, { user: 'admin' }).catch((e) => {
        if ((e as { code?: string }).code !== 'RESOURCE_ALREADY_EXISTS') throw e;
      });
      await setPromotionPolicy(ws.registry!, MODEL, readFileSync(path.join(HERE, 'ct-policy.yaml'), 'utf8'), {
        user: 'admin',
      });
      await grantRole(ws.store!.db, { user: USER, role: 'editor', scope: MODEL }, 'admin');
    } finally {
      await client.close();
    }
    if (o.executor === 'bullmq') {
      for (let i = 0; i < 2; i++)
        running.push(await startKiln(o, ['worker', '--redis', o.redis!, '--concurrency', '2'], /ready on/));
      o.log(`2 kiln workers on ${o.redis}`);
    }

    // 1. The January–March champion, through the same pipeline.
    let t = performance.now();
    o.log('1. kiln pipeline run examples/flights/ct.yaml (January–March)…');
    await kiln(o, [
      'pipeline',
      'run',
      spec,
      ...params,
      ...(o.executor === 'bullmq' ? ['--executor', 'bullmq'] : []),
    ]);
    const trainSeconds = (performance.now() - t) / 1000;
    const runs = JSON.parse(await kiln(o, ['pipeline', 'ls', '--json'])) as { runId: string }[];
    const first = JSON.parse(await kiln(o, ['pipeline', 'show', runs[0]!.runId, '--json']));
    const out = (step: string, name: string) =>
      first.steps.find((s: { step: string }) => s.step === step).outputs[name].value;
    const championVersion = String(out('promote', 'version'));
    const championRun = String(out('train', 'run_id'));
    o.log(`   champion ${MODEL}/${championVersion} in ${trainSeconds.toFixed(1)} s`);

    // 2. Rules, the trigger, the server that runs them and the serving process.
    await kiln(o, ['monitor', 'alerts', 'set', MODEL, path.join(HERE, 'alerts.yaml')]);
    await kiln(o, [
      'pipeline',
      'trigger',
      'add',
      'flights-retrain',
      '--event',
      'alert.fired',
      '--match',
      `subject=monitors:/${MODEL}/*`,
      '--spec',
      spec,
      '--param',
      'from=2001-04-01',
      '--param',
      'to=2001-06-01',
      ...params,
    ]);
    const server = await startKiln(
      o,
      [
        'server',
        '--port',
        '0',
        '--schedule-interval-ms',
        '1000',
        '--monitor-interval-ms',
        String(o.monitorIntervalMs),
      ],
      /listening on (http:\/\/\S+)/,
    );
    running.push(server);
    const api = server.match[1]!;
    const serve = await startKiln(
      o,
      [
        'serve',
        'deployments:/flights-live',
        '--prediction-store',
        '--tracking-uri',
        o.home,
        '--port',
        '0',
        '--workers',
        '1',
      ],
      /listening on (http:\/\/[^\s]+)/,
    );
    running.push(serve);
    const base = serve.match[1]!;
    o.log(`2. kiln server ${api}, kiln serve deployments:/flights-live ${base}`);

    // 3. Replay April–May until the deployment has switched, then June.
    const aprMay = await flightsOf('2001-04-01', '2001-06-01', o.sample, o.replay);
    const june = await flightsOf('2001-06-01', '2001-07-01', o.sample, o.replay);
    let requests = 0;
    let failed = 0;
    const failures: string[] = [];
    const byVersion: Record<string, number> = {};
    let pending: { request_id: string; label: boolean }[] = [];
    let labelled = 0;
    const flush = async () => {
      if (pending.length === 0) return;
      const batch = pending;
      pending = [];
      const r = await fetch(`${api}/api/kiln/monitor/feedback`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ feedback: batch }),
      });
      if (r.status !== 200) throw new Error(`feedback: ${r.status} ${await r.text()}`);
      labelled += ((await r.json()) as { labelled: number }).labelled;
    };
    const replayStart = performance.now();
    const since = () => (performance.now() - replayStart) / 1000;
    let switchedAfter: number | undefined;
    const send = async (flights: Flight[], until?: () => boolean) => {
      let next = 0;
      const worker = async () => {
        for (;;) {
          if (until?.()) return;
          if (!until && next >= flights.length) return;
          const f = flights[next++ % flights.length]!;
          const r = await infer(base, f);
          requests++;
          if (!r.ok) {
            failed++;
            if (failures.length < 5) failures.push(r.why);
            continue;
          }
          byVersion[r.version] = (byVersion[r.version] ?? 0) + 1;
          if (r.version !== championVersion && switchedAfter === undefined) switchedAfter = since();
          pending.push({ request_id: r.id, label: f.late });
          if (pending.length >= 200) await flush();
        }
      };
      await Promise.all(Array.from({ length: o.concurrency }, worker));
      await flush();
    };
    o.log(`3. replaying ${aprMay.length} April–May flights (cycled) until the alert's retrain is live…`);
    const deadline = Date.now() + o.timeoutMs;
    await send(aprMay, () => switchedAfter !== undefined || Date.now() > deadline);
    if (switchedAfter === undefined)
      throw new Error(
        `no new version served within ${o.timeoutMs / 1000} s (${requests} requests; alerts: ${await kiln(o, ['monitor', 'alerts', 'ls', MODEL])}; runs: ${await kiln(o, ['pipeline', 'ls'])})`,
      );
    o.log(`   switched to a new version ${switchedAfter.toFixed(1)} s into the replay`);
    o.log(`   replaying ${june.length} June flights…`);
    await send(june);
    o.log(`   ${requests} requests, ${failed} failed ${failures.join(' | ')}`);

    // 4. What happened: the alert, the triggered run, drift, live and June AUCs, audit, lineage.
    const alerts = JSON.parse(await kiln(o, ['monitor', 'alerts', 'ls', MODEL, '--json'])) as {
      rule: string;
      fired_time: number;
      evidence: Record<string, unknown>;
    }[];
    const drift = [...alerts].sort((a, b) => a.fired_time - b.fired_time)[0];
    const all = JSON.parse(await kiln(o, ['pipeline', 'ls', '--json'])) as {
      runId: string;
      startTime: number;
      trigger: { type: string };
    }[];
    // The first triggered run is the retrain; a later alert's run finds every step cached.
    const triggered = all.filter((r) => r.trigger?.type === 'event').at(-1);
    if (!triggered) throw new Error('no triggered pipeline run');
    let retrain = JSON.parse(await kiln(o, ['pipeline', 'show', triggered.runId, '--json']));
    for (let i = 0; i < 120 && retrain.status === 'RUNNING'; i++) {
      await sleep(500);
      retrain = JSON.parse(await kiln(o, ['pipeline', 'show', triggered.runId, '--json']));
    }
    const rOut = (step: string, name: string) =>
      retrain.steps.find((s: { step: string }) => s.step === step)?.outputs?.[name]?.value;
    const challengerVersion = String(rOut('promote', 'version'));
    const challengerRun = String(rOut('train', 'run_id'));
    const window = `${Math.ceil(since() / 60) + 2}m`;
    const driftReport = JSON.parse(
      await kiln(o, [
        'monitor',
        'drift',
        '--model',
        `${MODEL}/${championVersion}`,
        '--window',
        window,
        '--json',
      ]),
    );
    const perf = async (v: string) =>
      JSON.parse(
        await kiln(o, ['monitor', 'performance', '--model', `${MODEL}/${v}`, '--window', window, '--json']),
      );
    const live = {
      champion: (await perf(championVersion)).measured,
      challenger: (await perf(challengerVersion)).measured,
    };
    const report = path.join(o.home, 'flights-drift-report.html');
    await kiln(o, [
      'monitor',
      'report',
      '--model',
      `${MODEL}/${championVersion}`,
      '--window',
      window,
      '--out',
      report,
    ]);

    // Both versions on the same June flights.
    const scored: Record<string, number[]> = {};
    for (const v of [championVersion, challengerVersion]) {
      const s = await startKiln(
        o,
        ['serve', `models:/${MODEL}/${v}`, '--tracking-uri', o.home, '--port', '0', '--workers', '1'],
        /listening on (http:\/\/[^\s]+)/,
      );
      try {
        scored[v] = await scoreAll(s.match[1]!, june);
      } finally {
        await s.stop();
      }
    }
    const juneLabels = june.map((f) => f.late);
    const metricOf = async (run: string) => {
      const c = await connect({ home: o.home });
      try {
        return (await c.getRun(run)).data.metrics.find((m) => m.key === 'test.auc')?.value;
      } finally {
        await c.close();
      }
    };
    const audit = (await kiln(o, ['audit', 'export']))
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { action: string; target: string; actor: string })
      .map(({ action, target, actor }) => ({ action, target, actor }));
    const lineage = JSON.parse(
      await kiln(o, ['models', 'lineage', `${MODEL}/${challengerVersion}`, '--json']),
    );
    const firedAfter = drift ? (drift.fired_time - (Date.now() - since() * 1000)) / 1000 : undefined;
    t = performance.now();
    const { log: _log, home: _home, ...shown } = o;
    return {
      options: shown,
      home: o.home,
      champion: { version: championVersion, trainSeconds, testAuc: await metricOf(championRun) },
      challenger: { version: challengerVersion, testAuc: await metricOf(challengerRun) },
      replay: {
        requests,
        failed,
        byVersion,
        labelled,
        alertFiredAfter: firedAfter,
        retrainStartedAfter: (triggered.startTime - (Date.now() - since() * 1000)) / 1000,
        switchedAfter,
      },
      alert: drift ? { rule: drift.rule, evidence: drift.evidence } : undefined,
      drift: driftReport,
      live,
      june: {
        rows: june.length,
        championAuc: auc(scored[championVersion]!, juneLabels),
        challengerAuc: auc(scored[challengerVersion]!, juneLabels),
      },
      retrain: {
        runId: triggered.runId,
        trigger: retrain.trigger,
        status: retrain.status,
        steps: retrain.steps.map((s: { step: string; status: string }) => ({
          step: s.step,
          status: s.status,
        })),
      },
      audit,
      lineage,
      report,
    };
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    for (const p of running.reverse()) await p.stop();
  }
}

/** The figures a reader wants, one line each. */
export function summaryLines(r: ClosedLoopResult): string[] {
  const d = r.drift as {
    dataset: { share: number; driftedFeatures: number; testedFeatures: number };
    features: { column: string; test?: string; score?: number; threshold?: number; drifted: boolean }[];
  };
  const f4 = (x: number | undefined) => (x === undefined ? 'n/a' : x.toFixed(4));
  return [
    `champion ${MODEL}/${r.champion.version}: test AUC ${f4(r.champion.testAuc)} (Jan–Mar held-out), pipeline ${r.champion.trainSeconds.toFixed(1)} s`,
    `challenger ${MODEL}/${r.challenger.version}: test AUC ${f4(r.challenger.testAuc)} (Apr–May held-out)`,
    `replay: ${r.replay.requests} requests, ${r.replay.failed} failed, by version ${JSON.stringify(r.replay.byVersion)}, ${r.replay.labelled} labelled`,
    `alert fired ${r.replay.alertFiredAfter?.toFixed(1)} s, retrain started ${r.replay.retrainStartedAfter?.toFixed(1)} s, new version served ${r.replay.switchedAfter?.toFixed(1)} s into the replay`,
    `drift of the champion's traffic: ${d.dataset.driftedFeatures}/${d.dataset.testedFeatures} features (share ${d.dataset.share.toFixed(2)})`,
    ...d.features.map(
      (f) =>
        `  ${f.column.padEnd(12)} ${String(f.test).padEnd(14)} ${f4(f.score)} (threshold ${f.threshold})${f.drifted ? ' DRIFT' : ''}`,
    ),
    `live AUC (labels fed back): champion ${f4((r.live.champion as { auc?: number })?.auc)} on Apr–May, challenger ${f4((r.live.challenger as { auc?: number })?.auc)} on June`,
    `same ${r.june.rows} June flights: champion AUC ${f4(r.june.championAuc)}, challenger ${f4(r.june.challengerAuc)}`,
    `retrain run ${r.retrain.runId}: ${r.retrain.status} (${r.retrain.steps.map((s) => `${s.step} ${s.status}`).join(', ')})`,
    `report: ${r.report} (+ .json)`,
  ];
}

const isMain = process.argv[1] !== undefined && path.resolve(process.argv[1]) === import.meta.filename;
if (isMain) {
  const { values } = parseArgs({
    options: {
      home: { type: 'string' },
      sample: { type: 'string', default: 'day(date) % 4 = 1' },
      trees: { type: 'string', default: '60' },
      replay: { type: 'string', default: '6000' },
      concurrency: { type: 'string', default: '4' },
      executor: { type: 'string', default: 'local' },
      redis: { type: 'string', default: process.env.KILN_REDIS },
      'monitor-interval-ms': { type: 'string', default: '5000' },
      timeout: { type: 'string', default: '600' },
      out: { type: 'string' },
    },
  });
  if (values.executor !== 'local' && values.executor !== 'bullmq') throw new Error('--executor local|bullmq');
  if (values.executor === 'bullmq' && !values.redis)
    throw new Error('--executor bullmq needs --redis redis://… (or KILN_REDIS)');
  const home = values.home ?? mkdtempSync(path.join(os.tmpdir(), 'kiln-ct-'));
  const started = performance.now();
  const result = await runClosedLoop({
    home,
    sample: values.sample!,
    trees: Number(values.trees),
    replay: Number(values.replay),
    concurrency: Number(values.concurrency),
    executor: values.executor,
    ...(values.redis ? { redis: values.redis } : {}),
    monitorIntervalMs: Number(values['monitor-interval-ms']),
    timeoutMs: Number(values.timeout) * 1000,
    log: (l) => process.stdout.write(`${l}\n`),
  });
  process.stdout.write(
    `\n${summaryLines(result).join('\n')}\ntotal ${((performance.now() - started) / 1000).toFixed(1)} s, workspace ${home}\n`,
  );
  if (values.out) writeFileSync(values.out, `${JSON.stringify(result, null, 2)}\n`);
}

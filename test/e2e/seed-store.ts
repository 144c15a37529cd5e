import fs from 'node:fs';
import path from 'node:path';
import { kilnEnv, runKiln } from '../kiln-process.js';

/**
 * A store with something on every dashboard page, made the way a user makes one: the real
 * `kiln` CLI on an embedded KILN_HOME. A validated dataset, two trained GBDT runs in
 * experiment `credit`, both registered as model `credit` under a policy that wants an
 * approval, tuning studies, a deployment with alert rules on its model, and the tokens the e2e test logs in with (alice is an
 * editor, bob an approver). Runs with long metric histories are added later over REST (see
 * seedSweepRuns), since the CLI trains real models only.
 */
export interface SeededStore {
  home: string;
  runIds: { small: string; big: string };
  tokens: { alice: string; bob: string; admin: string };
}

async function kiln(home: string, ...args: string[]): Promise<string> {
  const r = await runKiln(args, kilnEnv({ KILN_USER: 'alice', KILN_HOME: home }), { timeoutMs: 300_000 });
  if (r.code !== 0) throw new Error(`kiln ${args.join(' ')} exited ${r.code}\n${r.stderr}`);
  return r.stdout;
}
const json = async (home: string, ...args: string[]) => JSON.parse(await kiln(home, ...args, '--json'));

/** A learnable binary problem: deterministic pseudo-random rows (LCG), label from a noisy score. */
function writeLoans(file: string, rows: number): void {
  let seed = 12345;
  const rand = () => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed / 2 ** 31;
  };
  const lines = ['amount,income,region,label'];
  for (let i = 0; i < rows; i++) {
    const amount = i % 97 === 0 ? '' : String(Math.round(rand() * 10000));
    const income = Math.round(20000 + rand() * 80000);
    const region = ['north', 'south', 'east', 'west'][Math.floor(rand() * 4)]!;
    const score = Number(amount) / income - 0.05 + (region === 'south' ? 0.05 : 0) + (rand() - 0.5) * 0.08;
    lines.push(`${amount},${income},${region},${score > 0.02 ? 1 : 0}`);
  }
  fs.writeFileSync(file, `${lines.join('\n')}\n`);
}

export async function seedUiStore(dir: string): Promise<SeededStore> {
  const home = path.join(dir, 'home');
  const csv = path.join(dir, 'loans.csv');
  writeLoans(csv, 3000);
  fs.writeFileSync(
    path.join(dir, 'expect.yaml'),
    'expectations:\n  - column: income\n    not_null: true\n  - column: region\n    regex: "[a-z]+"\n',
  );
  await kiln(home, 'data', 'ingest', csv, '--name', 'loans', '--expect', path.join(dir, 'expect.yaml'));
  const spec = (trees: number) => `name: loans-${trees}
experiment: credit
data: { dataset: loans@1 }
features: [amount, income, region]
target: { name: bad, expr: label > 0 }
split: { method: random, seed: 11 }
learner: { name: gbdt, params: { num_iterations: ${trees}, num_leaves: 8, threads: 1 } }
measure: { latency_rows: 50, batch_rows: 500 }
`;
  fs.writeFileSync(path.join(dir, 'small.yaml'), spec(3));
  fs.writeFileSync(path.join(dir, 'big.yaml'), spec(40));
  const small = await json(home, 'train', path.join(dir, 'small.yaml'));
  const big = await json(home, 'train', path.join(dir, 'big.yaml'));
  await json(home, 'models', 'register', 'credit', '--run', small.run_id);
  await json(home, 'models', 'register', 'credit', '--run', big.run_id);
  fs.writeFileSync(
    path.join(dir, 'policy.yaml'),
    `aliases: [champion]
primary: { metric: test.auc, direction: maximize, min_improvement: 0.001 }
require_data_validation: true
approval: { required: true }
`,
  );
  await kiln(home, 'models', 'policy', 'set', 'credit', path.join(dir, 'policy.yaml'));
  await kiln(home, 'auth', 'grant', '--to', 'bob', '--role', 'approver', '--user', 'admin');
  await kiln(
    home,
    'tune',
    'create',
    'branin-demo',
    '--objective',
    'branin',
    '--trials',
    '24',
    '--sampler',
    'tpe',
    '--seed',
    '3',
  );
  await kiln(
    home,
    'tune',
    'create',
    'schaffer-demo',
    '--objective',
    'schaffer',
    '--trials',
    '24',
    '--sampler',
    'nsga2',
    '--seed',
    '5',
    '--direction',
    'minimize',
    'minimize',
  );
  await kiln(home, 'auth', 'grant', '--to', 'alice', '--role', 'editor', '--user', 'admin');
  await kiln(
    home,
    'deploy',
    'set',
    'credit-live',
    '--version',
    'credit/2=90',
    '--version',
    'credit/1=10',
    '--reason',
    'canary',
  );
  fs.writeFileSync(
    path.join(dir, 'alerts.yaml'),
    'version: "2"\nwindow: 24h\nrules:\n  - { name: drift, kind: dataset_drift, share: 0.5 }\n  - { name: quiet, kind: volume_drop, drop: 0.5, window: 1h }\n',
  );
  await kiln(home, 'monitor', 'alerts', 'set', 'credit', path.join(dir, 'alerts.yaml'));
  await kiln(home, 'tune', '--worker', 'branin-demo');
  await kiln(home, 'tune', '--worker', 'schaffer-demo');
  const token = async (user: string, role: string) =>
    (await json(home, 'auth', 'token', 'create', '--user', user, '--role', role)).token as string;
  return {
    home,
    runIds: { small: small.run_id, big: big.run_id },
    tokens: {
      alice: await token('alice', 'editor'),
      bob: await token('bob', 'approver'),
      admin: await token('root', 'admin'),
    },
  };
}

/**
 * Runs with hyper-parameters, tags and long metric histories in experiment `sweep`, over the
 * MLflow REST API of a running server (what an MLflow client logging a sweep would send).
 */
export async function seedSweepRuns(
  url: string,
  token: string,
  opts: { runs: number; steps: number; experiment?: string },
): Promise<string[]> {
  // biome-ignore lint/suspicious/noExplicitAny: MLflow JSON, read a field or two
  const call = async (route: string, body: unknown): Promise<any> => {
    const res = await fetch(`${url}/api/2.0/mlflow/${route}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify(body),
    });
    if (!res.ok) throw new Error(`${route}: ${res.status} ${await res.text()}`);
    return res.json();
  };
  const { experiment_id } = await call('experiments/create', { name: opts.experiment ?? 'sweep' });
  const ids: string[] = [];
  const t0 = Date.UTC(2026, 10, 1);
  for (let r = 0; r < opts.runs; r++) {
    const lr = [0.001, 0.01, 0.1][r % 3]!;
    const depth = 2 + (r % 5);
    const { run } = await call('runs/create', {
      experiment_id,
      run_name: `sweep-${r}`,
      start_time: t0 + r * 60_000,
      tags: [{ key: 'team', value: r % 2 ? 'risk' : 'growth' }],
    });
    const id = run.info.run_id as string;
    ids.push(id);
    await call('runs/log-batch', {
      run_id: id,
      params: [
        { key: 'lr', value: String(lr) },
        { key: 'depth', value: String(depth) },
        { key: 'optimizer', value: r % 2 ? 'adam' : 'sgd' },
      ],
      metrics: [{ key: 'accuracy', value: 0.6 + 0.05 * depth - lr, timestamp: t0 + r * 60_000, step: 0 }],
    });
    for (let s = 0; s < opts.steps; s += 1000) {
      const metrics = [];
      for (let k = s; k < Math.min(opts.steps, s + 1000); k++) {
        // A decaying loss with a spike every 997 steps: downsampling must keep the spikes.
        const loss = (1 / (1 + k * lr * 0.05)) * (1 + 0.1 * depth) + (k % 997 === 500 ? 2 : 0);
        metrics.push({ key: 'loss', value: loss, timestamp: t0 + r * 60_000 + k * 100, step: k });
      }
      await call('runs/log-batch', { run_id: id, metrics });
    }
    await call('runs/update', {
      run_id: id,
      status: 'FINISHED',
      end_time: t0 + r * 60_000 + opts.steps * 100,
    });
  }
  return ids;
}

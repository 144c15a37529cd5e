import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import SQLite from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { kilnEnv, runKiln, runKilnSync } from './kiln-process.js';

/**
 * The governance story of docs/registry.md, end to end through the real `kiln` CLI on one
 * embedded store: ingest validated data, train two versions, register them, set a policy,
 * promote with an approval by someone else (self-approval refused), see the alias history,
 * the model card and lineage, verify the audit chain, then catch an edit made directly in
 * the SQLite file. Also: registrations racing from separate processes on one SQLite file.
 */
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-registry-cli-'));
const home = path.join(dir, 'home');
const env = kilnEnv({ KILN_USER: '', KILN_HOME: home });

function kiln(...args: string[]) {
  return kilnAt(home, ...args);
}
function kilnAt(at: string, ...args: string[]) {
  const r = runKilnSync(args, { ...env, KILN_HOME: at }, { timeoutMs: 300_000 });
  return { status: r.code, stdout: r.stdout, stderr: r.stderr };
}
function ok(...args: string[]) {
  const r = kiln(...args);
  expect(r.status, `kiln ${args.join(' ')}\n${r.stderr}`).toBe(0);
  return r.stdout;
}
const json = (...args: string[]) => JSON.parse(ok(...args, '--json'));

/** A learnable binary problem: deterministic pseudo-random rows (LCG), label from a noisy score. */
function writeLoans(file: string, rows: number): void {
  let seed = 12345;
  const rand = () => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed / 2 ** 31;
  };
  const lines = ['amount,income,region,label'];
  for (let i = 0; i < rows; i++) {
    const amount = Math.round(rand() * 10000);
    const income = Math.round(20000 + rand() * 80000);
    const region = ['north', 'south', 'east', 'west'][Math.floor(rand() * 4)]!;
    const score = amount / income - 0.05 + (region === 'south' ? 0.05 : 0) + (rand() - 0.5) * 0.08;
    lines.push(`${amount},${income},${region},${score > 0.02 ? 1 : 0}`);
  }
  fs.writeFileSync(file, `${lines.join('\n')}\n`);
}

afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('kiln models / audit / auth (CLI, embedded SQLite)', () => {
  it('runs the governance story end to end', () => {
    const csv = path.join(dir, 'loans.csv');
    writeLoans(csv, 3000);
    fs.writeFileSync(
      path.join(dir, 'expect.yaml'),
      'expectations:\n  - column: amount\n    not_null: true\n  - column: region\n    regex: "[a-z]+"\n',
    );
    ok('data', 'ingest', csv, '--name', 'loans', '--expect', path.join(dir, 'expect.yaml'), '--home', home);
    const spec = (trees: number) => `name: loans-${trees}
experiment: credit
data: { dataset: loans@1 }
features: [amount, income, region]
target: { name: bad, expr: label > 0 }
split: { method: random, seed: 11 }
learner: { name: gbdt, params: { num_iterations: ${trees}, num_leaves: 8, threads: 1 } }
measure: { latency_rows: 50, batch_rows: 500 }
`;
    fs.writeFileSync(path.join(dir, 'small.yaml'), spec(2));
    fs.writeFileSync(path.join(dir, 'big.yaml'), spec(60));
    const small = json('train', path.join(dir, 'small.yaml'), '--tracking-uri', home);
    const big = json('train', path.join(dir, 'big.yaml'), '--tracking-uri', home);
    expect(big.metrics['test.auc']).toBeGreaterThan(small.metrics['test.auc'] + 0.002);

    const v1 = json('models', 'register', 'credit', '--run', small.run_id, '--user', 'alice');
    expect(v1).toMatchObject({ name: 'credit', version: '1', run_id: small.run_id, user_id: 'alice' });
    fs.writeFileSync(
      path.join(dir, 'policy.yaml'),
      `aliases: [champion]
primary: { metric: test.auc, direction: maximize, min_improvement: 0.001 }
guards:
  - { metric: model_size_bytes, direction: minimize, max: 50000000 }
require_data_validation: true
approval: { required: true }
`,
    );
    ok('models', 'policy', 'set', 'credit', path.join(dir, 'policy.yaml'), '--user', 'alice');
    ok('auth', 'grant', '--to', 'bob', '--role', 'approver', '--user', 'admin');

    // Alice asks; the gate wants someone else's approval, and alice cannot give it herself.
    const refused = kiln(
      'models',
      'promote',
      'credit',
      '--version',
      '1',
      '--alias',
      'champion',
      '--user',
      'alice',
    );
    expect(refused.status).toBe(2);
    expect(refused.stdout).toContain('REFUSED');
    expect(refused.stderr).toMatch(
      /^kiln: PERMISSION_DENIED: promotion refused by 1 rule\(s\): approval: needs an approval/,
    );
    const self = kiln(
      'models',
      'approve',
      'credit',
      '--version',
      '1',
      '--alias',
      'champion',
      '--user',
      'alice',
    );
    expect(self.status).toBe(2);
    expect(self.stderr).toContain('kiln: PERMISSION_DENIED:');
    expect(self.stderr).not.toMatch(/\n\s+at /);
    ok(
      'models',
      'approve',
      'credit',
      '--version',
      '1',
      '--alias',
      'champion',
      '--user',
      'bob',
      '--comment',
      'looks fine',
    );
    expect(
      ok('models', 'promote', 'credit', '--version', '1', '--alias', 'champion', '--user', 'alice'),
    ).toContain('ACCEPTED');
    const between = Date.now();

    // The better model: registered, approved, promoted; the gate shows the numbers.
    json('models', 'register', 'credit', '--run', big.run_id, '--user', 'alice');
    ok('models', 'approve', 'credit', '--version', '2', '--alias', 'champion', '--user', 'bob');
    const promoted = json(
      'models',
      'promote',
      'credit',
      '--version',
      '2',
      '--alias',
      'champion',
      '--user',
      'alice',
      '--reason',
      'more trees',
    );
    expect(promoted.decision).toBe('accepted');
    expect(promoted.rules.find((r: { rule: string }) => r.rule === 'primary:test.auc')).toMatchObject({
      outcome: 'passed',
      candidate: big.metrics['test.auc'],
      incumbent: small.metrics['test.auc'],
    });
    expect(promoted.rules.find((r: { rule: string }) => r.rule === 'data-validation').outcome).toBe('passed');
    // Moving it back by hand is refused: champion is protected by the policy.
    const byHand = kiln('models', 'alias', 'credit', 'champion', '--version', '1', '--user', 'alice');
    expect(byHand.status).toBe(2);
    expect(byHand.stderr).toContain(
      "kiln: PERMISSION_DENIED: Alias 'champion' of registered model 'credit' is protected",
    );

    const history = json('models', 'history', 'credit@champion');
    expect(
      history.map((e: { from_version: string | null; to_version: string }) => [e.from_version, e.to_version]),
    ).toEqual([
      [null, '1'],
      ['1', '2'],
    ]);
    expect(history[1].reason).toBe('more trees');
    expect(json('models', 'history', 'credit@champion', '--at', String(between)).version).toBe('1');
    expect(ok('models', 'history', 'credit@champion')).toMatch(/1\s+2\s+alice/);

    const card = ok(
      'models',
      'card',
      'credit@champion',
      '--set',
      'owner=risk-team',
      '--set',
      'intended_use=pre-screening',
      '--user',
      'alice',
    );
    expect(card).toContain('# Model card: credit version 2');
    expect(card).toContain('risk-team');
    expect(card).toMatch(/\| auc \| [0-9.]+ \|/);
    expect(card).toContain('- Dataset: loans@1');
    expect(card).toContain('| region | categorical |');
    const lineage = json('models', 'lineage', 'credit@champion');
    expect(lineage).toMatchObject({
      dataset: { name: 'loans', version: 1 },
      run: { run_id: big.run_id },
      aliases: ['champion'],
    });
    expect(
      json('data', 'used-by', 'loans@1').flatMap((u: { model_versions: unknown[] }) => u.model_versions),
    ).toHaveLength(2);
    expect(ok('models', 'ls')).toMatch(/credit\s+2\s+champion=2/);

    const verified = ok('audit', 'verify');
    expect(verified).toMatch(/^audit chain ok: \d+ entries/);
    const exportFile = path.join(dir, 'audit.jsonl');
    ok('audit', 'export', '--out', exportFile);
    const entries = fs
      .readFileSync(exportFile, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    const actions = entries.map((e) => e.action);
    expect(actions).toEqual(
      expect.arrayContaining([
        'role.grant',
        'policy.set',
        'promotion.refused',
        'approval.give',
        'promotion.accepted',
        'alias.set',
        'card.update',
      ]),
    );
    expect(entries.find((e) => e.action === 'approval.give').actor).toBe('bob');

    // Someone edits the record in the database file: verify names the entry and exits 2.
    const promotionSeq = entries.find((e) => e.action === 'promotion.accepted').seq;
    const db = new SQLite(path.join(home, 'kiln.db'));
    db.prepare("update audit_log set actor = 'mallory' where seq = ?").run(promotionSeq);
    db.close();
    const broken = kiln('audit', 'verify');
    expect(broken.status).toBe(2);
    expect(broken.stderr).toContain(`kiln: INVALID_STATE: audit chain broken at entry ${promotionSeq}:`);
    expect(broken.stderr).toContain('edited');
  }, 900_000);

  it('gives registrations racing from separate processes distinct versions (SQLite)', async () => {
    // A store of its own: the story above tampered with its audit log on purpose.
    const raceHome = path.join(dir, 'race');
    expect(
      kilnAt(raceHome, 'models', 'register', 'race', '--source', 's3://bucket/seed', '--user', 'ci').status,
    ).toBe(0);
    const results = await Promise.all(
      Array.from({ length: 4 }, (_, i) =>
        runKiln(['models', 'register', 'race', '--source', `s3://bucket/m${i}`, '--json', '--user', 'ci'], {
          ...env,
          KILN_HOME: raceHome,
        }),
      ),
    );
    expect(
      results.map((r) => r.code),
      results.map((r) => r.stderr).join('\n'),
    ).toEqual([0, 0, 0, 0]);
    const versions = results.map((r) => Number(JSON.parse(r.stdout).version)).sort((a, b) => a - b);
    expect(versions).toEqual([2, 3, 4, 5]);
    const verified = kilnAt(raceHome, 'audit', 'verify');
    expect(verified.stdout).toContain('audit chain ok: 6 entries');
  }, 300_000);

  it('answers bad flags with kiln: CODE: message and exit 2', () => {
    const cases: [string[], string][] = [
      [['models', 'register', 'x'], 'give --run <id>'],
      [
        ['models', 'promote', 'x', '--version', 'one', '--alias', 'champion'],
        '--version must be a version number',
      ],
      [['models', 'history', 'x/3'], 'history takes NAME or NAME@ALIAS'],
      [['models', 'history', 'race@champion', '--at', 'yesterday'], '--at must be an ISO time'],
      [['models', 'show', 'ghost'], 'RESOURCE_DOES_NOT_EXIST'],
      [['models', 'policy', 'set', 'race', path.join(dir, 'nope.yaml')], 'cannot read policy file'],
      [['auth', 'grant', '--to', 'x', '--role', 'king'], "Invalid value 'king' for parameter '--role'"],
      [['gc', '--older-than', 'soon'], '--older-than must look like 30d'],
      [['data', 'used-by', 'loans'], 'dataset must be NAME@VERSION'],
      [['models', 'import', path.join(dir, 'missing.onnx'), '--name', 'imp'], 'missing.onnx: no such file'],
    ];
    fs.writeFileSync(path.join(dir, 'bad-policy.yaml'), 'primary:\n  metric: test.auc\n  direction: up\n');
    cases.push([
      ['models', 'policy', 'set', 'race', path.join(dir, 'bad-policy.yaml')],
      `${path.join(dir, 'bad-policy.yaml')}: primary.direction`,
    ]);
    for (const [args, text] of cases) {
      const r = kiln(...args);
      expect(r.status, args.join(' ')).toBe(2);
      expect(r.stderr, args.join(' ')).toMatch(/^kiln: [A-Z_]+: /);
      expect(r.stderr, args.join(' ')).toContain(text);
    }
  }, 600_000);
});

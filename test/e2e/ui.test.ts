import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { build } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type KilnServerProcess, kilnEnv, REPO_ROOT, startKilnServer } from '../kiln-process.js';
import { type SeededStore, seedSweepRuns, seedUiStore } from './seed-store.js';

/**
 * The web UI as a user meets it: a fresh build of ui/ served by a real `kiln server --auth`
 * on a store seeded through the real CLI, driven in Debian's Chromium. Every page is opened by
 * its deep link at laptop width, and the user stories are walked: sign in with a token, filter
 * runs with MLflow's search syntax, navigate the runs table by keyboard, compare two runs,
 * read a run's charts, artifacts and evaluation, promote a model (refused by the gate, then
 * approved by an approver, then accepted), and read the audit log.
 *
 * Screenshots of every page go to SHOTS (printed at the end) for a person to look at.
 */
const CHROMIUM = '/usr/bin/chromium';
const SWEEP_RUNS = 8;
const SWEEP_STEPS = 3000;
const SHOTS = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-ui-e2e-shots-'));

let dir: string;
let seeded: SeededStore;
let server: KilnServerProcess;
let context: BrowserContext;
let page: Page;
let sweepExperiment: string;
let sweepIds: string[];
const pageErrors: string[] = [];

async function shot(name: string) {
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: false });
}

async function signIn(token: string) {
  await page.goto(`${server.url}/login`);
  await page.getByLabel('token').fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(/\/experiments$/);
}

async function signOut() {
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.waitForURL(/\/login/);
}

/** The page fits the window: nothing but the runs grid's own box scrolls sideways. */
async function expectNoHorizontalOverflow(where: string) {
  const overflow = await page.evaluate<number>('document.documentElement.scrollWidth - window.innerWidth');
  expect(overflow, `${where} overflows the window by ${overflow}px`).toBeLessThanOrEqual(0);
}

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-ui-e2e-'));
  // The server serves dist/ui: build the sources under test, not whatever was built last.
  await build({ configFile: path.join(REPO_ROOT, 'ui/vite.config.ts'), logLevel: 'warn' });
  seeded = await seedUiStore(dir);
  server = await startKilnServer(
    ['--home', seeded.home, '--port', '0', '--auth'],
    kilnEnv({ KILN_HOME: seeded.home }),
  );
  sweepIds = await seedSweepRuns(server.url, seeded.tokens.alice, { runs: SWEEP_RUNS, steps: SWEEP_STEPS });
  const res = await fetch(`${server.url}/api/2.0/mlflow/experiments/get-by-name?experiment_name=sweep`, {
    headers: { authorization: `Bearer ${seeded.tokens.alice}` },
  });
  sweepExperiment = ((await res.json()) as { experiment: { experiment_id: string } }).experiment
    .experiment_id;
  context = await chromium.launchPersistentContext(path.join(dir, 'chromium-profile'), {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1280, height: 720 },
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  page = context.pages()[0] ?? (await context.newPage());
  page.on('pageerror', (e) => pageErrors.push(e.message));
}, 300_000);

afterAll(async () => {
  await context?.close();
  await server?.stop();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
  console.log(`kiln UI e2e screenshots: ${SHOTS}`);
});

describe('kiln web UI in Chromium', () => {
  it('asks for a token on a deep link, then lists the experiments', async () => {
    await page.goto(`${server.url}/experiments`);
    await page.waitForURL(/\/login\?next=/);
    await shot('00-login');
    // A wrong token is refused with the server's words and the user stays on the page.
    await page.getByLabel('token').fill('kiln_0000000000000000_nope');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect.poll(() => page.getByRole('alert').textContent()).toContain('UNAUTHENTICATED');
    await signIn(seeded.tokens.alice);
    const table = page.getByRole('table', { name: 'experiments' });
    await table.getByRole('link', { name: 'credit' }).waitFor();
    await table.getByRole('link', { name: 'sweep' }).waitFor();
    await expectNoHorizontalOverflow('experiments');
    await shot('01-experiments');
  });

  it('filters runs with the MLflow search syntax, sorts on the server, and says when nothing matches', async () => {
    await page.goto(`${server.url}/experiments/${sweepExperiment}`);
    const grid = page.getByTestId('runs-grid');
    await grid.getByRole('row').nth(SWEEP_RUNS).waitFor();
    expect(await page.getByTestId('runs-count').textContent()).toBe(`${SWEEP_RUNS} runs`);
    await shot('02-runs');

    // The same rule the seeding used: adam for odd runs; accuracy = 0.6 + 0.05·depth − lr.
    const expected = [...Array(SWEEP_RUNS).keys()]
      .filter((r) => r % 2 === 1 && 0.6 + 0.05 * (2 + (r % 5)) - [0.001, 0.01, 0.1][r % 3]! > 0.7)
      .map((r) => `sweep-${r}`);
    expect(expected.length).toBeGreaterThan(1);
    await page.getByLabel('filter runs').fill("params.optimizer = 'adam' and metrics.accuracy > 0.7");
    await page.getByLabel('filter runs').press('Enter');
    await expect.poll(() => page.getByTestId('runs-count').textContent()).toBe(`${expected.length} runs`);
    expect(page.url()).toContain('filter=');
    const names = await grid.locator('.vt-row a').allTextContents();
    expect(names.sort()).toEqual(expected.sort());
    // Server-side sort by the accuracy column, descending.
    await page.getByRole('columnheader', { name: /accuracy/ }).click();
    await expect.poll(() => page.url()).toContain('order=metrics%3Aaccuracy%3Adesc');
    await expect
      .poll(async () => (await grid.locator('.vt-row a').allTextContents()).join(','))
      .toBe(
        [...expected]
          .sort((a, b) => {
            const acc = (n: string) => {
              const r = Number(n.split('-')[1]);
              return 0.6 + 0.05 * (2 + (r % 5)) - [0.001, 0.01, 0.1][r % 3]!;
            };
            return acc(b) - acc(a);
          })
          .join(','),
      );
    await shot('03-runs-filtered');

    await page.getByLabel('filter runs').fill('metrics.accuracy >>> 1');
    await page.getByLabel('filter runs').press('Enter');
    await expect.poll(() => page.getByRole('alert').textContent()).toContain('INVALID_PARAMETER_VALUE');
    await page.getByLabel('filter runs').fill("params.optimizer = 'nothing-like-this'");
    await page.getByLabel('filter runs').press('Enter');
    await page.getByText('No run matches this filter.').waitFor();
  });

  it('moves through the runs by keyboard, selects two and compares them', async () => {
    await page.goto(`${server.url}/experiments/${sweepExperiment}`);
    const grid = page.getByTestId('runs-grid');
    await grid.getByRole('row').nth(SWEEP_RUNS).waitFor();
    await grid.focus();
    await page.keyboard.press(' '); // select the first row
    await page.keyboard.press('ArrowDown');
    await page.keyboard.press(' '); // and the second
    expect(await grid.locator('.vt-row.sel').count()).toBe(2);
    expect(await grid.locator('.vt-row.cursor a').textContent()).toBe('sweep-6');
    await page.getByRole('button', { name: 'Compare (2)' }).click();
    await page.waitForURL(/\/compare\?runs=/);
    await page.getByTestId('compare-chart-loss').locator('canvas').waitFor();
    await expect
      .poll(() => page.getByTestId('compare-chart-loss').locator('[data-drawn-ms]').count())
      .toBe(1);
    const diff = page.getByTestId('diff-table');
    const lrRow = diff.locator('tr', { hasText: 'params.lr' });
    await lrRow.waitFor();
    // Runs 7 and 6 have different lr (0.01, 0.001) and depth: both rows differ.
    expect(await lrRow.getAttribute('class')).toContain('differs');
    expect(await page.getByTestId('parallel-coordinates').locator('polyline').count()).toBe(2);
    await expectNoHorizontalOverflow('compare');
    await shot('04-compare');
  });

  it('draws a run’s 3,000-step history with its spikes, and previews artifacts and the evaluation', async () => {
    await page.goto(`${server.url}/runs/${sweepIds[0]}/charts`);
    const chart = page.getByTestId('chart-loss');
    await chart.locator('[data-drawn-ms]').waitFor();
    expect(await chart.locator('.title').textContent()).toContain(`${SWEEP_STEPS.toLocaleString()} points`);
    await shot('05-run-charts');
    await page.getByLabel('x axis').selectOption('relative');
    await chart.locator('[data-drawn-ms]').waitFor();
    expect(await page.getByTestId('chart-loss').textContent()).toContain('seconds since start');

    const trained = seeded.runIds.small;
    await page.goto(`${server.url}/runs/${trained}`);
    await page.getByRole('table', { name: 'metrics' }).getByText('test.auc').waitFor();
    await page.getByRole('table', { name: 'params' }).getByText('num_iterations').waitFor();
    await shot('06-run-overview');

    await page.goto(`${server.url}/runs/${trained}/artifacts?path=evaluation%2Freport.html`);
    const frame = page.getByTestId('html-preview');
    await frame.waitFor();
    // Sandboxed with nothing allowed: no scripts, no same-origin access to the token.
    expect(await frame.getAttribute('sandbox')).toBe('');
    expect(await frame.getAttribute('srcdoc')).toContain('<html');
    await shot('07-artifact-html');
    await page.getByRole('treeitem', { name: /feature_importance\.json/ }).click();
    await expect.poll(() => page.getByTestId('text-preview').textContent()).toContain('"gain"');
    await page.getByRole('treeitem', { name: /model/ }).click();
    await page.getByRole('treeitem', { name: /signature\.json/ }).click();
    await expect.poll(() => page.getByTestId('text-preview').textContent()).toContain('"inputs"');

    await page.goto(`${server.url}/runs/${trained}/evaluation`);
    await page.getByTestId('roc-chart').locator('[data-drawn-ms]').waitFor();
    await page.getByRole('list', { name: 'feature importance' }).getByText('amount').waitFor();
    await page.getByRole('table', { name: 'confusion matrix' }).waitFor();
    await expectNoHorizontalOverflow('evaluation');
    await shot('08-run-evaluation');
  });

  it('promotes through the gate: refused without approval, approved by bob, accepted', async () => {
    await page.goto(`${server.url}/models/credit`);
    await page.getByTestId('lineage').getByRole('link', { name: 'loans@1' }).waitFor();
    await page.getByTestId('lineage').getByRole('link', { name: 'credit-live' }).waitFor();
    await page.getByRole('table', { name: 'signature inputs' }).getByText('region').waitFor();
    await shot('09-model');

    await page.goto(`${server.url}/models/credit/promote`);
    await page.getByLabel('version').selectOption('1');
    await page.getByRole('button', { name: 'Promote v1 to @champion' }).click();
    const decision = page.getByTestId('promotion-decision');
    await decision.waitFor();
    expect(await decision.textContent()).toContain('REFUSED');
    expect(await decision.locator('tr', { hasText: 'approval' }).textContent()).toMatch(
      /failed.*needs an approval/,
    );
    await shot('10-promote-refused');
    // Alice is an editor: the approver route refuses her, and the page shows why.
    await page.getByRole('button', { name: 'Approve v1 for @champion' }).click();
    await expect.poll(() => page.getByRole('alert').first().textContent()).toContain('PERMISSION_DENIED');

    await signOut();
    await signIn(seeded.tokens.bob);
    await page.goto(`${server.url}/models/credit/promote`);
    await page.getByLabel('version').selectOption('1');
    await page.getByLabel('reason').fill('checked the card');
    await page.getByRole('button', { name: 'Approve v1 for @champion' }).click();
    await page.getByText('Approval recorded for v1 → @champion.').waitFor();

    await signOut();
    await signIn(seeded.tokens.alice);
    await page.goto(`${server.url}/models/credit/promote`);
    await page.getByLabel('version').selectOption('1');
    await page.getByRole('button', { name: 'Promote v1 to @champion' }).click();
    await expect.poll(() => page.getByTestId('promotion-decision').textContent()).toContain('ACCEPTED');
    await shot('11-promote-accepted');

    await page.goto(`${server.url}/models/credit/history`);
    const history = page.getByRole('table', { name: 'history of champion' });
    await history.waitFor();
    expect(await history.locator('tbody tr').first().textContent()).toContain('alice');
    const promotions = page.getByRole('table', { name: 'promotions' });
    expect(await promotions.locator('tbody tr').count()).toBe(2);
    await shot('12-alias-history');

    // Nothing served yet: the outcomes tab says so rather than showing zeros.
    await page.goto(`${server.url}/models/credit/outcomes`);
    await page.getByText('No version of credit served traffic in the last 7d').waitFor();
  });

  it('shows studies with their history, best so far and Pareto front', async () => {
    await page.goto(`${server.url}/studies`);
    await page.getByRole('link', { name: 'branin-demo' }).click();
    await page.getByTestId('optimisation-history').locator('[data-drawn-ms]').waitFor();
    await page.getByText('complete 24').waitFor();
    await page.getByRole('list', { name: 'parameter importance' }).getByText('x1').waitFor();
    await shot('13-study');
    await page.goto(`${server.url}/studies`);
    await page.getByRole('link', { name: 'schaffer-demo' }).click();
    await page.getByTestId('pareto-front').locator('[data-drawn-ms]').waitFor();
    expect(
      await page
        .getByRole('table', { name: 'trials' })
        .getByText(/Pareto/)
        .count(),
    ).toBeGreaterThan(0);
    await expectNoHorizontalOverflow('study');
    await shot('14-study-pareto');
  });

  it('shows a dataset’s versions, schema, validation and profile', async () => {
    await page.goto(`${server.url}/datasets`);
    await page.getByRole('link', { name: 'loans' }).click();
    await page.getByRole('table', { name: 'schema' }).getByText('region').waitFor();
    await page.getByText('PASSED', { exact: true }).waitFor();
    const amount = page.getByTestId('profile-amount');
    await amount.waitFor();
    // Every 97th row of the seeded CSV has no amount.
    expect(await amount.textContent()).toContain(`${Math.ceil(3000 / 97)} missing`);
    await page.getByRole('list', { name: 'top categories of region' }).getByText('north').waitFor();
    await shot('15-dataset');
  });

  it('shows a deployment’s traffic split, drift report and alert rules; silences a rule and checks now', async () => {
    await page.goto(`${server.url}/deployments`);
    await page.getByRole('link', { name: 'credit-live' }).click();
    const split = page.getByTestId('traffic-split');
    await split.waitFor();
    expect(await split.textContent()).toContain('credit/2 90%');
    // Nothing was served yet: the drift report has an empty window and no feature to test.
    await expect
      .poll(() => page.getByTestId('drift-panel').textContent())
      .toContain('No dataset drift: 0 of 0 features drifted');
    expect(await page.getByRole('table', { name: 'feature drift' }).textContent()).toContain(
      'no values in the window',
    );
    const alerts = page.getByTestId('alerts-credit');
    const rules = alerts.getByRole('table', { name: 'alert rules of credit' });
    await rules.getByText('dataset_drift').waitFor();
    await rules
      .locator('tr', { hasText: 'dataset_drift' })
      .getByRole('button', { name: 'Silence 1h' })
      .click();
    await alerts.getByText('Silenced drift for 1 hour.').waitFor();
    await alerts.getByRole('button', { name: 'Check now' }).click();
    const outcome = alerts.getByRole('table', { name: 'check outcome' });
    await outcome.waitFor();
    expect(await outcome.locator('tbody tr').allTextContents()).toEqual([
      expect.stringMatching(/^drift.*no_data.*none/),
      expect.stringMatching(/^quiet.*no_data.*none/),
    ]);
    await alerts.getByText('No alert has fired for credit.').waitFor();
    await shot('16-deployment');
  });

  it('shows the audit log with its verified chain, filtered by actor and by action prefix', async () => {
    await page.goto(`${server.url}/audit?actor=bob`);
    await expect.poll(() => page.getByTestId('audit-verify').textContent()).toContain('Hash chain verified');
    const rows = page.getByRole('table', { name: 'audit entries' }).locator('tbody tr');
    await rows.first().waitFor();
    const actions = await rows.locator('td:nth-child(4)').allTextContents();
    expect(actions).toContain('approval.give');
    expect(new Set(await rows.locator('td:nth-child(3)').allTextContents())).toEqual(new Set(['bob']));
    await page.getByLabel('actor').fill('');
    await page.getByLabel('action').fill('promotion.');
    await page.getByRole('button', { name: 'Filter' }).click();
    await expect.poll(() => page.url()).toContain('action=promotion.');
    await expect
      .poll(async () =>
        (await rows.locator('td:nth-child(4)').allTextContents()).every((a) => a.startsWith('promotion.')),
      )
      .toBe(true);
    await shot('17-audit');
  });

  it('switches to the dark theme and keeps it across pages', async () => {
    await page.goto(`${server.url}/experiments/${sweepExperiment}`);
    await page.getByRole('button', { name: 'toggle dark theme' }).click();
    expect(await page.evaluate<string>('document.documentElement.dataset.theme')).toBe('dark');
    await page.getByTestId('runs-grid').getByRole('row').nth(SWEEP_RUNS).waitFor();
    await shot('18-runs-dark');
    await page.goto(`${server.url}/compare?runs=${sweepIds.slice(0, 4).join(',')}`);
    expect(await page.evaluate<string>('document.documentElement.dataset.theme')).toBe('dark');
    await page.getByTestId('compare-chart-loss').locator('[data-drawn-ms]').waitFor();
    await shot('19-compare-dark');
    expect(pageErrors).toEqual([]);
  });
});

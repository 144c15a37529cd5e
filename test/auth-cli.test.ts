import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kilnEnv, runKiln } from './kiln-process.js';

/**
 * The auth story as a user runs it: `kiln auth token create` against the store, `kiln server
 * --auth` in its own process on loopback, and kiln's CLI (a remote workspace) and plain HTTP
 * clients authenticating as MLflow's do: Bearer from KILN_TOKEN or MLFLOW_TRACKING_TOKEN,
 * HTTP Basic from MLFLOW_TRACKING_USERNAME / _PASSWORD. Then revocation, and what binding a
 * non-loopback address does with and without --insecure.
 */
const ROOT = path.resolve(import.meta.dirname, '..');
const TSX = path.join(ROOT, 'node_modules', '.bin', 'tsx');
const MAIN = path.join(ROOT, 'src/cli/main.ts');

const kiln = (cwd: string, args: string[], env: NodeJS.ProcessEnv = {}) =>
  runKiln(args, kilnEnv(env), { cwd });

/** Starts `kiln server` and resolves with its URL once it prints it (and its stderr so far). */
function startServer(
  cwd: string,
  args: string[],
): Promise<{ child: ChildProcess; url: string; line: string; stderr: () => string }> {
  const child = spawn(TSX, [MAIN, 'server', '--port', '0', ...args], { cwd, env: kilnEnv() });
  let err = '';
  child.stderr!.on('data', (d) => {
    err += d;
  });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d) => {
      out += d;
      const m = /kiln server listening on (http:\/\/\S+):(\d+)(.*)\n/.exec(out);
      if (m) resolve({ child, url: `http://127.0.0.1:${m[2]}`, line: m[0], stderr: () => err });
    });
    child.on('exit', (code) => reject(new Error(`kiln server exited ${code}: ${err}`)));
  });
}

function stop(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}

describe('kiln auth token + kiln server --auth (CLI, real HTTP on loopback)', () => {
  let home: string;
  let server: Awaited<ReturnType<typeof startServer>>;
  let adminToken: string;
  let adminId: string;

  beforeAll(async () => {
    home = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-auth-cli-'));
    const created = await kiln(
      home,
      [
        'auth',
        'token',
        'create',
        '--user',
        'alice',
        '--role',
        'admin',
        '--expires',
        '30d',
        '--json',
        '--home',
        home,
      ],
      { KILN_USER: 'root' },
    );
    expect(created.code, created.stderr).toBe(0);
    const json = JSON.parse(created.stdout);
    adminToken = json.token;
    adminId = json.token_id;
    expect(json).toMatchObject({ user: 'alice', role: 'admin', scope: '*', created_by: 'root' });
    server = await startServer(home, ['--auth', '--home', home]);
  }, 120_000);

  afterAll(async () => {
    if (server) await stop(server.child);
    fs.rmSync(home, { recursive: true, force: true });
  });

  it('prints the token once and lists tokens without it', async () => {
    const table = await kiln(home, ['auth', 'token', 'ls', '--home', home]);
    expect(table.code, table.stderr).toBe(0);
    expect(table.stdout).toContain(adminId);
    expect(table.stdout).toContain('active');
    expect(table.stdout).not.toContain(adminToken.slice(22));
    const json = await kiln(home, ['auth', 'token', 'ls', '--json', '--home', home]);
    expect(json.stdout).not.toContain(adminToken.slice(22));
    expect(server.line).toContain('(auth on)');
  });

  it('answers 401 in MLflow shape without a token, and serves a Bearer or Basic token', async () => {
    const url = `${server.url}/api/2.0/mlflow/experiments/search?max_results=5`;
    const none = await fetch(url);
    expect(none.status).toBe(401);
    const body = (await none.json()) as Record<string, unknown>;
    expect(Object.keys(body).sort()).toEqual(['error_code', 'message']);
    expect(body.error_code).toBe('UNAUTHENTICATED');
    expect((await fetch(`${server.url}/health`)).status).toBe(200);
    const bearer = await fetch(url, { headers: { authorization: `Bearer ${adminToken}` } });
    expect(bearer.status).toBe(200);
    const basic = await fetch(url, {
      headers: { authorization: `Basic ${Buffer.from(`alice:${adminToken}`).toString('base64')}` },
    });
    expect(basic.status).toBe(200);
  });

  it("lets kiln's CLI reach the server with KILN_TOKEN, MLFLOW_TRACKING_TOKEN or MLflow's Basic variables", async () => {
    const remote = { KILN_TRACKING_URI: server.url };
    const refused = await kiln(home, ['experiments', 'create', 'nope'], remote);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain('UNAUTHENTICATED');
    const made = await kiln(home, ['experiments', 'create', 'from-cli'], {
      ...remote,
      KILN_TOKEN: adminToken,
    });
    expect(made.code, made.stderr).toBe(0);
    const listed = await kiln(home, ['experiments', 'ls', '--json'], {
      ...remote,
      MLFLOW_TRACKING_TOKEN: adminToken,
    });
    expect(listed.code, listed.stderr).toBe(0);
    expect(listed.stdout).toContain('from-cli');
    const basic = await kiln(home, ['experiments', 'ls', '--json'], {
      ...remote,
      MLFLOW_TRACKING_USERNAME: 'alice',
      MLFLOW_TRACKING_PASSWORD: adminToken,
    });
    expect(basic.code, basic.stderr).toBe(0);
    // The audit log names the token's user, not the CLI's OS user.
    const audit = await kiln(home, ['audit', 'export', '--home', home]);
    const entries = audit.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(entries.find((e) => e.action === 'experiment.create')).toMatchObject({ actor: 'alice' });
    expect(entries.find((e) => e.action === 'token.create')).toMatchObject({ actor: 'root' });
    const verify = await kiln(home, ['audit', 'verify', '--home', home]);
    expect(verify.code, verify.stderr).toBe(0);
  });

  it('refuses a revoked token at once', async () => {
    const viewer = JSON.parse(
      (
        await kiln(home, [
          'auth',
          'token',
          'create',
          '--user',
          'bob',
          '--role',
          'viewer',
          '--json',
          '--home',
          home,
        ])
      ).stdout,
    );
    const url = `${server.url}/api/2.0/mlflow/experiments/search?max_results=5`;
    const headers = { authorization: `Bearer ${viewer.token}` };
    expect((await fetch(url, { headers })).status).toBe(200);
    const create = await fetch(`${server.url}/api/2.0/mlflow/experiments/create`, {
      method: 'POST',
      headers: { ...headers, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'viewer-cannot' }),
    });
    expect(create.status).toBe(403);
    expect(((await create.json()) as { error_code: string }).error_code).toBe('PERMISSION_DENIED');
    const revoked = await kiln(home, ['auth', 'token', 'revoke', viewer.token_id, '--home', home]);
    expect(revoked.code, revoked.stderr).toBe(0);
    const after = await fetch(url, { headers });
    expect(after.status).toBe(401);
    expect(((await after.json()) as { message: string }).message).toContain('revoked');
    const bad = await kiln(home, [
      'auth',
      'token',
      'create',
      '--user',
      'x',
      '--role',
      'viewer',
      '--scope',
      'team:a',
      '--home',
      home,
    ]);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain("'scope'");
  });

  it('turns auth on for a non-loopback --host, and off only with --insecure and a warning', async () => {
    const open = await startServer(home, ['--host', '0.0.0.0', '--home', home]);
    try {
      expect(open.line).toContain('(auth on)');
      expect((await fetch(`${open.url}/api/2.0/mlflow/experiments/search`)).status).toBe(401);
    } finally {
      await stop(open.child);
    }
    const insecure = await startServer(home, ['--host', '0.0.0.0', '--insecure', '--home', home]);
    try {
      expect(insecure.line).not.toContain('(auth on)');
      expect(insecure.stderr()).toContain('WARNING: --insecure');
      expect((await fetch(`${insecure.url}/api/2.0/mlflow/experiments/search`)).status).toBe(200);
    } finally {
      await stop(insecure.child);
    }
    const both = await kiln(home, ['server', '--auth', '--insecure', '--port', '0', '--home', home]);
    expect(both.code).not.toBe(0);
    expect(both.stderr).toContain('contradict');
  }, 120_000);
});

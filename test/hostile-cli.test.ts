import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type KilnResult, kilnEnv, runKiln } from './kiln-process.js';

/**
 * Issue 11, Medium 9 and Low 11/13, as a user meets them: `kiln` as a child process. Every error
 * exits 2 with `kiln: CODE: message` naming the flag the user gave, never a stack trace, never
 * an environment variable the user did not set; data from a file cannot drive the terminal.
 */
const home = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-hostile-cli-'));

async function kiln(...args: string[]): Promise<KilnResult> {
  const r = await runKiln(args, kilnEnv({ KILN_HOME: home }), { timeoutMs: 60_000 });
  return { ...r, stderr: stripWarnings(r.stderr) };
}

function stripWarnings(stderr: string): string {
  return stderr
    .split('\n')
    .filter((l) => !/FastifyDeprecation|trace-warnings|^$/.test(l))
    .join('\n');
}

function expectUsageError(r: { code: number | null; stderr: string }, message: RegExp) {
  expect(r.code, r.stderr).toBe(2);
  expect(r.stderr).toMatch(/^kiln: [A-Z_]+: /);
  expect(r.stderr).toMatch(message);
  expect(r.stderr).not.toMatch(/\n\s+at /);
  expect(r.stderr.trim().split('\n')).toHaveLength(1);
}

let busy: net.Server;
let busyPort: number;
beforeAll(async () => {
  busy = net.createServer();
  await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
  busyPort = (busy.address() as net.AddressInfo).port;
  fs.writeFileSync(
    path.join(home, 'evil.csv'),
    'name,when\n"\u001b]0;pwned\u0007\u001b[2Jx",2001-01-05\nok,2001-02-01\n',
  );
});
afterAll(() => {
  busy.close();
  fs.rmSync(home, { recursive: true, force: true });
});

describe('kiln CLI errors', { timeout: 120_000 }, () => {
  it('server start errors name the flag the user gave', async () => {
    expectUsageError(
      await kiln('server', '--port', '99999'),
      /--port must be a whole number from 0 to 65535.*got '99999'/,
    );
    expectUsageError(await kiln('server', '--port', 'abc'), /--port must be a whole number .* got 'abc'/);
    const inUse = await kiln('server', '--port', String(busyPort));
    expectUsageError(
      inUse,
      new RegExp(`INVALID_STATE: --port ${busyPort}: 127.0.0.1:${busyPort} is already in use`),
    );
    expect(inUse.stderr).not.toContain('KILN_PORT');
    expectUsageError(
      await kiln('server', '--host', 'no-such-host.invalid', '--port', '0'),
      /--host no-such-host.invalid: no such host name/,
    );
  });

  it('commander usage errors are kiln errors too, exit 2', async () => {
    expectUsageError(
      await kiln('runs', 'ls', '--bogus'),
      /^kiln: INVALID_PARAMETER_VALUE: unknown option '--bogus'/,
    );
    expectUsageError(await kiln('nosuchcommand'), /unknown command 'nosuchcommand'/);
    expect((await kiln('--version')).code).toBe(0);
  });

  it('data head checks -n, and escapes control characters from the data', async () => {
    const ingest = await kiln('data', 'ingest', path.join(home, 'evil.csv'), '--name', 'evil');
    expect(ingest.code, ingest.stderr).toBe(0);
    expectUsageError(
      await kiln('data', 'head', 'evil', '-n', 'abc'),
      /-n\/--rows must be a whole number from 0 to 10000, got 'abc'/,
    );
    expectUsageError(await kiln('data', 'head', 'evil', '-n', '-1'), /-n\/--rows must be a whole number/);
    const head = await kiln('data', 'head', 'evil');
    expect(head.code, head.stderr).toBe(0);
    expect(head.stdout.includes('\u001b') || head.stdout.includes('\u0007')).toBe(false);
    expect(head.stdout).toContain('\\x1b]0;pwned\\x07\\x1b[2Jx');
    const split = await kiln(
      'data',
      'split',
      'evil',
      '--method',
      'time',
      '--column',
      'when',
      '--cutoff',
      'notadate',
    );
    expectUsageError(
      split,
      /split: cutoff 'notadate' is not a date or timestamp \(column 'when' holds datetimes/,
    );
    expect(split.stderr).not.toContain(home);
  });
});

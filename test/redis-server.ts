import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

/**
 * A real Redis (Debian's redis-server, which .ci/run installs) for the queue tests: started on
 * a free loopback port with its data in a temporary folder, stopped and removed after. The
 * append-only file is on (fsync always), so `restart()` brings the queue back as it was, as a
 * production Redis with persistence does; the tests need their own server for that, so
 * KILN_TEST_REDIS (CI's shared one) is not used here.
 */
export interface TestRedis {
  url: string;
  port: number;
  /** Shuts the server down (SHUTDOWN, the AOF written), waits `downMs`, starts it again on the same port and data. */
  restart(downMs?: number): Promise<void>;
  /** Closes every client connection (CLIENT KILL TYPE normal): each client must reconnect. */
  dropConnections(): Promise<number>;
  cli(...args: string[]): string;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

export async function startRedis(): Promise<TestRedis> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kiln-redis-'));
  const port = await freePort();
  let child: ChildProcess | undefined;
  const launch = async () => {
    child = spawn(
      'redis-server',
      [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--dir',
        dir,
        '--save',
        '',
        '--appendonly',
        'yes',
        '--appendfsync',
        'always',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`redis-server did not start: ${out}`)), 15_000);
      child!.stdout!.on('data', (d) => {
        out += d;
        if (/Ready to accept connections/.test(out)) {
          clearTimeout(timer);
          resolve();
        }
      });
      child!.on('error', (e) => {
        clearTimeout(timer);
        reject(new Error(`cannot start redis-server (Debian package redis-server): ${e.message}`));
      });
      child!.on('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`redis-server exited with ${code}: ${out}`));
      });
    });
  };
  const halt = async () => {
    const c = child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise((r) => c.once('exit', r));
    c.kill('SIGTERM'); // redis-server's SIGTERM is a SHUTDOWN: the AOF is flushed first
    await exited;
  };
  const cli = (...args: string[]) => {
    const r = spawnSync('redis-cli', ['-p', String(port), ...args], { encoding: 'utf8' });
    return r.stdout.trim();
  };
  await launch();
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    cli,
    async restart(downMs = 500) {
      await halt();
      await new Promise((r) => setTimeout(r, downMs));
      await launch();
    },
    async dropConnections() {
      return Number(cli('CLIENT', 'KILL', 'TYPE', 'normal'));
    },
    async stop() {
      await halt();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

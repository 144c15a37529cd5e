import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { S3Settings } from '../src/config.js';

/**
 * A real S3-compatible server (s3rver from npm) in a child process on a loopback port, with its
 * objects in a temporary folder; the client under test is the real @aws-sdk/client-s3. Chosen
 * over Debian's Ceph radosgw, which needs a monitor and an object-storage daemon besides the
 * gateway (too heavy to start per test file on 2 cores); s3rver installs with `npm ci`,
 * starts in well under a second and speaks the parts kiln uses (PUT, multipart, ranged GET,
 * ListObjectsV2 with continuation, DeleteObjects, HEAD).
 */
export interface S3TestServer {
  endpoint: string;
  settings: S3Settings;
  /** The environment a kiln child process needs to use this server. */
  env: Record<string, string>;
  stop(): Promise<void>;
}

export async function startS3Server(buckets: string[]): Promise<S3TestServer> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-s3rver-'));
  const main = path.join(import.meta.dirname, 'fixtures', 's3rver-main.mjs');
  const child: ChildProcess = spawn(process.execPath, ['--openssl-legacy-provider', main, dir, ...buckets], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (d) => {
    stderr += d;
  });
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (d) => {
      out += d;
      const line = out.split('\n')[0];
      if (out.includes('\n')) resolve((JSON.parse(line!) as { port: number }).port);
    });
    child.once('exit', (code) => reject(new Error(`s3rver exited with ${code}: ${stderr}`)));
  });
  const endpoint = `http://127.0.0.1:${port}`;
  // s3rver accepts any key pair whose id is S3RVER; the SDK needs some credentials to sign.
  process.env.AWS_ACCESS_KEY_ID ??= 'S3RVER';
  process.env.AWS_SECRET_ACCESS_KEY ??= 'S3RVER';
  return {
    endpoint,
    settings: { endpoint, region: 'us-east-1', forcePathStyle: true },
    env: {
      KILN_S3_ENDPOINT: endpoint,
      AWS_ACCESS_KEY_ID: 'S3RVER',
      AWS_SECRET_ACCESS_KEY: 'S3RVER',
      AWS_REGION: 'us-east-1',
    },
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await exited;
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Artifact store benchmark: `npm run bench:artifacts [-- --json] [--mib 1024] [--repeats 2]`.
 *
 * Streams one artifact of --mib MiB (default 1 GiB, generated on the fly, never held whole)
 * into and back out of (1) the local folder store and (2) the S3 store against an
 * S3-compatible server on loopback (s3rver, test/s3-server.ts, in its own process), and
 * reports MB/s each way, the ratio S3/local, and the benchmark process's peak growth of
 * ArrayBuffer memory (where Node keeps Buffer bytes) — the bound the S3 store promises.
 *
 * What this measures and what it does not: the S3 figure includes s3rver's own work (a Node
 * server writing files, on the same 2 cores), so it is the client's overhead plus a slow
 * server, not what AWS S3 or MinIO over a network would give.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import type { ArtifactStore } from '../src/artifacts/index.js';
import { LocalArtifactStore, S3ArtifactStore } from '../src/artifacts/index.js';
import { startS3Server } from '../test/s3-server.js';

const args = process.argv.slice(2);
const json = args.includes('--json');
const flag = (name: string, fallback: number) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const MIB = flag('--mib', 1024);
const REPEATS = flag('--repeats', 2);
const CHUNK = 1 << 20;

interface Figures {
  store: string;
  upMBs: number;
  downMBs: number;
  peakMiB: number;
}

function source(): { stream: Readable; digest: () => string } {
  const hash = createHash('sha256');
  const stream = Readable.from(
    (async function* () {
      for (let i = 0; i < MIB; i++) {
        const block = Buffer.alloc(CHUNK, i % 251);
        block.writeUInt32LE(i, 0);
        hash.update(block);
        yield block;
      }
    })(),
  );
  return { stream, digest: () => hash.digest('hex') };
}

async function measure(name: string, store: ArtifactStore): Promise<Figures> {
  let best: Figures = { store: name, upMBs: 0, downMBs: 0, peakMiB: 0 };
  for (let r = 0; r < REPEATS; r++) {
    const base = process.memoryUsage().arrayBuffers;
    let peak = base;
    const timer = setInterval(() => {
      peak = Math.max(peak, process.memoryUsage().arrayBuffers);
    }, 5);
    const { stream, digest } = source();
    const t0 = performance.now();
    await store.put('bench/blob.bin', stream);
    const t1 = performance.now();
    const read = createHash('sha256');
    for await (const part of await store.get('bench/blob.bin')) read.update(part as Buffer);
    const t2 = performance.now();
    clearInterval(timer);
    if (read.digest('hex') !== digest()) throw new Error(`${name}: the bytes read back differ`);
    await store.delete('bench');
    const mb = (MIB * CHUNK) / 1e6;
    best = {
      store: name,
      upMBs: Math.max(best.upMBs, mb / ((t1 - t0) / 1000)),
      downMBs: Math.max(best.downMBs, mb / ((t2 - t1) / 1000)),
      peakMiB: Math.max(best.peakMiB, (peak - base) / 2 ** 20),
    };
  }
  return best;
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-bench-artifacts-'));
const s3 = await startS3Server(['kiln-bench']);
try {
  const local = await measure('local', new LocalArtifactStore(path.join(dir, 'store')));
  const remote = await measure(
    's3 (s3rver on loopback)',
    new S3ArtifactStore('kiln-bench', 'b', s3.settings),
  );
  const result = {
    mib: MIB,
    repeats: REPEATS,
    local,
    s3: remote,
    ratio: { up: remote.upMBs / local.upMBs, down: remote.downMBs / local.downMBs },
    load: os.loadavg()[0],
  };
  if (json) console.log(JSON.stringify(result));
  else {
    console.log(`artifact round trip of ${MIB} MiB, best of ${REPEATS} (load ${result.load.toFixed(2)})`);
    for (const f of [local, remote]) {
      console.log(
        `  ${f.store.padEnd(26)} up ${f.upMBs.toFixed(0).padStart(5)} MB/s   down ${f.downMBs.toFixed(0).padStart(5)} MB/s   peak +${f.peakMiB.toFixed(0)} MiB`,
      );
    }
    console.log(`  s3 / local: up ×${result.ratio.up.toFixed(2)}, down ×${result.ratio.down.toFixed(2)}`);
  }
} finally {
  await s3.stop();
  fs.rmSync(dir, { recursive: true, force: true });
}

import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';

/**
 * Scratch folders for work in progress (uploads, Parquet being prepared, splits). They live
 * under the kiln home, never the OS temp folder, one per operation, named after the process
 * that made them (`kiln-<pid>-…`), so the first scratch folder a process makes sweeps away what
 * dead processes left (a kill -9 mid-ingest) without touching a live process's work.
 */
const PREFIX = 'kiln-';
const swept = new Set<string>();

export function makeScratchDir(base: string): string {
  mkdirSync(base, { recursive: true });
  if (!swept.has(base)) {
    swept.add(base);
    sweepScratch(base);
  }
  return mkdtempSync(path.join(base, `${PREFIX}${process.pid}-`));
}

/** Removes scratch folders whose process is gone; returns how many it removed. */
export function sweepScratch(base: string): number {
  let entries: string[];
  try {
    entries = readdirSync(base);
  } catch {
    return 0;
  }
  let removed = 0;
  for (const entry of entries) {
    const m = /^kiln-(\d+)-/.exec(entry);
    if (!m) continue;
    const pid = Number(m[1]);
    if (pid === process.pid || processIsAlive(pid)) continue;
    rmSync(path.join(base, entry), { recursive: true, force: true });
    removed++;
  }
  return removed;
}

function processIsAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: it exists but belongs to someone else.
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

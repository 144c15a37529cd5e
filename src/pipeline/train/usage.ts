/**
 * What a training run (or tuning trial) used: CPU seconds, wall seconds and the RSS high-water
 * mark, measured from the process's own counters.
 *
 * CPU comes from `process.cpuUsage()`, which is getrusage(RUSAGE_SELF): every thread of the
 * process, so a GBDT fit on worker threads is counted in full. Node 20 has no per-thread CPU
 * clock, so runs that overlap in one process (a study with `parallel: 2`) cannot each be
 * timed on their own; the ledger below splits every stretch of process CPU equally between
 * the runs open during it. The shares add up to exactly the process's CPU while any run was
 * open, and a run alone in its process gets all of it: nothing is counted twice or dropped.
 *
 * Peak memory is `process.resourceUsage().maxRSS`, the process's resident-set high-water mark
 * when the run ends (the kernel keeps no per-run figure): for the first run in a process it is
 * the run's own peak; later runs in the same process report at least the earlier peaks.
 */
export interface ResourceUsage {
  cpuSeconds: number;
  wallSeconds: number;
  peakRssBytes: number;
}

interface OpenEntry {
  cpuMicros: number;
  wallStart: bigint;
}

class CpuLedger {
  private readonly open = new Set<OpenEntry>();
  private last = process.cpuUsage();

  /** Hands the CPU used since the last event to the entries open during it, in equal shares. */
  private settle(): void {
    const now = process.cpuUsage();
    const used = now.user - this.last.user + (now.system - this.last.system);
    this.last = now;
    if (this.open.size === 0) return;
    const share = used / this.open.size;
    for (const e of this.open) e.cpuMicros += share;
  }

  begin(): OpenEntry {
    this.settle();
    const entry: OpenEntry = { cpuMicros: 0, wallStart: process.hrtime.bigint() };
    this.open.add(entry);
    return entry;
  }

  end(entry: OpenEntry): ResourceUsage {
    this.settle();
    this.open.delete(entry);
    return {
      cpuSeconds: entry.cpuMicros / 1e6,
      wallSeconds: Number(process.hrtime.bigint() - entry.wallStart) / 1e9,
      // maxRSS is in kibibytes.
      peakRssBytes: process.resourceUsage().maxRSS * 1024,
    };
  }
}

const ledger = new CpuLedger();

/** Starts measuring; call the returned function once, when the work ends. */
export function startUsage(): () => ResourceUsage {
  const entry = ledger.begin();
  let done: ResourceUsage | undefined;
  return () => {
    done ??= ledger.end(entry);
    return done;
  };
}

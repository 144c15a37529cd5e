/**
 * One ingest client of `bench/tracking.ts`, run as its own process (child_process.fork), so
 * the clients' HTTP and JSON work is spread over processes the way separate training jobs
 * would be, not interleaved on one event loop.
 *
 * Protocol over the fork IPC channel:
 *   parent → { api, runId } in argv[2] (JSON); client → 'ready';
 *   parent → { warmEnd, end } (epoch ms); the client sends log-batch calls until `end`;
 *   client → IngestClientReport.
 *
 * Every point is unique: each call carries 10 keys × 100 new steps (`call * 100 + i / 10`) of
 * this client's own run, so nothing the server stores can be a re-sent duplicate and the
 * stored count must equal the acknowledged count exactly.
 */
export interface IngestClientReport {
  /** Points in calls the server answered 200, over the whole run (warm-up included). */
  ackedPoints: number;
  ackedCalls: number;
  /** Points in calls answered within the measuring window (after warm-up). */
  windowPoints: number;
  /** Latency of each call answered within the window, ms. */
  latencies: number[];
  /** Epoch ms of the last answer. */
  lastAnswer: number;
  /** Calls answered with anything but 200, with the first error's text. */
  failedCalls: number;
  firstError: string | null;
  /** This client process's own CPU seconds (user + system) over the run. */
  cpuSeconds: number;
}

export const POINTS_PER_CALL = 1000;
const KEYS = 10;

function bodyFor(runId: string, call: number): string {
  const metrics = new Array(POINTS_PER_CALL);
  const ts = Date.now();
  for (let i = 0; i < POINTS_PER_CALL; i++) {
    metrics[i] = {
      key: `m${i % KEYS}`,
      value: Math.random(),
      timestamp: ts,
      step: call * (POINTS_PER_CALL / KEYS) + Math.floor(i / KEYS),
    };
  }
  return JSON.stringify({ run_id: runId, metrics });
}

async function run(api: string, runId: string, warmEnd: number, end: number): Promise<IngestClientReport> {
  const cpu0 = process.cpuUsage();
  const report: IngestClientReport = {
    ackedPoints: 0,
    ackedCalls: 0,
    windowPoints: 0,
    latencies: [],
    lastAnswer: Date.now(),
    failedCalls: 0,
    firstError: null,
    cpuSeconds: 0,
  };
  let call = 0;
  while (Date.now() < end) {
    const body = bodyFor(runId, call++);
    const t0 = performance.now();
    const res = await fetch(`${api}/runs/log-batch`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
    });
    const text = await res.text();
    const t1 = performance.now();
    report.lastAnswer = Date.now();
    if (!res.ok) {
      report.failedCalls++;
      report.firstError ??= `${res.status} ${text.slice(0, 300)}`;
      continue;
    }
    report.ackedCalls++;
    report.ackedPoints += POINTS_PER_CALL;
    if (report.lastAnswer > warmEnd) {
      report.latencies.push(t1 - t0);
      report.windowPoints += POINTS_PER_CALL;
    }
  }
  const cpu = process.cpuUsage(cpu0);
  report.cpuSeconds = (cpu.user + cpu.system) / 1e6;
  return report;
}

if (process.send) {
  const { api, runId } = JSON.parse(process.argv[2] ?? '{}') as { api: string; runId: string };
  process.once('message', (msg: { warmEnd: number; end: number }) => {
    run(api, runId, msg.warmEnd, msg.end).then(
      (report) => process.send!(report, () => process.exit(0)),
      (err: unknown) => {
        process.send!({ fatal: String(err) }, () => process.exit(1));
      },
    );
  });
  process.send('ready');
}

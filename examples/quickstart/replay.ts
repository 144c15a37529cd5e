import { DuckDBInstance } from '@duckdb/node-api';
import { http } from './processes.js';
import type { StepBar } from './progress.js';

/**
 * Later months of flights replayed as live traffic: each flight is one request to `kiln serve`
 * (MLflow's /invocations, with its own x-request-id), and its outcome, whether it left more than
 * 15 minutes late, reaches `kiln server`'s feedback API later, as labels do in production: a
 * batch of labels goes out only once the next batch of requests has been answered, and the last
 * ones after the replay.
 */
export interface Flight {
  date: string;
  hour: number;
  minute: number;
  weekday: number;
  distance: number;
  origin: string;
  destination: string;
  late: boolean;
}

/** A repeatable sample of one month's flights on days (afterDay, untilDay] (never trained on). */
export async function sampleFlights(
  file: string,
  month: number,
  afterDay: number,
  untilDay: number,
  rows: number,
): Promise<Flight[]> {
  const db = await DuckDBInstance.create(':memory:');
  const c = await db.connect();
  try {
    const r = await c.runAndReadAll(
      `select strftime(date, '%Y-%m-%dT%H:%M:%S') as date, hour(date)::double as hour,
              minute(date)::double as minute, dayofweek(date)::double as weekday,
              distance::double as distance, origin, destination, delay > 15 as late
         from (select * from read_parquet('${file.replaceAll("'", "''")}')
                where month(date) = ${month} and day(date) > ${afterDay} and day(date) <= ${untilDay}
                  and delay is not null)
        using sample reservoir(${rows} rows) repeatable (7)`,
    );
    return (r.getRowObjects() as unknown as Flight[]).sort((a, b) => (a.date < b.date ? -1 : 1));
  } finally {
    c.closeSync();
    db.closeSync();
  }
}

export interface ReplayResult {
  requests: number;
  failed: number;
  firstError?: string;
  versions: Map<string, number>;
  labelled: number;
  unknownLabels: number;
  seconds: number;
}

export async function replay(
  flights: Flight[],
  opts: { serveUrl: string; serverUrl: string; idPrefix: string; concurrency: number; bar: StepBar },
): Promise<ReplayResult> {
  const started = performance.now();
  const versions = new Map<string, number>();
  let failed = 0;
  let firstError: string | undefined;
  let next = 0;
  let answered = 0;
  let labelled = 0;
  let unknownLabels = 0;
  const pending: { request_id: string; label: boolean }[] = [];
  const LABEL_BATCH = 250;
  let sending: Promise<void> = Promise.resolve();
  const sendLabels = (batch: { request_id: string; label: boolean }[]) => {
    sending = sending.then(async () => {
      const r = await http<{ labelled: number; unknown: number }>(
        `${opts.serverUrl}/api/kiln/monitor/feedback`,
        {
          body: { feedback: batch },
        },
      );
      labelled += r.labelled;
      unknownLabels += r.unknown;
    });
  };

  const worker = async () => {
    for (;;) {
      const i = next++;
      if (i >= flights.length) return;
      const f = flights[i]!;
      const id = `${opts.idPrefix}-${i}`;
      const res = await fetch(`${opts.serveUrl}/invocations`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-request-id': id },
        body: JSON.stringify({
          dataframe_records: [
            {
              hour: f.hour,
              minute: f.minute,
              weekday: f.weekday,
              distance: f.distance,
              origin: f.origin,
              destination: f.destination,
            },
          ],
        }),
      });
      const body = await res.arrayBuffer();
      if (!res.ok) {
        failed++;
        if (failed === 1) firstError = `${res.status} ${new TextDecoder().decode(body).slice(0, 300)}`;
      } else {
        const v = res.headers.get('x-kiln-model-version') ?? '?';
        versions.set(v, (versions.get(v) ?? 0) + 1);
        pending.push({ request_id: id, label: f.late });
      }
      answered++;
      // Labels lag the traffic by a batch: the outcome of a flight is known after it left.
      if (pending.length >= 2 * LABEL_BATCH) sendLabels(pending.splice(0, LABEL_BATCH));
      if (answered % 50 === 0) opts.bar.update(answered, `${labelled} labelled`);
    }
  };
  await Promise.all(Array.from({ length: opts.concurrency }, worker));
  opts.bar.update(answered, `${labelled} labelled`);
  // The server logs predictions off the request path (a buffered hook): give the last ones a
  // moment to land, then send the rest of the labels; an id not logged yet is retried once.
  await sending;
  await new Promise((r) => setTimeout(r, 1500));
  const rest = pending.splice(0);
  for (let i = 0; i < rest.length; i += LABEL_BATCH) sendLabels(rest.slice(i, i + LABEL_BATCH));
  await sending;
  opts.bar.update(answered, `${labelled} labelled`);
  opts.bar.stop();
  return {
    requests: flights.length,
    failed,
    ...(firstError ? { firstError } : {}),
    versions,
    labelled,
    unknownLabels,
    seconds: (performance.now() - started) / 1000,
  };
}

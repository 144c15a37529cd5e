/**
 * Live traffic for docs/outcomes.md: sends the first flights of 15 June 2001 to a running
 * `kiln serve` (2,000 single-row requests, then 50 four-row requests, each with its own
 * x-request-id) and writes what happened to them as feedback files: labels.csv (request_id,label;
 * late = delay > 15) for the single rows, labels.jsonl with one array of four labels per
 * multi-row request.
 *
 *   npx tsx examples/flights/outcomes-traffic.ts http://127.0.0.1:18733 OUT_DIR
 */
import fs from 'node:fs';
import path from 'node:path';
import { withDuck } from '../../src/data/index.js';

const [base = 'http://127.0.0.1:8080', outDir = '.'] = process.argv.slice(2);
const FLIGHTS = path.join(import.meta.dirname, '../../node_modules/vega-datasets/data/flights-3m.parquet');
const SINGLE = 2000;
const MULTI = 50;
const ROWS_PER_MULTI = 4;

interface Flight {
  date: string;
  distance: number;
  origin: string;
  destination: string;
  late: boolean;
}

const flights = await withDuck(async (c) => {
  const r = await c.runAndReadAll(
    `select strftime(date, '%Y-%m-%d %H:%M:%S') as date, distance, origin, destination, delay > 15 as late
     from '${FLIGHTS}' where date >= '2001-06-15' and date < '2001-06-16'
     order by date, origin, destination, distance limit ${SINGLE + MULTI * ROWS_PER_MULTI}`,
  );
  return r.getRowObjectsJS() as unknown as Flight[];
});

async function invoke(requestId: string, rows: Flight[]): Promise<void> {
  const res = await fetch(`${base}/invocations`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-request-id': requestId },
    body: JSON.stringify({
      dataframe_records: rows.map((r) => ({
        date: r.date,
        distance: Number(r.distance),
        origin: r.origin,
        destination: r.destination,
      })),
    }),
  });
  if (res.status !== 200) throw new Error(`${requestId}: ${res.status} ${await res.text()}`);
}

const csv = ['request_id,label'];
for (let i = 0; i < SINGLE; i++) {
  await invoke(`flight-${i}`, [flights[i]!]);
  csv.push(`flight-${i},${flights[i]!.late ? 1 : 0}`);
}
const jsonl: string[] = [];
for (let k = 0; k < MULTI; k++) {
  const rows = flights.slice(SINGLE + k * ROWS_PER_MULTI, SINGLE + (k + 1) * ROWS_PER_MULTI);
  await invoke(`flights-${k}`, rows);
  jsonl.push(JSON.stringify({ request_id: `flights-${k}`, label: rows.map((r) => (r.late ? 1 : 0)) }));
}
fs.mkdirSync(outDir, { recursive: true });
fs.writeFileSync(path.join(outDir, 'labels.csv'), `${csv.join('\n')}\n`);
fs.writeFileSync(path.join(outDir, 'labels.jsonl'), `${jsonl.join('\n')}\n`);
process.stdout.write(
  `sent ${SINGLE} single-row and ${MULTI} ${ROWS_PER_MULTI}-row requests to ${base}; feedback in ${path.join(outDir, 'labels.csv')} and labels.jsonl\n`,
);

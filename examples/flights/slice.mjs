// Writes the slice of the flights data a pipeline run trains on: the rows a DuckDB filter
// keeps, as Parquet at KILN_OUTPUT_DATA (the step's declared output).
//   node slice.mjs SOURCE "WHERE-EXPRESSION"
import { DuckDBInstance } from '@duckdb/node-api';

const [source, where] = process.argv.slice(2);
const out = process.env.KILN_OUTPUT_DATA;
if (!source || !where || !out) {
  console.error(
    'usage: node slice.mjs SOURCE WHERE (run as a kiln pipeline step: KILN_OUTPUT_DATA names the output)',
  );
  process.exit(2);
}
const quote = (s) => `'${s.replaceAll("'", "''")}'`;
const db = await DuckDBInstance.create(':memory:');
const conn = await db.connect();
await conn.run(
  `COPY (SELECT * FROM read_parquet(${quote(source)}) WHERE ${where} ORDER BY date) TO ${quote(out)} (FORMAT parquet)`,
);
const rows = await conn.runAndReadAll(`SELECT count(*) AS n FROM read_parquet(${quote(out)})`);
console.log(`${rows.getRowObjects()[0].n} rows where ${where}`);

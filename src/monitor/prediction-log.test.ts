import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { dropPostgresDatabase, freshPostgresDatabase } from '../store/fresh-postgres-database.js';
import { openStore } from '../store/index.js';
import { checkFeedback, parseFeedback } from './prediction-log.js';
import { runPredictionLogSuite } from './prediction-log.suite.js';

runPredictionLogSuite('SQLite', async () => {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-plog-'));
  const store = await openStore({ db: path.join(home, 'kiln.db') });
  return {
    store,
    close: async () => {
      await store.close();
      fs.rmSync(home, { recursive: true, force: true });
    },
  };
});

const postgresUrl = process.env.KILN_TEST_POSTGRES;
describe.skipIf(!postgresUrl)('on Postgres (KILN_TEST_POSTGRES)', () => {
  let n = 0;
  runPredictionLogSuite('Postgres', async () => {
    const name = `kiln_plog_${process.pid}_${n++}`;
    const store = await openStore({ db: await freshPostgresDatabase(postgresUrl!, name) });
    return {
      store,
      close: async () => {
        await store.close();
        await dropPostgresDatabase(postgresUrl!, name);
      },
    };
  });
});

describe('feedback files', () => {
  it('refuses bad rows naming the file and line', () => {
    expect(() => parseFeedback('id,label\nr1,1\n', 'a.csv')).toThrow(
      /a\.csv:1: the CSV header needs request_id and label/,
    );
    expect(() => parseFeedback('request_id,label\nr1,\n', 'a.csv')).toThrow(
      /a\.csv:2: request_id and label must both be set/,
    );
    expect(() => parseFeedback('{"request_id":"r1","label":1}\n{oops\n', 'b.jsonl')).toThrow(
      /b\.jsonl:2: not a JSON object/,
    );
    expect(() => checkFeedback({ request_id: 'r', label: {} }, 'body[0]')).toThrow(
      /body\[0\]: label must be/,
    );
    expect(parseFeedback('label,request_id\nyes,r9\n', 'c.csv')).toEqual([
      { request_id: 'r9', label: 'yes' },
    ]);
    expect(parseFeedback('\n\n', 'empty.csv')).toEqual([]);
  });
});

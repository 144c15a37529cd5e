import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { resolveConfig } from './config.js';
import { KilnError } from './errors.js';
import { parseLocation } from './location.js';
import { connect } from './sdk/index.js';

const code = (f: () => unknown) => {
  try {
    f();
    return 'no error';
  } catch (e) {
    return e instanceof KilnError ? `${e.code}: ${e.message}` : `plain ${String(e)}`;
  }
};

describe('parseLocation', () => {
  it('reads every accepted form, schemes in any case', () => {
    expect(parseLocation('POSTGRES://u:p@h:5432/db')).toEqual({
      kind: 'postgres',
      uri: 'postgres://u:p@h:5432/db',
    });
    expect(parseLocation('PostgreSQL://h/db', 'metadata')).toEqual({
      kind: 'postgres',
      uri: 'postgres://h/db',
    });
    expect(parseLocation('HTTPS://Example.com:8443/kiln/')).toEqual({
      kind: 'http',
      url: 'https://example.com:8443/kiln',
    });
    expect(parseLocation('http://127.0.0.1:5000')).toEqual({ kind: 'http', url: 'http://127.0.0.1:5000' });
    expect(parseLocation('./somewhere')).toEqual({ kind: 'folder', path: path.resolve('somewhere') });
    expect(parseLocation('FILE:///tmp/a%20b')).toEqual({ kind: 'folder', path: '/tmp/a b' });
    expect(parseLocation('file:rel/dir')).toEqual({ kind: 'folder', path: path.resolve('rel/dir') });
    expect(parseLocation('sqlite:///rel.db')).toEqual({ kind: 'sqlite', path: path.resolve('rel.db') });
    expect(parseLocation('SQLite:////abs/k.db')).toEqual({ kind: 'sqlite', path: '/abs/k.db' });
    expect(parseLocation('sqlite://', 'metadata')).toEqual({ kind: 'sqlite', path: ':memory:' });
    expect(parseLocation(':memory:', 'metadata')).toEqual({ kind: 'sqlite', path: ':memory:' });
    expect(parseLocation('/data/kiln.db', 'metadata')).toEqual({ kind: 'sqlite', path: '/data/kiln.db' });
    expect(parseLocation('S3://bucket/runs/x/', 'artifacts')).toEqual({
      kind: 's3',
      bucket: 'bucket',
      prefix: 'runs/x',
    });
    expect(parseLocation('s3://bucket', 'artifacts')).toEqual({ kind: 's3', bucket: 'bucket', prefix: '' });
  });

  it('refuses anything else with INVALID_PARAMETER_VALUE naming the value and what is accepted', () => {
    expect(code(() => parseLocation('mysql://h/db'))).toBe(
      "INVALID_PARAMETER_VALUE: location 'mysql://h/db': unsupported scheme 'mysql:'; give a folder path, file://, sqlite://, postgres(ql):// or http(s)://",
    );
    expect(code(() => parseLocation('s3://b/p'))).toMatch(
      /^INVALID_PARAMETER_VALUE: location 's3:\/\/b\/p': s3:\/\/ names an artifact store/,
    );
    expect(code(() => parseLocation('http://h', 'artifacts'))).toMatch(
      /^INVALID_PARAMETER_VALUE: artifacts location/,
    );
    expect(code(() => parseLocation('postgres://u:secret@h/db', 'artifacts'))).not.toContain('secret');
    expect(code(() => parseLocation('postgres:h/db'))).toMatch(
      /expected postgres:\/\/user@host:port\/database/,
    );
    expect(code(() => parseLocation('s3:///p', 'artifacts'))).toMatch(/expected s3:\/\/bucket\/prefix/);
    expect(code(() => parseLocation(''))).toMatch(/^INVALID_PARAMETER_VALUE: location is empty/);
    expect(code(() => parseLocation('http://h/?x=1'))).toMatch(/takes no query/);
  });

  it('config refuses a bad KILN_DB, KILN_ARTIFACTS, KILN_TRACKING_URI or KILN_PORT with a KilnError', () => {
    expect(code(() => resolveConfig({}, { KILN_DB: 'mongodb://h/db' }))).toMatch(
      /^INVALID_PARAMETER_VALUE: metadata location 'mongodb:\/\/h\/db'/,
    );
    expect(code(() => resolveConfig({}, { KILN_ARTIFACTS: 'gs://b/p' }))).toMatch(
      /^INVALID_PARAMETER_VALUE: artifacts location 'gs:\/\/b\/p'/,
    );
    expect(code(() => resolveConfig({}, { KILN_TRACKING_URI: 'ftp://h' }))).toMatch(
      /^INVALID_PARAMETER_VALUE: location 'ftp:\/\/h'/,
    );
    expect(code(() => resolveConfig({}, { KILN_PORT: 'abc' }))).toBe(
      "INVALID_PARAMETER_VALUE: KILN_PORT must be an integer port number from 0 to 65535, got 'abc'",
    );
    expect(resolveConfig({}, { KILN_DB: 'POSTGRES://h/db' }).db).toBe('postgres://h/db');
  });
});

describe('connect() by location', () => {
  it("'POSTGRES://…' goes to Postgres (once a SQLite file named ./POSTGRES:/…), and an unknown scheme creates nothing", async () => {
    const cwd = process.cwd();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-location-'));
    process.chdir(dir);
    try {
      // Nothing listens on port 1: the Postgres driver is what fails, with a connection error.
      await expect(connect('POSTGRES://nobody@127.0.0.1:1/none')).rejects.toThrow(/ECONNREFUSED|connect/);
      await expect(connect('mysql://h/db')).rejects.toMatchObject({ code: 'INVALID_PARAMETER_VALUE' });
      // No SQLite file anywhere (only the default artifact folder may have been made).
      const files = fs.readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile());
      expect(files).toEqual([]);
      expect(fs.existsSync(path.join(dir, 'POSTGRES:'))).toBe(false);
    } finally {
      process.chdir(cwd);
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a folder, file:// and sqlite:// name the same embedded store', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-location-'));
    try {
      const a = await connect(dir);
      await a.experiments.create('seen');
      await a.close();
      const b = await connect(`FILE://${dir}`);
      expect((await b.experiments.getByName('seen')).name).toBe('seen');
      await b.close();
      const c = await connect(`sqlite:///${path.join(dir, 'kiln.db')}`);
      expect((await c.experiments.getByName('seen')).name).toBe('seen');
      expect(c.workspace?.kind).toBe('database');
      await c.close();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

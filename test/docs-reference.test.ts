import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { renderReferences } from '../src/cli/write-references.js';

/**
 * The generated references are committed so they can be read on the web; they must be what the
 * code renders now. A command, option or route added without `npm run docs` fails here.
 */
describe('generated references (docs/cli.md, docs/rest.md)', () => {
  it('are current: run `npm run docs` after changing a command or a route', async () => {
    const rendered = await renderReferences();
    for (const [name, text] of Object.entries(rendered)) {
      const committed = fs.readFileSync(path.resolve(import.meta.dirname, '..', 'docs', name), 'utf8');
      expect(committed, `docs/${name} is stale: run npm run docs`).toBe(text);
    }
  });

  it('list every command and every route', async () => {
    const { 'cli.md': cli, 'rest.md': rest } = await renderReferences();
    for (const command of ['kiln train', 'kiln models promote', 'kiln data ingest', 'kiln serve', 'kiln gc'])
      expect(cli).toContain(`## \`${command}\``);
    expect(cli).toContain('`--tracking-uri <uri>`');
    expect(rest).toContain('| POST | `/api/2.0/mlflow/runs/log-batch` | editor | yes |');
    expect(rest).toContain('| GET | `/health` | public |');
    expect(rest).not.toContain('| `/ajax-api/');
  });
});

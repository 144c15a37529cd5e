import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { LocalArtifactStore } from '../artifacts/index.js';
import { resolveConfig } from '../config.js';
import { buildApp, renderRestReference } from '../server/index.js';
import { openStore } from '../store/index.js';
import { buildProgram } from './program.js';
import { renderCliReference } from './reference.js';

/**
 * The generated references, as `npm run docs` writes them: docs/cli.md from the commander
 * program, docs/rest.md from the routes a server on a throwaway embedded store registers.
 */
export async function renderReferences(): Promise<{ 'cli.md': string; 'rest.md': string }> {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-docs-'));
  const config = resolveConfig({ home });
  const store = await openStore({ db: config.db });
  try {
    const app = await buildApp({ store, artifacts: new LocalArtifactStore(config.artifacts), config });
    try {
      await app.ready();
      return {
        'cli.md': renderCliReference(buildProgram()),
        'rest.md': renderRestReference(app.declaredRoutes),
      };
    } finally {
      await app.close();
    }
  } finally {
    await store.close();
    fs.rmSync(home, { recursive: true, force: true });
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(import.meta.filename)) {
  const docs = path.resolve(import.meta.dirname, '..', '..', 'docs');
  for (const [name, text] of Object.entries(await renderReferences())) {
    fs.writeFileSync(path.join(docs, name), text);
    process.stdout.write(`wrote docs/${name}\n`);
  }
}

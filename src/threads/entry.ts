import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker, type WorkerOptions } from 'node:worker_threads';
import { KilnError } from '../errors.js';

/**
 * Starts a worker from a module next to the caller, named by its compiled name:
 * `startWorker(new URL('./my-worker.js', import.meta.url), …)`.
 *
 * From dist/ (the installed package) the .js file exists and runs as is: nothing beyond
 * Node is needed at run time. From source (tests, benches, `npm run kiln`) only the .ts file
 * exists; Node 20 cannot run it, and neither vitest's transform nor a parent's `--import`
 * reliably reaches worker threads, so a small bootstrap registers tsx's loader inside the
 * worker first. tsx is a devDependency: a source checkout has it, an installed package never
 * needs it.
 */
export function startWorker(jsUrl: URL, options: Omit<WorkerOptions, 'eval'>): Worker {
  if (existsSync(fileURLToPath(jsUrl))) return new Worker(jsUrl, options);
  const tsUrl = new URL(jsUrl.href.replace(/\.js$/, '.ts'));
  if (!existsSync(fileURLToPath(tsUrl))) {
    throw new KilnError(
      'INTERNAL_ERROR',
      `threads: worker module ${fileURLToPath(jsUrl)} is missing (and no .ts source next to it)`,
    );
  }
  return new Worker(sourceBootstrap(tsUrl), { ...options, eval: true });
}

let tsxApi: string | undefined;

function sourceBootstrap(tsUrl: URL): string {
  if (tsxApi === undefined) {
    try {
      const tsxDir = dirname(createRequire(import.meta.url).resolve('tsx/package.json'));
      tsxApi = pathToFileURL(join(tsxDir, 'dist', 'esm', 'api', 'index.mjs')).href;
    } catch (e) {
      throw new KilnError(
        'INTERNAL_ERROR',
        `threads: running ${fileURLToPath(tsUrl)} from source needs the dev dependency tsx (npm ci installs it); the built package (dist/) does not`,
        { cause: e },
      );
    }
  }
  return `import(${JSON.stringify(tsxApi)}).then((m) => { m.register(); return import(${JSON.stringify(tsUrl.href)}); });`;
}

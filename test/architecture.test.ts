import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * The house rule that makes folder names the architecture: an area (a folder under src/) is
 * used by the rest of the code only through its index.ts. Checked by scanning every import
 * and re-export in src/ (static, side-effect and dynamic `import('…')` with a literal path).
 * Type-only imports count too: a type an area does not export from index.ts is not its API.
 *
 * Tests and suites next to the code (*.test.ts, *.suite.ts) keep the rule too, except for the
 * test support in TEST_SUPPORT (kept out of the package, so no index.ts exports it).
 */
const root = path.resolve(import.meta.dirname, '..');
const src = path.join(root, 'src');

/**
 * Imports that break the rule today, each with the reason, to be emptied: every entry is
 * `importer -> imported` (paths under src/). The test fails when an entry is no longer needed,
 * so the list only shrinks.
 */
const ALLOWED: Record<string, string> = {};

/** Files under src/ that exist for tests only and that tests of any area may import. */
const TEST_SUPPORT = new Set(['store/fresh-postgres-database.ts']);

interface ImportEdge {
  from: string;
  to: string;
  line: number;
}

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...sourceFiles(full));
    else if (/\.(ts|tsx)$/.test(entry.name) && !entry.name.endsWith('.d.ts')) out.push(full);
  }
  return out;
}

/** Module specifiers of every import, re-export and literal dynamic import, with line numbers. */
function importSpecifiers(text: string): { specifier: string; line: number }[] {
  // Comments could hold example imports; strings are left alone (a specifier is one).
  const code = text.replace(/\/\*[\s\S]*?\*\//g, (c) => c.replace(/[^\n]/g, ' ')).replace(/\/\/[^\n]*/g, '');
  const found: { specifier: string; line: number }[] = [];
  const patterns = [
    /\bimport\s+(?:type\s+)?[\w*{}\s,$]*?\s*from\s*['"]([^'"]+)['"]/g,
    /\bexport\s+(?:type\s+)?(?:\*(?:\s+as\s+\w+)?|\{[^}]*\})\s*from\s*['"]([^'"]+)['"]/g,
    /\bimport\s*['"]([^'"]+)['"]/g,
    /\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/g,
  ];
  for (const pattern of patterns) {
    for (const m of code.matchAll(pattern)) {
      found.push({ specifier: m[1], line: code.slice(0, m.index).split('\n').length });
    }
  }
  return found;
}

/** The area a path under src/ belongs to ('' for files at src/'s top level). */
function areaOf(relative: string): string {
  const parts = relative.split('/');
  return parts.length > 1 ? parts[0] : '';
}

function crossAreaImports(): ImportEdge[] {
  const edges: ImportEdge[] = [];
  for (const file of sourceFiles(src)) {
    const isTest = /\.(test|suite)\.tsx?$/.test(file);
    const from = path.relative(src, file).split(path.sep).join('/');
    for (const { specifier, line } of importSpecifiers(fs.readFileSync(file, 'utf8'))) {
      if (!specifier.startsWith('.')) continue;
      const target = path.resolve(path.dirname(file), specifier).replace(/\.js$/, '.ts');
      const to = path.relative(src, target).split(path.sep).join('/');
      if (to.startsWith('..')) continue;
      const area = areaOf(to);
      if (area === '' || area === areaOf(from)) continue;
      if (to === `${area}/index.ts` || to === `${area}/index.tsx` || to === area) continue;
      if (isTest && TEST_SUPPORT.has(to)) continue;
      edges.push({ from, to, line });
    }
  }
  return edges;
}

describe('architecture', () => {
  it('reads every kind of import the code uses', () => {
    const specs = importSpecifiers(`
      import a from './a.js';
      import type { B } from '../b/index.js';
      import { c,
        d } from "./c.js";
      import * as e from './e.js';
      import './side-effect.js';
      export { f } from './f.js';
      export type { G } from './g.js';
      export * from './h.js';
      const i = await import('./i.js');
      // import x from './commented.js';
      /* import y from './block.js'; */
    `).map((s) => s.specifier);
    expect(specs.sort()).toEqual(
      [
        './a.js',
        '../b/index.js',
        './c.js',
        './e.js',
        './side-effect.js',
        './f.js',
        './g.js',
        './h.js',
        './i.js',
      ].sort(),
    );
  });

  it('uses another area only through its index.ts', () => {
    const edges = crossAreaImports();
    const violations = edges
      .filter((e) => !(`${e.from} -> ${e.to}` in ALLOWED))
      .map((e) => `src/${e.from}:${e.line} imports src/${e.to}`);
    expect(violations, "import these through the area's index.ts").toEqual([]);
    const stale = Object.keys(ALLOWED).filter((k) => !edges.some((e) => `${e.from} -> ${e.to}` === k));
    expect(stale, 'allowed imports that are gone: remove them from ALLOWED').toEqual([]);
  });
});

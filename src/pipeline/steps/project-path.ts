import path from 'node:path';

/** A path a step's parameter names: relative ones resolve against the project folder. */
export function projectPath(projectDir: string, p: string): string {
  return path.resolve(projectDir, p);
}

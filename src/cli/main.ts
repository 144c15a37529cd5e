#!/usr/bin/env node
import { CommanderError } from 'commander';
import { isKilnError } from '../errors.js';
import { buildProgram } from './program.js';

async function main(): Promise<void> {
  try {
    await buildProgram().parseAsync(process.argv);
  } catch (e) {
    // A KilnError is the user's to fix: print its message, not a stack trace.
    if (isKilnError(e)) {
      process.stderr.write(`kiln: ${e.code}: ${e.message}\n`);
      process.exit(2);
    }
    if (e instanceof CommanderError) {
      // --help and --version end this way too, successfully.
      if (e.exitCode === 0) process.exit(0);
      process.stderr.write(`kiln: INVALID_PARAMETER_VALUE: ${e.message.replace(/^error: /, '')}\n`);
      process.exit(2);
    }
    // A bug: one line for the user, the stack only when asked for.
    const err = e as Error;
    process.stderr.write(`kiln: INTERNAL_ERROR: ${err?.message ?? String(e)}\n`);
    if (process.env.KILN_DEBUG) process.stderr.write(`${err?.stack ?? ''}\n`);
    process.exit(2);
  }
}

await main();

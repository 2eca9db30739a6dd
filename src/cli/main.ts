#!/usr/bin/env node
/**
 * The `hotpath` executable (package.json `bin`): runs the command line and exits with its code.
 * @module
 */
import { runCli } from './program.js';

void runCli(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
  // Everything a command opens it closes; should a driver still hold a handle, do not hang on it.
  setTimeout(() => process.exit(code), 2000).unref();
});

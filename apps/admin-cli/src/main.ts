#!/usr/bin/env node
import { runCli } from './cli/program.util';

// No Nest bootstrap and no reflect-metadata: a command that only calls the REST API loads commander,
// cli-table3 and its own files, so it starts in tens of milliseconds.
runCli(process.argv.slice(2), {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
}).then((code) => {
  // exitCode, not exit(): stdout may still be flushing into a pipe.
  process.exitCode = code;
});

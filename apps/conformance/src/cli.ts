#!/usr/bin/env node
/**
 * ioasid-conformance: runs every workload on every backend and writes the reports.
 *
 *   ioasid-conformance run [--out DIR] [--backend a,b] [--workload x,y] [--shard i/n] [--module pkg]
 *   ioasid-conformance compare a.json b.json
 *   ioasid-conformance merge a.json b.json … [--out DIR]
 *   ioasid-conformance list
 *
 * Exit codes: 0 when every outcome matches its expectation, 1 otherwise, 2 on bad arguments.
 */

import { main } from './main.js';

main(process.argv.slice(2)).then(
  (c) => {
    process.exitCode = c;
  },
  (e: unknown) => {
    process.stderr.write(`ioasid-conformance: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exitCode = 2;
  },
);

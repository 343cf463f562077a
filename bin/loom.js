#!/usr/bin/env -S node --max-semi-space-size=64
// --max-semi-space-size=64 (MB; V8's default is 16): a trace answer builds megabytes of objects
// that are garbage a moment later; with the default young generation they were still alive at
// every scavenge, were copied and promoted, and GC took a third of a deep trace (ADR 0001).
// The `loom` command. Loom runs from its TypeScript sources through tsx's loader, so there is no
// build step to forget and `npx loom` works right after `npm ci` (docs/adr/0001-runtime.md).
import { register } from 'tsx/esm/api';

register();
const { runCli } = await import('../src/main/cli.ts');
await runCli(process.argv);

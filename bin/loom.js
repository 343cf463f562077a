#!/usr/bin/env node
// The `loom` command. Loom runs from its TypeScript sources through tsx's loader, so there is no
// build step to forget and `npx loom` works right after `npm ci` (docs/adr/0001-runtime.md).
import { register } from 'tsx/esm/api';

register();
const { runCli } = await import('../src/main/cli.ts');
await runCli(process.argv);

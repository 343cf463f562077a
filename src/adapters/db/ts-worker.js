// The entry of Loom's worker threads. Loom runs from its TypeScript sources through tsx's loader
// (docs/adr/0001-runtime.md), and on Node 20 a worker thread does not inherit the loader the main
// thread registered: it registers its own, then imports the module named in `workerData.entry`.
import { workerData } from 'node:worker_threads';
import { register } from 'tsx/esm/api';

register();
// workerData is the WorkerData of the module that started this thread (trace-lists-worker.ts).
// eslint-disable-next-line @typescript-eslint/no-unsafe-member-access
await import(String(workerData.entry));

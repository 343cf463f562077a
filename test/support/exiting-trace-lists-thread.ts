/**
 * A trace lists worker thread that says it is ready and exits at its first request: the main
 * thread must answer that request itself and start a thread again later (trace.test.ts).
 */
import { parentPort } from 'node:worker_threads';

parentPort!.on('message', (m: { type: string }) => {
  if (m.type === 'lists') process.exit(3);
  if (m.type === 'close') parentPort!.close();
});
parentPort!.postMessage({ type: 'ready' });

/**
 * The trace lists worker's thread (ADR 0017): a pool of its own on Loom's database; for each
 * request, the trace's lots and operations looked up (the genealogy store's `reached`) and
 * serialised (`traceListsJson`), answered as JSON text.
 */
import { parentPort, workerData } from 'node:worker_threads';
import pino from 'pino';
import { traceListsJson } from '../../app/material/trace-genealogy.ts';
import { postgresGenealogyStore } from './postgres-genealogy-store.ts';
import { createDatabase } from './postgres-pool.ts';
import type { WorkerData, WorkerReply, WorkerRequest } from './trace-lists-worker.ts';

const port = parentPort!;
const { connection, poolSize } = workerData as WorkerData;
const send = (m: WorkerReply) => port.postMessage(m);
// The pool's own warnings (a lost idle connection) go to the main thread's logger.
const logger = pino({ level: 'warn' }, { write: (line: string) => send({ type: 'log', line }) });
const db = createDatabase(connection.url, {
  poolSize,
  logger,
  schema: connection.schema,
  timeZone: connection.timeZone,
});
const store = postgresGenealogyStore(db);

port.on('message', (m: WorkerRequest) => {
  if (m.type === 'close') {
    // The thread ends when nothing is left on its event loop: the pool's sockets and this port.
    void db.close().finally(() => port.close());
    return;
  }
  store.reached(m.keys).then(
    (reached) => send({ type: 'lists', id: m.id, value: traceListsJson(m.lotId, reached) }),
    (e: unknown) => {
      const err = e instanceof Error ? e : new Error(String(e));
      const code = (err as { code?: unknown }).code;
      send({
        type: 'failed',
        id: m.id,
        error: { name: err.name, message: err.message, ...(typeof code === 'string' ? { code } : {}) },
      });
    },
  );
});
send({ type: 'ready' });

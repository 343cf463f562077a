import { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import type { ReachedKeys, TraceListsJson, TraceListsSource } from '../../app/material/material-ports.ts';
import type { DatabaseConnection } from './postgres-pool.ts';

/** What the worker thread is started with. */
export interface WorkerData {
  readonly entry: string;
  readonly connection: DatabaseConnection;
  readonly poolSize: number;
}

export type WorkerRequest =
  | { readonly type: 'lists'; readonly id: number; readonly lotId: string; readonly keys: ReachedKeys }
  | { readonly type: 'close' };

export type WorkerReply =
  | { readonly type: 'ready' }
  | { readonly type: 'lists'; readonly id: number; readonly value: TraceListsJson }
  | {
      readonly type: 'failed';
      readonly id: number;
      readonly error: { readonly name: string; readonly message: string; readonly code?: string };
    }
  | { readonly type: 'log'; readonly line: string };

export interface TraceListsWorker extends TraceListsSource {
  /** Whether requests go to the worker thread now (tests and diagnostics). */
  readonly ready: boolean;
  /** Stops the worker thread and closes its connections; later requests get `null`. */
  close(): Promise<void>;
}

/**
 * The trace's lots and operations, looked up and serialised in a worker thread (ADR 0017), so
 * that a deep trace's two halves of work run on two cores: the tree on the main thread, the
 * lookups' decoding and JSON here. The thread starts at the first request (which the caller serves
 * itself, as it does every request while the thread is not ready) and has a pool of `poolSize`
 * connections of its own: the three lookups of a trace run side by side. A thread that fails or
 * exits is logged and started again at a request after `restartDelayMs`, twice as long after
 * each exit of a thread that never became ready (up to 64 times), so a thread that cannot start
 * does not fill the log; the requests it had not answered get `null`, and their callers do the
 * work themselves.
 */
export function traceListsWorker(opts: {
  connection: DatabaseConnection;
  logger: Logger;
  poolSize?: number;
  restartDelayMs?: number;
  /** The thread's module (tests start one that fails). */
  threadEntry?: URL;
}): TraceListsWorker {
  const restartDelayMs = opts.restartDelayMs ?? 5_000;
  let worker: Worker | null = null;
  let ready = false;
  let closed = false;
  let notBefore = 0;
  // Exits in a row of threads that never became ready: each doubles the wait before the next start.
  let failedStarts = 0;
  let nextId = 0;
  const pending = new Map<number, { resolve(v: TraceListsJson | null): void; reject(e: Error): void }>();

  const abandon = () => {
    for (const p of pending.values()) p.resolve(null);
    pending.clear();
  };

  const start = () => {
    const data: WorkerData = {
      entry: (opts.threadEntry ?? new URL('./trace-lists-worker-thread.ts', import.meta.url)).href,
      connection: opts.connection,
      poolSize: opts.poolSize ?? 3,
    };
    // No inherited node flags: the entry registers the TypeScript loader itself (ts-worker.js).
    const w = new Worker(new URL('./ts-worker.js', import.meta.url), { workerData: data, execArgv: [] });
    // The server's own handles keep the process alive; a worker nobody closed must not.
    w.unref();
    worker = w;
    w.on('message', (m: WorkerReply) => {
      switch (m.type) {
        case 'ready':
          ready = !closed;
          failedStarts = 0;
          return;
        case 'lists':
          pending.get(m.id)?.resolve(m.value);
          pending.delete(m.id);
          return;
        case 'failed': {
          const err = Object.assign(new Error(m.error.message), {
            name: m.error.name,
            ...(m.error.code ? { code: m.error.code } : {}),
          });
          pending.get(m.id)?.reject(err);
          pending.delete(m.id);
          return;
        }
        case 'log':
          opts.logger.warn({ worker: 'trace-lists', line: m.line.trim() }, 'trace lists worker');
          return;
      }
    });
    w.on('error', (e) => {
      opts.logger.error(
        { err: e },
        'trace lists worker failed; traces look their lists up on the main thread',
      );
    });
    w.on('exit', (code) => {
      if (worker !== w) return;
      const wasReady = ready;
      worker = null;
      ready = false;
      abandon();
      if (!closed) {
        failedStarts = wasReady ? 0 : Math.min(failedStarts + 1, 6);
        const delay = restartDelayMs * 2 ** failedStarts;
        opts.logger.warn({ code }, `trace lists worker exited; starting it again after ${delay} ms`);
        notBefore = Date.now() + delay;
      }
    });
  };

  return {
    get ready() {
      return ready;
    },
    listsJson(lotId, keys) {
      if (closed) return null;
      if (!worker) {
        if (Date.now() >= notBefore) start();
        return null;
      }
      if (!ready) return null;
      const id = ++nextId;
      return new Promise<TraceListsJson | null>((resolve, reject) => {
        pending.set(id, { resolve, reject });
        worker!.postMessage({ type: 'lists', id, lotId, keys } satisfies WorkerRequest);
      });
    },
    async close() {
      closed = true;
      ready = false;
      const w = worker;
      if (!w) return;
      const exited = new Promise<void>((resolve) => w.once('exit', () => resolve()));
      w.postMessage({ type: 'close' } satisfies WorkerRequest);
      const timer = setTimeout(() => void w.terminate(), 5_000);
      await exited;
      clearTimeout(timer);
      abandon();
    },
  };
}

/**
 * The ingest bench's helper processes (publisher, subscribers) and how the bench talks to them:
 * request/reply over the IPC channel. Each runs in its own Node process so none shares an event
 * loop with what it measures; each exits when the bench goes away.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

interface Request {
  readonly id: number;
  readonly body: unknown;
}
type Reply =
  | { readonly id: number; readonly ok: true; readonly body: unknown }
  | { readonly id: number; readonly ok: false; readonly error: string };

export interface IngestChild {
  readonly pid: number;
  request<T>(body: unknown, timeoutMs?: number): Promise<T>;
  /** Asks the child to stop (`{ type: 'stop' }`), then kills it if it has not exited within 10 s. */
  stop(): Promise<void>;
  kill(): void;
}

/** Starts `script` (a file in bench/) with `config` as JSON in argv and waits for its `ready`. */
export async function startIngestChild(
  script: string,
  config: unknown,
  timeoutMs = 60_000,
): Promise<IngestChild> {
  const file = fileURLToPath(new URL(script, import.meta.url));
  const child: ChildProcess = fork(file, [JSON.stringify(config)], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  let exited = false;
  const exit = new Promise<void>((resolve) =>
    child.once('exit', () => {
      exited = true;
      resolve();
    }),
  );
  const pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
  child.on('message', (m: Reply) => {
    const p = pending.get(m.id);
    if (!p) return;
    pending.delete(m.id);
    if (m.ok) p.resolve(m.body);
    else p.reject(new Error(`${script}: ${m.error}`));
  });
  void exit.then(() => {
    for (const p of pending.values()) p.reject(new Error(`${script} exited`));
    pending.clear();
  });
  let next = 0;
  const request = <T>(body: unknown, ms = 30_000): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      if (exited || !child.connected) {
        reject(new Error(`${script} is not running`));
        return;
      }
      const id = next++;
      const timer = setTimeout(() => {
        pending.delete(id);
        reject(new Error(`${script}: no answer to ${JSON.stringify(body)} within ${ms} ms`));
      }, ms);
      pending.set(id, {
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v as T);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      child.send({ id, body } satisfies Request);
    });
  const kill = () => {
    if (!exited) child.kill('SIGKILL');
  };
  try {
    await request({ type: 'ready' }, timeoutMs);
  } catch (e) {
    kill();
    throw e;
  }
  let stopping: Promise<void> | undefined;
  return {
    pid: child.pid!,
    request,
    kill,
    stop() {
      stopping ??= (async () => {
        if (exited) return;
        const timer = setTimeout(kill, 10_000);
        await request({ type: 'stop' }, 10_000).catch(() => undefined);
        await exit;
        clearTimeout(timer);
      })();
      return stopping;
    },
  };
}

/**
 * The child side. `handle` answers every request; `{ type: 'ready' }` is answered once `init`
 * has finished, `{ type: 'stop' }` runs `stop` and exits. Losing the parent also stops the child.
 */
export function serveIngestChild(
  init: Promise<unknown>,
  handle: (body: { type: string } & Record<string, unknown>) => unknown,
  stop: () => Promise<void>,
): void {
  let stopping = false;
  const shutdown = async () => {
    if (stopping) return;
    stopping = true;
    await stop().catch(() => undefined);
  };
  const reply = (m: Reply) =>
    new Promise<void>((resolve) => {
      if (!process.connected) resolve();
      else process.send!(m, () => resolve());
    });
  process.on('message', (m: Request) => {
    const body = m.body as { type: string } & Record<string, unknown>;
    void (async () => {
      try {
        if (body.type === 'ready') {
          await init;
          await reply({ id: m.id, ok: true, body: null });
        } else if (body.type === 'stop') {
          await shutdown();
          await reply({ id: m.id, ok: true, body: null });
          process.exit(0);
        } else {
          await reply({ id: m.id, ok: true, body: await handle(body) });
        }
      } catch (e) {
        await reply({ id: m.id, ok: false, error: e instanceof Error ? (e.stack ?? e.message) : String(e) });
      }
    })();
  });
  process.on('disconnect', () => void shutdown().then(() => process.exit(0)));
  // An init failure is reported to the `ready` request; it must not crash the process first.
  init.catch(() => undefined);
}

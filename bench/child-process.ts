import { readFileSync } from 'node:fs';
import { fork, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';

/** Messages between the bench and a server it runs in a child process. */
export type ChildMessage =
  | { readonly type: 'ready'; readonly url: string }
  | { readonly type: 'failed'; readonly error: string }
  | { readonly type: 'stopped'; readonly stats?: unknown }
  | { readonly type: 'control-result'; readonly id: number; readonly result: unknown };

/** A command the bench sends to a running child (profiling runs). */
export type ChildControl =
  'query-stats' | 'query-stats-reset' | 'profile-start' | 'profile-stop' | 'allocations-stop';

export interface BenchChild {
  readonly url: string;
  readonly pid: number;
  /** Asks the child to stop cleanly (closing its pool) and waits for it; returns what it reported. */
  stop(): Promise<unknown>;
  control(cmd: ChildControl): Promise<unknown>;
}

/** A free TCP port on loopback: Loom's config wants a port number, not 0. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

/** The node flags on the shebang of bin/loom.js (`#!/usr/bin/env -S node <flags>`). */
export function loomNodeFlags(): string[] {
  const first = readFileSync(fileURLToPath(new URL('../bin/loom.js', import.meta.url)), 'utf8').split(
    '\n',
  )[0]!;
  return first.split(/\s+/).filter((word) => word.startsWith('--'));
}

/**
 * Runs `script` (a file in bench/) in its own Node process, so the server and the load generator
 * do not share an event loop. `config` reaches the child as JSON in argv.
 */
export async function startChild(
  script: string,
  config: unknown,
  opts: { cpuProfDir?: string; timeoutMs?: number } = {},
): Promise<BenchChild> {
  const file = fileURLToPath(new URL(script, import.meta.url));
  // The Loom server runs with the node flags `loom start` has (bin/loom.js's first line).
  const execArgv = ['--import', 'tsx', ...(script.includes('loom-server-child') ? loomNodeFlags() : [])];
  if (opts.cpuProfDir) execArgv.push('--cpu-prof', `--cpu-prof-dir=${opts.cpuProfDir}`);
  const child: ChildProcess = fork(file, [JSON.stringify(config)], {
    execArgv,
    // Server logs go nowhere: they are written (their cost is real) but not kept.
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${script} did not start within ${opts.timeoutMs ?? 60_000} ms`));
    }, opts.timeoutMs ?? 60_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${script} exited with ${code} before it was ready`));
    });
    child.on('message', (m: ChildMessage) => {
      if (m.type === 'ready') {
        clearTimeout(timer);
        resolve(m.url);
      } else if (m.type === 'failed') {
        clearTimeout(timer);
        reject(new Error(`${script}: ${m.error}`));
      }
    });
  });
  let stopping: Promise<unknown> | undefined;
  let controlId = 0;
  return {
    url,
    pid: child.pid!,
    control(cmd) {
      const id = ++controlId;
      return new Promise((resolve) => {
        const on = (m: ChildMessage) => {
          if (m.type === 'control-result' && m.id === id) {
            child.off('message', on);
            resolve(m.result);
          }
        };
        child.on('message', on);
        child.send({ control: cmd, id });
      });
    },
    stop() {
      stopping ??= new Promise<unknown>((resolve) => {
        let stats: unknown;
        child.on('message', (m: ChildMessage) => {
          if (m.type === 'stopped') stats = m.stats;
        });
        const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
        void exited.then(() => {
          clearTimeout(timer);
          resolve(stats);
        });
        child.send('stop');
      });
      return stopping;
    },
  };
}

/** The child side: report readiness, stop on the parent's word or when the parent goes away. */
export function serveChild(
  start: () => Promise<{
    url: string;
    stop(): Promise<unknown>;
    control?(cmd: ChildControl): Promise<unknown>;
  }>,
): void {
  const send = (m: ChildMessage) => new Promise<void>((r) => process.send!(m, () => r()));
  start().then(
    (server) => {
      let stopping = false;
      const stop = async () => {
        if (stopping) return;
        stopping = true;
        const stats = await server.stop().catch(() => undefined);
        if (process.connected) await send({ type: 'stopped', stats });
        process.exit(0);
      };
      process.on('message', (m: unknown) => {
        if (m === 'stop') {
          void stop();
          return;
        }
        const c = m as { control?: ChildControl; id?: number };
        if (c.control && c.id !== undefined) {
          const id = c.id;
          void (server.control?.(c.control) ?? Promise.resolve(undefined)).then((result) =>
            send({ type: 'control-result', id, result }),
          );
        }
      });
      process.on('disconnect', () => void stop());
      void send({ type: 'ready', url: server.url });
    },
    async (e: unknown) => {
      await send({ type: 'failed', error: e instanceof Error ? (e.stack ?? e.message) : String(e) });
      process.exit(1);
    },
  );
}

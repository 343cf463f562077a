/**
 * Runs a simulated OPC UA machine (opcua-machine-main.ts) as its own process, as `loom start` does
 * for the demo plant: a real server on its own event loop, so the simulator's work never competes
 * with Loom's, and a crash of one is not a crash of the other.
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';

export interface OpcUaMachineProcess {
  readonly machineId: string;
  readonly endpointUrl: string;
  /** The server's certificate (PEM): what a client trusts. */
  readonly certificateFile: string;
  /** SIGTERM, then SIGKILL after 5 s. */
  stop(): Promise<void>;
}

const MAIN = fileURLToPath(new URL('./opcua-machine-main.ts', import.meta.url));

export async function spawnOpcUaMachine(opts: {
  kind: 'oven' | 'press';
  machineId: string;
  port: number;
  host?: string;
  pkiDir: string;
  seed?: number;
  logger: Logger;
  /** How long the process may take to listen (node-opcua's import alone takes seconds). Default 60 s. */
  startTimeoutMs?: number;
}): Promise<OpcUaMachineProcess> {
  const log = opts.logger.child({ component: 'sim', machine: opts.machineId });
  const child = spawn(
    process.execPath,
    [
      // An absolute URL, so the child finds tsx wherever `loom` was started from.
      '--import',
      import.meta.resolve('tsx'),
      MAIN,
      ...['--kind', opts.kind, '--id', opts.machineId, '--port', String(opts.port)],
      ...['--host', opts.host ?? '127.0.0.1', '--pki-dir', opts.pkiDir, '--seed', String(opts.seed ?? 1)],
      // Our end of its stdin closes when this process dies, however it dies: the PLC goes with it.
      '--exit-with-stdin',
    ],
    { stdio: ['pipe', 'pipe', 'pipe'] },
  );
  // The simulator logs JSON at warn and above to stderr: passed on, one entry per line.
  createInterface({ input: child.stderr }).on('line', (line) => {
    if (line.trim() !== '') log.warn({ line: line.slice(0, 2000) }, 'simulated OPC UA machine');
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  };
  try {
    const line = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`not listening after ${opts.startTimeoutMs ?? 60_000} ms`)),
        opts.startTimeoutMs ?? 60_000,
      );
      createInterface({ input: child.stdout }).once('line', (l) => {
        clearTimeout(timer);
        resolve(l);
      });
      void exited.then((code) => {
        clearTimeout(timer);
        reject(new Error(`exited with code ${code} before listening (port ${opts.port} taken?)`));
      });
    });
    const info = JSON.parse(line) as { endpointUrl: string; certificateFile: string };
    return {
      machineId: opts.machineId,
      endpointUrl: info.endpointUrl,
      certificateFile: info.certificateFile,
      stop,
    };
  } catch (e) {
    await stop();
    throw e;
  }
}

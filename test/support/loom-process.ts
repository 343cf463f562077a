import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';

/** The repository root, where `bin/loom.js` is run from. */
export const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/**
 * The caller's environment without any LOOM_* setting, plus `extra`: only what a test sets applies.
 * The embedded MQTT broker takes a free port unless a test names one, so parallel suites never clash.
 */
export function loomEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('LOOM_')) env[k] = v;
  return { ...env, LOOM_MQTT_PORT: '0', ...extra };
}

export interface LoomRun {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `loom <args>` as a user would (a real process; killed after 60 s), with the LOOM_* settings given. */
export async function runLoom(
  args: string[],
  env: Record<string, string> = {},
  stdin?: string,
): Promise<LoomRun> {
  const child = spawn(process.execPath, ['bin/loom.js', ...args], {
    cwd: ROOT,
    env: loomEnv({ LOOM_LOG_LEVEL: 'warn', ...env }),
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  child.stdin.end(stdin ?? '');
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
  clearTimeout(timer);
  return { code, stdout, stderr };
}

/** A TCP port free on 127.0.0.1 right now. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

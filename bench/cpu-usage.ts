import { readdirSync, readFileSync } from 'node:fs';
import pg from 'pg';

/** CPU time of processes, from /proc (Linux): user + system, in milliseconds. */
const TICK_MS = 10; // USER_HZ is 100 on Linux

function statOf(pid: number): { ppid: number; cpuMs: number; reapedChildrenCpuMs: number } | undefined {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name, which is in parentheses and may contain spaces: utime, stime,
    // then cutime, cstime (the CPU of children that ended and were waited for).
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return {
      ppid: Number(f[1]),
      cpuMs: (Number(f[11]) + Number(f[12])) * TICK_MS,
      reapedChildrenCpuMs: (Number(f[13]) + Number(f[14])) * TICK_MS,
    };
  } catch {
    return undefined;
  }
}

export function processCpuMs(pid: number): number {
  return statOf(pid)?.cpuMs ?? 0;
}

/**
 * The postmaster and all its children (backends, WAL writer, checkpointer, autovacuum), those
 * running and those that ended: a backend or autovacuum worker that exits during a measurement
 * takes its CPU out of the running children, and the postmaster's count of ended children gets
 * it. Without the latter, another client's connection closing during a run (an idle pool timing
 * out) made a run's PostgreSQL CPU come out near zero or negative.
 */
export function clusterCpuMs(postmasterPid: number): number {
  const postmaster = statOf(postmasterPid);
  let total = (postmaster?.cpuMs ?? 0) + (postmaster?.reapedChildrenCpuMs ?? 0);
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const s = statOf(Number(name));
    if (s && s.ppid === postmasterPid) total += s.cpuMs;
  }
  return total;
}

/** The postmaster's pid, when PostgreSQL runs on this machine: the parent of our backend. */
export async function postmasterPidOf(url: string): Promise<number | undefined> {
  const c = new pg.Client({ connectionString: url });
  c.on('error', () => undefined);
  await c.connect();
  try {
    const pid = (await c.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
    return statOf(pid)?.ppid;
  } finally {
    await c.end();
  }
}

export interface CpuSplit {
  /** CPU milliseconds per request of the server process, of PostgreSQL, of the load generator. */
  readonly server: number;
  readonly postgres: number;
  readonly client: number;
}

/** Measures the CPU each party spends while `fn` runs, divided by `requests`. */
export async function measureCpu<T>(
  serverPid: number,
  postmasterPid: number | undefined,
  fn: () => Promise<T>,
  requestsOf: (r: T) => number,
): Promise<{ result: T; cpu: CpuSplit }> {
  const s0 = processCpuMs(serverPid);
  const p0 = postmasterPid ? clusterCpuMs(postmasterPid) : Number.NaN;
  const c0 = process.cpuUsage();
  const result = await fn();
  const c1 = process.cpuUsage(c0);
  const n = requestsOf(result);
  return {
    result,
    cpu: {
      server: (processCpuMs(serverPid) - s0) / n,
      postgres: postmasterPid ? (clusterCpuMs(postmasterPid) - p0) / n : Number.NaN,
      client: (c1.user + c1.system) / 1000 / n,
    },
  };
}

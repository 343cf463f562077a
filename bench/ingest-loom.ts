/**
 * Loom as the ingest bench runs it: `loom start` as a user would (a real process, its own
 * database), logged in over HTTP, given the bench plant's signal map through the plant import.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { loomEnv, ROOT } from '../test/support/loom-process.ts';
import { metricName, METRICS_PER_DEVICE, type BenchPlant } from './ingest-sparkplug.ts';

/** Why the Loom section cannot run (printed as "Loom section skipped: <reason>"). */
export class LoomSkipped extends Error {}

/** What the bench reads of `GET /api/telemetry/ingest` (counters since Loom started). */
export interface IngestStats {
  readonly samplesAccepted: number;
  readonly samplesStored: number;
  readonly samplesDropped: number;
  readonly unmapped: number;
  /** Commit time − receive time of the oldest sample of a batch; null before the first batch. */
  readonly lagMs: { readonly p50: number | null; readonly max: number | null };
  readonly duplicates?: number;
  readonly deadbandFiltered?: number;
  readonly typeMismatch?: number;
  readonly failedWrites?: number;
  readonly buffered?: number;
  /** Some tags no signal maps. */
  readonly unmappedTags?: readonly string[];
}

export interface LoomProcess {
  readonly url: string;
  /** The Node process that runs Loom (whose RSS is Loom's). */
  readonly pid: number;
  /** The last lines Loom wrote to stderr, for a failure message. */
  stderrTail(): string;
  stop(): Promise<void>;
}

const tail = (s: string, lines = 15) => s.trim().split('\n').slice(-lines).join('\n');

/** The deepest descendant of `pid` (bin/loom.js runs Loom in its own process today; a wrapper would show here). */
function leafPid(pid: number): number {
  try {
    const kids = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
      .trim()
      .split(/\s+/)
      .filter(Boolean);
    return kids.length === 1 ? leafPid(Number(kids[0])) : pid;
  } catch {
    return pid;
  }
}

/** VmRSS and VmHWM (peak) of a process, in MiB; null once it is gone. */
export function rssOf(pid: number): { rss: number; hwm: number } | null {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
    return { rss: kb('VmRSS') / 1024, hwm: kb('VmHWM') / 1024 };
  } catch {
    return null;
  }
}

/** `loom start --no-sim` with exactly the LOOM_* settings given; resolves once it serves HTTP. */
export async function startLoom(env: Record<string, string>, timeoutMs = 120_000): Promise<LoomProcess> {
  const child: ChildProcess = spawn(process.execPath, ['bin/loom.js', 'start', '--no-sim'], {
    cwd: ROOT,
    env: loomEnv(env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => {
    stderr = (stderr + c.toString()).slice(-20_000);
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  let gone = false;
  void exited.then(() => (gone = true));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`loom start did not serve within ${timeoutMs} ms\n${tail(stderr)}`));
    }, timeoutMs);
    child.stdout!.on('data', (c: Buffer) => {
      stdout = (stdout + c.toString()).slice(-20_000);
      const m = /Loom is serving on (\S+)/.exec(stdout);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new LoomSkipped(`loom start exited with ${code} before serving:\n${tail(stderr)}`));
    });
  });
  let stopping: Promise<void> | undefined;
  return {
    url,
    pid: leafPid(child.pid!),
    stderrTail: () => tail(stderr),
    stop() {
      stopping ??= (async () => {
        if (gone) return;
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
        await exited;
        clearTimeout(timer);
      })();
      return stopping;
    },
  };
}

/** A logged-in HTTP client of one Loom (session cookie, as the dashboard uses). */
export async function loginAdmin(url: string, password: string) {
  const res = await fetch(`${url}/api/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: 'admin', password }),
  });
  const cookie = res.headers
    .getSetCookie()
    .map((c) => c.split(';')[0]!)
    .find((c) => c.startsWith('loom_session='));
  if (res.status !== 200 || !cookie) {
    throw new Error(`login as admin failed: ${res.status} ${await res.text()}`);
  }
  return {
    cookie,
    async get(path: string): Promise<{ status: number; body: unknown }> {
      const r = await fetch(`${url}${path}`, { headers: { cookie } });
      const text = await r.text();
      return { status: r.status, body: parse(text) };
    },
    async post(path: string, body: unknown): Promise<{ status: number; body: unknown }> {
      const r = await fetch(`${url}${path}`, {
        method: 'POST',
        headers: { cookie, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      const text = await r.text();
      return { status: r.status, body: parse(text) };
    },
  };
}

/**
 * A dashboard watching the bench equipment: one `GET /api/live` Server-Sent Events stream, read
 * and counted (events and bytes), so live fan-out is part of what Loom does during the run.
 */
export async function openLiveStream(url: string, cookie: string, equipment: readonly string[]) {
  const abort = new AbortController();
  const res = await fetch(`${url}/api/live?equipment=${equipment.join(',')}`, {
    headers: { cookie, accept: 'text/event-stream' },
    signal: abort.signal,
  });
  if (res.status !== 200 || !res.body) {
    const body = parse(await res.text());
    abort.abort();
    return { error: describeProblem(res.status, body) } as const;
  }
  let events = 0;
  let bytes = 0;
  let carry = '';
  const decoder = new TextDecoder();
  const reader = res.body.getReader();
  const done = (async () => {
    for (;;) {
      const { value, done: end } = await reader.read();
      if (end) return;
      bytes += value.byteLength;
      const lines = (carry + decoder.decode(value, { stream: true })).split('\n');
      carry = lines.pop() ?? '';
      for (const line of lines) if (line === 'event: samples') events++;
    }
  })().catch(() => undefined);
  return {
    stats: () => ({ events, bytes }),
    async close() {
      abort.abort();
      await done;
    },
  } as const;
}

function parse(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** A problem+json body (or anything else) in one line for a skip reason. */
export function describeProblem(status: number, body: unknown): string {
  if (typeof body === 'object' && body !== null) {
    const p = body as { code?: string; detail?: string; title?: string; errors?: unknown };
    const parts = [p.code, p.title, p.detail].filter((x) => typeof x === 'string');
    const extra = p.errors === undefined ? '' : ` ${JSON.stringify(p.errors).slice(0, 400)}`;
    if (parts.length > 0) return `${status} ${parts.join(': ')}${extra}`;
  }
  return `${status} ${JSON.stringify(body).slice(0, 400)}`;
}

/**
 * The bench plant as a plant model: an ISA-95 hierarchy (Enterprise › Site › Area › WorkCenter)
 * with one WorkUnit per simulated device, and a signal per metric mapped from its Sparkplug tag,
 * deadband 0 (every change kept).
 */
export function benchPlantModel(plant: BenchPlant) {
  const devices = plant.nodes.flatMap((node) => node.devices.map((d) => ({ node, device: d })));
  return {
    units: [{ id: 'bench-unit', name: 'bench unit' }],
    equipment: [
      { id: 'bench', name: 'Ingest bench', level: 'Enterprise' },
      { id: 'bench-site', name: 'Bench site', level: 'Site', parent: 'bench' },
      { id: 'bench-area', name: 'Bench area', level: 'Area', parent: 'bench-site' },
      { id: 'bench-line', name: 'Bench line', level: 'WorkCenter', parent: 'bench-area' },
      ...devices.map(({ device }) => ({
        id: device.id,
        name: `Simulated device ${device.id}`,
        level: 'WorkUnit',
        parent: 'bench-line',
        capabilities: ['sparkplug'],
      })),
    ],
    signals: devices.flatMap(({ node, device }) =>
      Array.from({ length: METRICS_PER_DEVICE }, (_, m) => ({
        id: `${device.id}.${metricName(m)}`,
        equipment: device.id,
        dataType: 'number',
        unit: 'bench-unit',
        deadband: 0,
        source: {
          sparkplug: { group: plant.group, edgeNode: node.id, device: device.id, metric: metricName(m) },
        },
      })),
    ),
  };
}

/** `GET /api/telemetry/ingest`, checked for the fields the bench reads. */
export function asIngestStats(body: unknown): IngestStats | null {
  const b = body as Partial<IngestStats> | null;
  const num = (v: unknown) => typeof v === 'number' && Number.isFinite(v);
  const lag = (v: unknown) => v === null || num(v);
  if (
    !b ||
    !num(b.samplesAccepted) ||
    !num(b.samplesStored) ||
    !num(b.samplesDropped) ||
    !num(b.unmapped) ||
    !b.lagMs ||
    !lag(b.lagMs.p50) ||
    !lag(b.lagMs.max)
  ) {
    return null;
  }
  return b as IngestStats;
}

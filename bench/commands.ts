/**
 * Command round trip through the command gateway (issue #6): `POST /api/equipment/:id/commands`
 * with a setpoint, from the HTTP request to the response, which comes after the intent is
 * committed, the old value read, the value written and read back from the device, and the outcome
 * with its audit entry committed. A real Loom server (`startServer`, in a child process of its own)
 * and the simulated Modbus press (another child process, real TCP); one client, one command at a
 * time (the gateway runs one command per machine at a time anyway). The same for an OPC UA setpoint
 * on the simulated oven PLC (src/sim/opcua-machine-main.ts, security None on loopback). The
 * reference is Loom's Modbus poller alone writing and reading back the same register from this
 * process: the protocol's share.
 *
 *   node --import tsx bench/commands.ts [--append]
 *
 * Prints a Markdown section; `--append` also appends it to bench/RESULTS.md (never rewrites it).
 * Environment: LOOM_BENCH_DATABASE_URL (default: an embedded PostgreSQL in a temporary folder),
 * LOOM_BENCH_COMMANDS (300 measured commands per path), LOOM_BENCH_COMMANDS_WARMUP (30).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import pino from 'pino';
import { ModbusTcpPoller } from '../src/adapters/modbus/modbus-tcp-poller.ts';
import { ConnectivityRegistry } from '../src/app/telemetry/connectivity-registry.ts';
import type { MappedSignal } from '../src/app/telemetry/sample-store.ts';
import { systemClock } from '../src/domain/shared/clock.ts';
import { sourceTagOf, type SignalSource } from '../src/domain/signal/signal.ts';
import { freePort, startChild, type BenchChild } from './child-process.ts';
import { median, percentile } from './load.ts';
import { fmt, table } from './markdown.ts';
import { openBenchPostgres } from './postgres.ts';

const { values: opts } = parseArgs({ options: { append: { type: 'boolean', default: false } } });
const COUNT = Number(process.env.LOOM_BENCH_COMMANDS ?? 300);
const WARMUP = Number(process.env.LOOM_BENCH_COMMANDS_WARMUP ?? 30);
const ADMIN_PASSWORD = 'bench-admin-password-2026';
const log = (m: string) => process.stderr.write(`# ${m}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function spawnPress(port: number): Promise<ChildProcess> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', 'src/sim/modbus-device-main.ts', '--port', String(port)],
    {
      cwd: fileURLToPath(new URL('../', import.meta.url)),
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  await new Promise<void>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
      if (out.includes('listening')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`Modbus press exited with ${code}`)));
  });
  return child;
}

const ROOT = fileURLToPath(new URL('../', import.meta.url));

/** The simulated oven PLC as an OPC UA server, security None (loopback only); resolves its endpoint URL. */
async function spawnOpcUaOven(pkiDir: string): Promise<{ child: ChildProcess; endpoint: string }> {
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      'src/sim/opcua-machine-main.ts',
      '--kind',
      'oven',
      '--id',
      'oven-1',
      '--security-modes',
      'None',
      '--pki-dir',
      pkiDir,
    ],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout }).once('line', resolve);
    child.once('exit', (code) => reject(new Error(`OPC UA oven exited with ${code}`)));
  });
  return { child, endpoint: (JSON.parse(line) as { endpointUrl: string }).endpointUrl };
}

const targetSpm = (port: number): SignalSource => ({
  modbus: {
    host: '127.0.0.1',
    port,
    unitId: 1,
    table: 'holding',
    address: 6,
    type: 'uint16',
    wordOrder: 'big',
    byteOrder: 'big',
    scale: 1,
    offset: 0,
    pollMs: 1000,
  },
});

interface Path {
  readonly name: string;
  readonly ms: number[];
  readonly outcomes: Map<string, number>;
}

const stats = (p: Path) => {
  const sorted = [...p.ms].sort((a, b) => a - b);
  return { p50: median(sorted), p99: percentile(sorted, 99), max: sorted.at(-1) ?? Number.NaN };
};

const started = new Date();
const loadStart = loadavg()
  .map((x) => x.toFixed(2))
  .join(' / ');
const postgres = await openBenchPostgres(process.env);
const database = await postgres.createDatabase('loom_bench_commands');
const pressPort = await freePort();
const press = await spawnPress(pressPort);
const scratch = mkdtempSync(path.join(tmpdir(), 'loom-bench-commands-'));
const oven = await spawnOpcUaOven(path.join(scratch, 'sim-pki'));
let server: BenchChild | undefined;
const paths: Path[] = [];
try {
  const port = await freePort();
  server = await startChild('loom-server-child.ts', {
    env: {
      LOOM_DATABASE_URL: database.url,
      LOOM_HOST: '127.0.0.1',
      LOOM_PORT: String(port),
      LOOM_ADMIN_PASSWORD: ADMIN_PASSWORD,
      LOOM_LOG_LEVEL: 'silent',
      LOOM_SPARKPLUG_ENABLED: 'false',
      LOOM_OPCUA_SECURITY_MODE: 'None',
      LOOM_OPCUA_PKI_DIR: path.join(scratch, 'loom-pki'),
    },
  });
  const base = server.url;
  const login = await fetch(`${base}/api/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: 'admin', password: ADMIN_PASSWORD }),
  });
  const cookie = /loom_session=[^;]+/.exec(login.headers.get('set-cookie') ?? '')?.[0] ?? '';
  const api = (path: string, body?: unknown) =>
    fetch(`${base}${path}`, {
      method: body === undefined ? 'GET' : 'POST',
      headers: { cookie, 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
  const plant = await api('/api/plant/import', {
    equipment: [
      { id: 'ent', name: 'Enterprise', level: 'Enterprise' },
      { id: 'site', name: 'Site', level: 'Site', parent: 'ent' },
      { id: 'area', name: 'Area', level: 'Area', parent: 'site' },
      { id: 'line', name: 'Line', level: 'WorkCenter', parent: 'area' },
      { id: 'press-1', name: 'Press 1', level: 'WorkUnit', parent: 'line' },
      { id: 'oven-1', name: 'Oven 1', level: 'WorkUnit', parent: 'line' },
    ],
    signals: [
      {
        id: 'press-1.target-spm',
        equipment: 'press-1',
        dataType: 'number',
        writable: true,
        limits: { low: 0, high: 120 },
        source: targetSpm(pressPort),
      },
      {
        id: 'oven-1.setpoint',
        equipment: 'oven-1',
        dataType: 'number',
        writable: true,
        limits: { low: 0, high: 300 },
        source: { opcua: { endpoint: oven.endpoint, nodeId: 'ns=1;s=Setpoint' } },
      },
    ],
  });
  if (!plant.ok) throw new Error(`plant import: ${plant.status} ${await plant.text()}`);
  for (let i = 0; ; i++) {
    const c = await api('/api/connectivity');
    const { entries } = (await c.json()) as { entries: { kind: string; state: string }[] };
    const online = (kind: string) => entries.some((e) => e.kind === kind && e.state === 'online');
    if (online('modbus-device') && online('opcua-endpoint')) break;
    if (i > 400) throw new Error(`the press or the oven never came online: ${JSON.stringify(entries)}`);
    await sleep(50);
  }

  async function gateway(name: string, equipment: string, signal: string, value: (i: number) => number) {
    const p: Path = { name, ms: [], outcomes: new Map() };
    for (let i = 0; i < WARMUP + COUNT; i++) {
      const body = { kind: 'setpoint', signal, value: value(i), reason: 'bench' };
      const t0 = performance.now();
      const res = await api(`/api/equipment/${equipment}/commands`, body);
      const out = (await res.json()) as { outcome?: string; command?: { outcome: string } };
      const ms = performance.now() - t0;
      if (i < WARMUP) continue;
      p.ms.push(ms);
      const outcome = out.outcome ?? out.command?.outcome ?? `HTTP ${res.status}`;
      p.outcomes.set(outcome, (p.outcomes.get(outcome) ?? 0) + 1);
    }
    return p;
  }
  paths.push(
    await gateway(
      'Loom, Modbus setpoint: HTTP → intent → read → write → read back → outcome → response',
      'press-1',
      'press-1.target-spm',
      (i) => 30 + (i % 20),
    ),
    await gateway(
      'Loom, OPC UA setpoint: the same through the OPC UA client',
      'oven-1',
      'oven-1.setpoint',
      (i) => 150 + (i % 20),
    ),
  );
  // The protocol alone: the poller's write (write + read-back), no HTTP, no database.
  const source = targetSpm(pressPort);
  const signal: MappedSignal = {
    no: 1,
    id: 'press-1.target-spm',
    equipment: 'press-1',
    dataType: 'number',
    deadband: 0,
    tag: sourceTagOf(source),
    source,
  };
  const poller = new ModbusTcpPoller({
    sink: { accept: () => undefined, markStale: () => undefined },
    connectivity: new ConnectivityRegistry(systemClock),
    clock: systemClock,
    logger: pino({ level: 'silent' }),
  });
  poller.setSignals([signal]);
  for (let i = 0; !(await poller.read(signal)).ok; i++) {
    if (i > 200) throw new Error('the poller never reached the press');
    await sleep(50);
  }
  const bare: Path = { name: 'ModbusTcpPoller.write alone (write + read back)', ms: [], outcomes: new Map() };
  for (let i = 0; i < WARMUP + COUNT; i++) {
    const t0 = performance.now();
    const r = await poller.write(signal, 30 + (i % 20));
    const ms = performance.now() - t0;
    if (i < WARMUP) continue;
    bare.ms.push(ms);
    const outcome = r.ok ? 'confirmed' : r.code;
    bare.outcomes.set(outcome, (bare.outcomes.get(outcome) ?? 0) + 1);
  }
  await poller.stop();
  paths.push(bare);
} finally {
  await server?.stop();
  press.kill('SIGTERM');
  oven.child.kill('SIGTERM');
  await database.drop();
  rmSync(scratch, { recursive: true, force: true });
  await postgres.stop();
}

const command = `node --import tsx bench/commands.ts${process.argv.slice(2).length ? ` ${process.argv.slice(2).join(' ')}` : ''}`;
const [loomStats, , bareStats] = paths.map(stats);
const report = [
  `## ${started.toISOString().slice(0, 10)}: command round trip, \`${command}\``,
  '',
  `- Machine: ${cpus().length} CPU, ${cpus()[0]?.model ?? '?'}; Node ${process.version}; ${postgres.describe}`,
  `- Load average (1/5/15 min) at start: ${loadStart}`,
  `- A Modbus setpoint (holding register, uint16) on the simulated press, and an OPC UA setpoint (Double variable, security None on loopback) on the simulated oven PLC, each PLC in its own process (real TCP); ${COUNT} commands one after another after ${WARMUP} warm-up per path; Loom is \`startServer\` in its own process, called over HTTP (keep-alive) as admin.`,
  '',
  table(
    ['path', 'commands', 'p50 ms', 'p99 ms', 'max ms', 'outcomes'],
    paths.map((p) => {
      const s = stats(p);
      return [
        p.name,
        p.ms.length,
        s.p50,
        s.p99,
        s.max,
        [...p.outcomes].map(([k, v]) => `${k} ${v}`).join(', '),
      ];
    }),
  ),
  '',
  loomStats && bareStats
    ? `Gateway overhead over the Modbus protocol at p50: ${fmt(loomStats.p50 - bareStats.p50)} ms (two transactions, two audit entries, one more device read for the old value, HTTP).`
    : '',
].join('\n');
console.log(`\n${report}`);
if (opts.append && paths.length > 0) {
  appendFileSync(new URL('./RESULTS.md', import.meta.url), `\n${report}\n`);
  log('appended to bench/RESULTS.md');
}

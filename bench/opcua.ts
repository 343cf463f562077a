/**
 * OPC UA notifications/s from 5,000 monitored items (issue #6): Loom's OpcUaConnector handing every
 * value to a real IngestPipeline (tag → signal mapping, type check, batching; its store only counts
 * what it is given, PostgreSQL is bench/ingest.ts's business) against, in the same run, a bare
 * node-opcua client subscribing the same items with the same parameters and only counting
 * notifications. The simulated machine serves the bulk items from a child process
 * (src/sim/opcua-machine-main.ts --items); Loom and the bare client take turns, never together.
 *
 *   node --import tsx bench/opcua.ts [--append]
 *
 * Environment (all optional): LOOM_BENCH_OPCUA_ITEMS (5000), LOOM_BENCH_OPCUA_ITEM_INTERVAL_MS
 * (every item changes this often on the server; 100), LOOM_BENCH_OPCUA_SAMPLING_MS (the monitored
 * items' sampling interval; 0 = every change), LOOM_BENCH_OPCUA_RUNS (3), LOOM_BENCH_OPCUA_WARMUP_S
 * (3), LOOM_BENCH_OPCUA_WINDOW_S (10). `--append` appends the section to bench/RESULTS.md.
 */
import { spawn } from 'node:child_process';
import { appendFileSync, mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import {
  AttributeIds,
  DataChangeNotification,
  MessageSecurityMode,
  OPCUAClient,
  SecurityPolicy,
  TimestampsToReturn,
  setErrorLogger,
  setWarningLogger,
  type NotificationMessage,
} from 'node-opcua';
import pino from 'pino';
import { OpcUaConnector } from '../src/adapters/opcua/opcua-connector.ts';
import { ConnectivityRegistry } from '../src/app/telemetry/connectivity-registry.ts';
import { IngestPipeline } from '../src/app/telemetry/ingest-pipeline.ts';
import type { MappedSignal, SampleStore } from '../src/app/telemetry/sample-store.ts';
import type { TagSample } from '../src/domain/signal/sample.ts';
import { systemClock } from '../src/domain/shared/clock.ts';
import { sourceTagOf, type SignalSource } from '../src/domain/signal/signal.ts';
import { processCpuMs } from './cpu-usage.ts';
import { median } from './load.ts';
import { fmt, table } from './markdown.ts';

const { values: args } = parseArgs({ options: { append: { type: 'boolean', default: false } } });
const ITEMS = Number(process.env.LOOM_BENCH_OPCUA_ITEMS ?? 5000);
const ITEM_INTERVAL_MS = Number(process.env.LOOM_BENCH_OPCUA_ITEM_INTERVAL_MS ?? 100);
const SAMPLING_MS = Number(process.env.LOOM_BENCH_OPCUA_SAMPLING_MS ?? 0);
const RUNS = Number(process.env.LOOM_BENCH_OPCUA_RUNS ?? 3);
const WARMUP_S = Number(process.env.LOOM_BENCH_OPCUA_WARMUP_S ?? 3);
const WINDOW_S = Number(process.env.LOOM_BENCH_OPCUA_WINDOW_S ?? 10);
const QUEUE_SIZE = 10;
/** Loom's publishing interval for these items: the smallest samplingMs, at least 50 ms. */
const PUBLISHING_MS = Math.min(5000, Math.max(50, SAMPLING_MS));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
// The bare client's node-opcua warnings would otherwise go to the console.
setWarningLogger(() => undefined);
setErrorLogger(() => undefined);

const work = mkdtempSync(path.join(tmpdir(), 'loom-bench-opcua-'));
const sim = spawn(
  process.execPath,
  [
    '--import',
    'tsx',
    'src/sim/opcua-machine-main.ts',
    ...['--kind', 'press', '--id', 'bench', '--port', '0', '--security-modes', 'None'],
    ...[
      '--items',
      String(ITEMS),
      '--item-interval-ms',
      String(ITEM_INTERVAL_MS),
      '--pki-dir',
      path.join(work, 'sim'),
    ],
  ],
  { stdio: ['ignore', 'pipe', 'inherit'] },
);
const { endpointUrl } = await new Promise<{ endpointUrl: string }>((resolve, reject) => {
  sim.once('exit', (code) => reject(new Error(`the simulated machine exited with ${code}`)));
  createInterface({ input: sim.stdout }).once('line', (l) =>
    resolve(JSON.parse(l) as { endpointUrl: string }),
  );
});
const width = Math.max(4, String(ITEMS).length);
const nodeIds = Array.from(
  { length: ITEMS },
  (_, i) => `ns=1;s=Load/Value${String(i + 1).padStart(width, '0')}`,
);

interface Run {
  /** setSignals (or connect) until every item delivered its first value, ms. */
  readonly subscribeMs: number;
  readonly perSecond: number;
  /** The bench process's CPU over the window, % of one core. */
  readonly cpuPct: number;
  /** The server process's CPU over the window, % of one core. */
  readonly serverCpuPct: number;
  /** Loom only: samples the pipeline handed its store per second. */
  readonly storedPerSecond?: number;
}

/** Counts over a window after warm-up: `count()` is read at both ends. */
async function window(count: () => number): Promise<Omit<Run, 'subscribeMs'>> {
  await sleep(WARMUP_S * 1000);
  const c0 = count();
  const cpu0 = process.cpuUsage();
  const server0 = processCpuMs(sim.pid!);
  const t0 = performance.now();
  await sleep(WINDOW_S * 1000);
  const elapsed = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  return {
    perSecond: ((count() - c0) * 1000) / elapsed,
    cpuPct: ((cpu.user + cpu.system) / 1000 / elapsed) * 100,
    serverCpuPct: ((processCpuMs(sim.pid!) - server0) / elapsed) * 100,
  };
}

async function loomRun(): Promise<Run> {
  const signals: MappedSignal[] = nodeIds.map((nodeId, i) => {
    const source: SignalSource = {
      opcua: { endpoint: endpointUrl, nodeId, samplingMs: SAMPLING_MS, queueSize: QUEUE_SIZE },
    };
    return {
      no: i + 1,
      id: `load.v${i + 1}`,
      equipment: 'bench',
      dataType: 'number',
      deadband: 0,
      tag: sourceTagOf(source),
      source,
    };
  });
  let stored = 0;
  const store: SampleStore = {
    loadSignals: async () => signals,
    write: async (series) => {
      let n = 0;
      for (const s of series) n += s.ts.length;
      stored += n;
      return { stored: n, duplicates: 0 };
    },
    ensurePartitions: async () => undefined,
    compact: async () => 0,
    dropDaysBefore: async () => 0,
  };
  const log = pino({ level: 'warn' });
  const pipeline = new IngestPipeline({
    store,
    clock: systemClock,
    log,
    flushMs: 500,
    maxBufferedSamples: 1_000_000,
  });
  await pipeline.start();
  let accepted = 0;
  const seen = new Set<string>();
  let allSeen: (() => void) | null = null;
  const everyItem = new Promise<void>((r) => (allSeen = r));
  const connector = new OpcUaConnector({
    sink: {
      accept(samples: readonly TagSample[]) {
        accepted += samples.length;
        if (allSeen !== null) {
          for (const s of samples) seen.add(s.tag);
          if (seen.size === ITEMS) {
            allSeen();
            allSeen = null;
          }
        }
        pipeline.accept(samples);
      },
      markStale: (prefix, at, reason) => pipeline.markStale(prefix, at, reason),
    },
    connectivity: new ConnectivityRegistry(systemClock),
    clock: systemClock,
    logger: log,
    defaults: { securityMode: 'None', securityPolicy: 'None' },
    pkiDir: path.join(work, 'loom-pki'),
  });
  // The certificate store and node-opcua's import are made ready first: not part of subscribing.
  await connector.pki();
  const t0 = performance.now();
  connector.setSignals(signals);
  await everyItem;
  const subscribeMs = performance.now() - t0;
  const s0 = stored;
  const w = await window(() => accepted);
  const storedPerSecond = ((stored - s0) * 1000) / ((WARMUP_S + WINDOW_S) * 1000);
  await connector.stop();
  await pipeline.stop();
  return { subscribeMs, ...w, storedPerSecond };
}

async function bareRun(): Promise<Run> {
  const client = OPCUAClient.create({
    endpointMustExist: false,
    securityMode: MessageSecurityMode.None,
    securityPolicy: SecurityPolicy.None,
  });
  let count = 0;
  const seen = new Set<number>();
  let allSeen: (() => void) | null = null;
  const everyItem = new Promise<void>((r) => (allSeen = r));
  const t0 = performance.now();
  await client.connect(endpointUrl);
  const session = await client.createSession();
  const sub = await session.createSubscription2({
    requestedPublishingInterval: PUBLISHING_MS,
    requestedMaxKeepAliveCount: 40,
    requestedLifetimeCount: 1200,
    maxNotificationsPerPublish: 0,
    publishingEnabled: true,
  });
  sub.on('received_notifications', (m: NotificationMessage) => {
    for (const d of m.notificationData ?? []) {
      if (!(d instanceof DataChangeNotification)) continue;
      const items = d.monitoredItems ?? [];
      count += items.length;
      if (allSeen !== null) {
        for (const it of items) seen.add(it.clientHandle);
        if (seen.size === ITEMS) {
          allSeen();
          allSeen = null;
        }
      }
    }
  });
  for (let i = 0; i < ITEMS; i += 1000) {
    await sub.monitorItems(
      nodeIds.slice(i, i + 1000).map((nodeId) => ({ nodeId, attributeId: AttributeIds.Value })),
      { samplingInterval: SAMPLING_MS, queueSize: QUEUE_SIZE, discardOldest: true },
      TimestampsToReturn.Both,
    );
  }
  await everyItem;
  const subscribeMs = performance.now() - t0;
  const w = await window(() => count);
  await session.close(true);
  await client.disconnect();
  return { subscribeMs, ...w };
}

const loom: Run[] = [];
const bare: Run[] = [];
try {
  for (let r = 0; r < RUNS; r++) {
    loom.push(await loomRun());
    bare.push(await bareRun());
  }
} finally {
  sim.kill('SIGTERM');
  rmSync(work, { recursive: true, force: true });
}

const med = (runs: readonly Run[], f: (r: Run) => number) => median(runs.map(f));
const list = (runs: readonly Run[], f: (r: Run) => number) => runs.map((r) => fmt(f(r))).join(' / ');
const offered = (ITEMS * 1000) / ITEM_INTERVAL_MS;
const loomRate = med(loom, (r) => r.perSecond);
const bareRate = med(bare, (r) => r.perSecond);
const section =
  `\n## ${new Date().toISOString().slice(0, 10)}: OPC UA subscription, \`node --import tsx bench/opcua.ts${args.append ? ' --append' : ''}\`\n\n` +
  `- Machine: ${cpus().length} CPU, ${cpus()[0]?.model.trim() ?? ''}; Node ${process.version}; load average at end ${loadavg()
    .map((x) => x.toFixed(2))
    .join(' / ')}\n` +
  `- Server: the simulated machine (node-opcua) in a child process with ${fmt(ITEMS)} Double items, every one changing every ${ITEM_INTERVAL_MS} ms (${fmt(offered)} changes/s offered); security None. ` +
  `Monitored items: sampling ${SAMPLING_MS} ms${SAMPLING_MS === 0 ? ' (every change)' : ''}, queue ${QUEUE_SIZE}, publishing every ${PUBLISHING_MS} ms.\n` +
  `- Loom: OpcUaConnector → IngestPipeline (mapping, type check, batching; the store only counts). Bare: node-opcua OPCUAClient, ClientSubscription.monitorItems in batches of 1,000, a 'received_notifications' handler that only counts. ` +
  `They take turns (${RUNS} runs each, alternating); per run ${WARMUP_S} s warm-up then a ${WINDOW_S} s window; medians, each run listed. CPU is % of one core over the window.\n\n` +
  table(
    ['client', 'notifications/s', 'runs', 'subscribe 5,000 items ms', 'client CPU %', 'server CPU %'],
    [
      [
        'Loom OpcUaConnector → pipeline',
        loomRate,
        list(loom, (r) => r.perSecond),
        med(loom, (r) => r.subscribeMs),
        med(loom, (r) => r.cpuPct),
        med(loom, (r) => r.serverCpuPct),
      ],
      [
        'bare node-opcua client, counting',
        bareRate,
        list(bare, (r) => r.perSecond),
        med(bare, (r) => r.subscribeMs),
        med(bare, (r) => r.cpuPct),
        med(bare, (r) => r.serverCpuPct),
      ],
    ],
  ) +
  `\n\nLoom / bare: ${fmt(loomRate / bareRate)} (notifications/s), ${fmt(med(loom, (r) => r.cpuPct) / med(bare, (r) => r.cpuPct))}× the CPU. ` +
  `The pipeline handed its store ${fmt(med(loom, (r) => r.storedPerSecond ?? 0))} samples/s (median over warm-up and window). ` +
  `Subscribe time: from setSignals (Loom; node-opcua imported and the certificate store open already) or connect (bare) until every item delivered its first value.\n`;
console.log(section);
if (args.append) appendFileSync(new URL('RESULTS.md', import.meta.url), section);

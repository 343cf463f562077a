/**
 * End-to-end ingest: Sparkplug DDATA through a real MQTT broker into PostgreSQL, Loom against
 * three references measured in the same run (raw broker throughput, raw COPY, a naive ingestor).
 *
 *   node --import tsx bench/ingest.ts [--only=loom|refs] [--append]
 *
 * Prints a Markdown section; `--append` also appends it to bench/RESULTS.md. Each rate is the
 * median of the windows after a warm-up, counted where the data ends up (messages at the
 * subscriber, rows committed in PostgreSQL), never from what was sent. Needs a broker and a
 * PostgreSQL server; creates a database per part and drops it, and stops every process it starts.
 *
 * Environment (all optional):
 * - LOOM_BENCH_MQTT_URL (mqtt://127.0.0.1:1883), LOOM_BENCH_DATABASE_URL
 *   (postgres://postgres@127.0.0.1:5432/postgres: used only to create and drop the bench databases)
 * - LOOM_BENCH_INGEST_DEVICES (20), LOOM_BENCH_INGEST_NODES (4): simulated devices and edge nodes
 * - LOOM_BENCH_INGEST_RATE: values/s offered to the naive ingestor (300000, twice the target, so
 *   it runs at its capacity), or `max`; the broker reference always runs at `max`
 * - LOOM_BENCH_INGEST_LOOM_RATE: values/s offered to Loom (default: max(150000, 1.3 × the naive
 *   ingestor's rate of this run), the rate that meets both targets), or `max`
 * - LOOM_BENCH_INGEST_WARMUP_S (5), LOOM_BENCH_INGEST_WINDOW_S (10), LOOM_BENCH_INGEST_WINDOWS (3)
 * - LOOM_BENCH_INGEST_COPY_BATCH (10000): rows per COPY of the raw COPY reference
 * - LOOM_BENCH_LOOM_<X>: passed to Loom as LOOM_<X> (e.g. LOOM_BENCH_LOOM_INGEST_FLUSH_MS=200)
 * - LOOM_BENCH_TIMEOUT_S (600): the whole run is aborted (and cleaned up) after this long
 */
import { randomBytes } from 'node:crypto';
import { appendFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import mqtt from 'mqtt';
import pg from 'pg';
import { freePort } from '../test/support/loom-process.ts';
import { startIngestChild, type IngestChild } from './ingest-child.ts';
import type { ConsumerConfig, ConsumerStats } from './ingest-consumer-child.ts';
import {
  asIngestStats,
  benchPlantModel,
  describeProblem,
  loginAdmin,
  LoomSkipped,
  openLiveStream,
  rssOf,
  startLoom,
  type IngestStats,
} from './ingest-loom.ts';
import {
  appendOnlyCounter,
  copyBatches,
  copyLoop,
  createPlainTable,
  PLAIN_TABLE,
} from './ingest-postgres.ts';
import type { PublisherConfig, PublisherStats } from './ingest-publisher-child.ts';
import {
  benchPlant,
  ddataRing,
  METRICS_PER_DEVICE,
  RandomWalks,
  type BenchPlant,
} from './ingest-sparkplug.ts';
import { fmt, table } from './markdown.ts';
import { openBenchPostgres } from './postgres.ts';

const { values: opts } = parseArgs({
  options: { only: { type: 'string' }, append: { type: 'boolean', default: false } },
});
if (opts.only !== undefined && opts.only !== 'loom' && opts.only !== 'refs') {
  console.error(`--only must be loom or refs, got '${opts.only}'`);
  process.exit(2);
}
const runRefs = opts.only !== 'loom';
const runLoom = opts.only !== 'refs';

function int(name: string, fallback: number): number {
  const v = process.env[name];
  if (v === undefined || v === '') return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) {
    console.error(`${name} must be a positive whole number, got '${v}'`);
    process.exit(2);
  }
  return n;
}

const DEVICES = int('LOOM_BENCH_INGEST_DEVICES', 20);
const NODES = int('LOOM_BENCH_INGEST_NODES', 4);
const WARMUP_S = int('LOOM_BENCH_INGEST_WARMUP_S', 5);
const WINDOW_S = int('LOOM_BENCH_INGEST_WINDOW_S', 10);
const WINDOWS = int('LOOM_BENCH_INGEST_WINDOWS', 3);
const COPY_BATCH = int('LOOM_BENCH_INGEST_COPY_BATCH', 10_000);
const TARGET = 150_000;
const TARGET_VS_NAIVE = 1.3;
/** Offered DDATA rate for the naive ingestor and Loom, in values/s; `max`: as fast as the broker takes them. */
const RATE = (() => {
  const v = process.env.LOOM_BENCH_INGEST_RATE ?? String(2 * TARGET);
  if (v === 'max') return null;
  const n = Number(v);
  if (!Number.isFinite(n) || n < METRICS_PER_DEVICE) {
    console.error(`LOOM_BENCH_INGEST_RATE must be 'max' or values per second, got '${v}'`);
    process.exit(2);
  }
  return n;
})();
/**
 * Offered to Loom, in values/s: by default what meets both targets at once, the larger of 150,000
 * and 1.3 × the naive ingestor's rate of this run. Loom keeping up with it (stores what was sent,
 * drops nothing) is the pass. Offering more than a Sparkplug host takes makes the broker drop
 * QoS 0 messages for it, and the seq gaps make the host ask for rebirths: a different regime.
 */
const LOOM_RATE = (() => {
  const v = process.env.LOOM_BENCH_INGEST_LOOM_RATE;
  if (v === undefined || v === '') return undefined;
  if (v === 'max') return null;
  const n = Number(v);
  if (!Number.isFinite(n) || n < METRICS_PER_DEVICE) {
    console.error(`LOOM_BENCH_INGEST_LOOM_RATE must be 'max' or values per second, got '${v}'`);
    process.exit(2);
  }
  return n;
})();
const MQTT_URL = process.env.LOOM_BENCH_MQTT_URL ?? 'mqtt://127.0.0.1:1883';
const DATABASE_URL = process.env.LOOM_BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

const log = (line: string) => console.error(line);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const median = (xs: readonly number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};
const loads = () =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(' / ');

// Everything started is undone in reverse order, on success, error, Ctrl-C or the time limit.
const cleanups: (() => Promise<unknown>)[] = [];
const defer = (fn: () => Promise<unknown>) => cleanups.push(fn);
let cleaning: Promise<void> | undefined;
function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    while (cleanups.length > 0) {
      await cleanups.pop()!().catch((e: unknown) =>
        log(`cleanup: ${e instanceof Error ? e.message : String(e)}`),
      );
    }
  })();
  return cleaning;
}
let interrupted = false;
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    interrupted = true;
    log(`${sig}: stopping`);
    void cleanup().then(() => process.exit(130));
  });
}
setTimeout(
  () => {
    log('bench: time limit reached, aborting');
    void cleanup().then(() => process.exit(3));
  },
  int('LOOM_BENCH_TIMEOUT_S', 600) * 1000,
).unref();

async function connect(url: string): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: url });
  c.on('error', (e) => log(`pg: ${e.message}`));
  await c.connect();
  defer(() => c.end());
  return c;
}

async function child(script: string, config: unknown): Promise<IngestChild> {
  const c = await startIngestChild(script, config);
  defer(() => c.stop());
  return c;
}

const publisherConfig = (plant: BenchPlant, primaryHostId?: string): PublisherConfig => ({
  url: MQTT_URL,
  plant,
  seed: 42,
  ...(primaryHostId === undefined ? {} : { primaryHostId }),
});

interface Windows {
  /** Per window, of the counted quantity. */
  readonly rates: number[];
  readonly median: number;
}

/**
 * Warm-up, then WINDOWS windows of WINDOW_S seconds; `read` returns the running total counted
 * where the data ends up. `atStart` runs when the first window opens (reset lag statistics).
 */
async function measure(
  read: () => Promise<number>,
  hooks: { atStart?: () => Promise<void>; atBoundary?: () => Promise<void> } = {},
): Promise<Windows> {
  await sleep(WARMUP_S * 1000);
  await hooks.atStart?.();
  const stamp = async () => {
    const t0 = performance.now();
    const n = await read();
    await hooks.atBoundary?.();
    return { n, t: (t0 + performance.now()) / 2 };
  };
  let prev = await stamp();
  const start = prev.t;
  const rates: number[] = [];
  for (let i = 1; i <= WINDOWS; i++) {
    await sleep(Math.max(0, start + i * WINDOW_S * 1000 - performance.now()));
    const cur = await stamp();
    rates.push(((cur.n - prev.n) * 1000) / (cur.t - prev.t));
    prev = cur;
  }
  log(`  windows: ${rates.map((r) => fmt(r)).join(' / ')}`);
  return { rates, median: median(rates) };
}

/** Samples a process's RSS at every window boundary; reports the largest and the kernel's peak. */
function rssTracker(pid: number) {
  let max = 0;
  let hwm = 0;
  return {
    sample: async () => {
      const r = rssOf(pid);
      if (r) {
        max = Math.max(max, r.rss);
        hwm = r.hwm;
      }
    },
    describe: () => (max > 0 ? `${fmt(max)} (peak ${fmt(hwm)})` : ''),
  };
}

interface Row {
  readonly target: string;
  readonly offered: string;
  readonly windows: Windows;
  readonly lag?: { readonly p50: number | null; readonly max: number | null } | null;
  readonly rss?: string;
  readonly notes: string;
  /** Stored (nearly) all that was offered: its capacity is above the offered rate. */
  readonly keptUp?: boolean;
}

const offeredOf = (w: Windows | null) => (w ? `${fmt(w.median)}` : '–');
const offeredColumn = (rate: number | null, w: Windows | null) =>
  rate === null ? `max (sent ${offeredOf(w)})` : `${fmt(rate)} (sent ${offeredOf(w)})`;
const keptUp = (stored: Windows, offered: Windows | null) =>
  offered !== null && stored.median >= 0.97 * offered.median;
const KEPT_UP = 'kept up with the offered rate: its capacity is higher (raise LOOM_BENCH_INGEST_RATE)';

async function mosquittoRaw(group: string): Promise<Row> {
  log('mosquitto raw: publisher → bare subscriber (counts messages, decodes nothing)');
  const plant = benchPlant(`${group}-raw`, DEVICES, NODES);
  const sub = await child('./ingest-consumer-child.ts', {
    url: MQTT_URL,
    group: plant.group,
    mode: 'count',
  } satisfies ConsumerConfig);
  const pub = await child('./ingest-publisher-child.ts', publisherConfig(plant));
  const rss = rssTracker(sub.pid);
  const offered = await offeredTracker(pub);
  await pub.request({ type: 'run', rate: null });
  const w = await measure(async () => (await sub.request<ConsumerStats>({ type: 'stats' })).messages, {
    atStart: () => offered.start(),
    atBoundary: () => rss.sample(),
  });
  const sent = await offered.stop();
  await pub.request({ type: 'pause' });
  const values = { rates: w.rates.map((r) => r * METRICS_PER_DEVICE), median: w.median * METRICS_PER_DEVICE };
  await pub.stop();
  await sub.stop();
  return {
    target: 'Mosquitto raw: publisher → bare mqtt.js subscriber',
    offered: `max (${offeredOf(sent)})`,
    windows: values,
    rss: rss.describe(),
    notes:
      `${fmt(w.median)} messages/s received; publisher sent ${fmt((sent?.median ?? 0) / METRICS_PER_DEVICE)} messages/s` +
      (keptUp(values, sent)
        ? ' (all of it: the publisher, one process, is the limit here, not the broker)'
        : ''),
  };
}

async function copyRaw(databaseUrl: string, group: string): Promise<Row> {
  log(`PostgreSQL COPY raw: batches of ${fmt(COPY_BATCH)} rows into a plain table, one connection`);
  const plant = benchPlant(`${group}-copy`, DEVICES, NODES);
  const walks = new RandomWalks(DEVICES * METRICS_PER_DEVICE, 42);
  const messages = plant.nodes.flatMap((node) => ddataRing(plant, node, walks));
  const batches = copyBatches(messages, COPY_BATCH);
  const admin = await connect(databaseUrl);
  await createPlainTable(admin);
  const writer = await connect(databaseUrl);
  const counter = appendOnlyCounter(admin, PLAIN_TABLE);
  const loop = copyLoop(writer, batches);
  let w: Windows;
  try {
    w = await measure(() => counter.count());
  } finally {
    await loop.stop();
  }
  const check = await counter.verify();
  await admin.query(`DROP TABLE ${PLAIN_TABLE}`);
  return {
    target: `PostgreSQL COPY raw (${fmt(COPY_BATCH)}-row batches, (signal, ts) index)`,
    offered: '–',
    windows: w,
    notes: `rows/s; ${batches.length} distinct batches of the publisher's rows sent round${check ? `; ${check}` : ''}`,
  };
}

async function naive(databaseUrl: string, group: string): Promise<Row> {
  log('naive ingestor: subscribe → Tahu decode → COPY, nothing else');
  const plant = benchPlant(`${group}-naive`, DEVICES, NODES);
  const admin = await connect(databaseUrl);
  await createPlainTable(admin);
  const counter = appendOnlyCounter(admin, PLAIN_TABLE);
  const sub = await child('./ingest-consumer-child.ts', {
    url: MQTT_URL,
    group: plant.group,
    mode: 'naive',
    databaseUrl,
    table: PLAIN_TABLE,
  } satisfies ConsumerConfig);
  const pub = await child('./ingest-publisher-child.ts', publisherConfig(plant));
  const rss = rssTracker(sub.pid);
  const offered = await offeredTracker(pub);
  await pub.request({ type: 'run', rate: RATE === null ? null : RATE / METRICS_PER_DEVICE });
  let s0: ConsumerStats | undefined;
  const w = await measure(() => counter.count(), {
    atStart: async () => {
      s0 = await sub.request<ConsumerStats>({ type: 'stats', resetLag: true });
      await offered.start();
    },
    atBoundary: () => rss.sample(),
  });
  const s1 = await sub.request<ConsumerStats>({ type: 'stats' });
  const offeredWindows = await offered.stop();
  await pub.request({ type: 'pause' });
  await pub.stop();
  await sub.stop();
  const check = await counter.verify();
  await admin.query(`DROP TABLE ${PLAIN_TABLE}`);
  const dropped = s1.droppedMessages - (s0?.droppedMessages ?? 0);
  const batches = s1.batches - (s0?.batches ?? 0);
  const notes = [
    ...(keptUp(w, offeredWindows) ? [KEPT_UP] : []),
    `${fmt(batches / (WINDOWS * WINDOW_S))} COPYs/s`,
    dropped > 0 ? `dropped ${fmt(dropped)} messages (its buffer was full)` : 'dropped none',
    ...(check ? [check] : []),
    ...s1.errors.slice(0, 3),
  ];
  return {
    target: 'naive ingestor: subscribe → decode → COPY',
    offered: offeredColumn(RATE, offeredWindows),
    windows: w,
    lag: s1.lagMs,
    rss: rss.describe(),
    notes: notes.join('; '),
    keptUp: keptUp(w, offeredWindows),
  };
}

/** Values the publisher sent per second over the measured windows. */
async function offeredTracker(pub: IngestChild) {
  let sent0 = 0;
  let t0 = 0;
  return {
    async start() {
      sent0 = (await pub.request<PublisherStats>({ type: 'stats' })).sent;
      t0 = performance.now();
    },
    async stop(): Promise<Windows | null> {
      if (t0 === 0) return null;
      const sent = (await pub.request<PublisherStats>({ type: 'stats' })).sent;
      const rate = ((sent - sent0) * 1000 * METRICS_PER_DEVICE) / (performance.now() - t0);
      return { rates: [rate], median: rate };
    },
  };
}

async function loom(
  pgServer: Awaited<ReturnType<typeof openBenchPostgres>>,
  group: string,
  rate: number | null,
): Promise<Row> {
  log(
    `Loom: loom start → Sparkplug host → ingest pipeline → PostgreSQL, offered ${rate === null ? 'max' : fmt(rate)} values/s`,
  );
  const plant = benchPlant(`${group}-loom`, DEVICES, NODES);
  const database = await pgServer.createDatabase('bench_ingest_loom');
  defer(() => database.drop());
  const password = `bench-admin-${randomBytes(6).toString('hex')}`;
  const hostId = `loom-bench-${randomBytes(4).toString('hex')}`;
  const passThrough = Object.fromEntries(
    Object.entries(process.env)
      .filter(([k, v]) => k.startsWith('LOOM_BENCH_LOOM_') && v !== undefined)
      .map(([k, v]) => [`LOOM_${k.slice('LOOM_BENCH_LOOM_'.length)}`, v!]),
  );
  const loomProcess = await startLoom({
    LOOM_DATABASE_URL: database.url,
    LOOM_MQTT_URL: MQTT_URL,
    LOOM_SPARKPLUG_HOST_ID: hostId,
    LOOM_ADMIN_PASSWORD: password,
    LOOM_LOG_LEVEL: 'warn',
    LOOM_HOST: '127.0.0.1',
    LOOM_PORT: String(await freePort()),
    LOOM_BODY_LIMIT_BYTES: String(64 * 1024 * 1024),
    ...passThrough,
  });
  defer(() => loomProcess.stop());
  const http = await loginAdmin(loomProcess.url, password);
  const probe = await http.get('/api/telemetry/ingest');
  if (probe.status !== 200 || !asIngestStats(probe.body)) {
    throw new LoomSkipped(
      `GET /api/telemetry/ingest answered ${describeProblem(probe.status, probe.body)}; ` +
        'expected { samplesAccepted, samplesStored, samplesDropped, unmapped, lagMs: { p50, max } }',
    );
  }
  const db = await connect(database.url);
  const chunks = await db.query<{ t: string | null }>(`SELECT to_regclass('signal_chunks')::text AS t`);
  if (!chunks.rows[0]?.t) throw new LoomSkipped("Loom's database has no table signal_chunks");
  const imported = await http.post('/api/plant/import', benchPlantModel(plant));
  if (imported.status < 200 || imported.status > 299) {
    throw new LoomSkipped(
      `POST /api/plant/import of the bench plant (${DEVICES * METRICS_PER_DEVICE} signals) answered ${describeProblem(imported.status, imported.body)}`,
    );
  }
  const equipment = plant.nodes.flatMap((n) => n.devices.map((d) => d.id)).slice(0, 50);
  const live = await openLiveStream(loomProcess.url, http.cookie, equipment);
  if ('error' in live) log(`  GET /api/live answered ${live.error}; running without a live subscriber`);
  else defer(() => live.close());
  const pub = await child('./ingest-publisher-child.ts', publisherConfig(plant, hostId));
  const started = await pub.request<PublisherStats>({ type: 'stats' });
  if (started.stateOnline === false) log(`  no STATE online from host ${hostId}; births sent anyway`);
  const rss = rssTracker(loomProcess.pid);
  const offered = await offeredTracker(pub);
  const ingest = async (): Promise<IngestStats> => {
    const r = await http.get('/api/telemetry/ingest');
    const s = asIngestStats(r.body);
    if (!s) throw new Error(`GET /api/telemetry/ingest answered ${describeProblem(r.status, r.body)}`);
    return s;
  };
  await pub.request({ type: 'run', rate: rate === null ? null : rate / METRICS_PER_DEVICE });
  let s0: IngestStats | undefined;
  const liveAt: { start?: { events: number; bytes: number } } = {};
  const w = await measure(
    async () => {
      const r = await db.query<{ n: string }>('SELECT coalesce(sum(n), 0) AS n FROM signal_chunks');
      return Number(r.rows[0]!.n);
    },
    {
      atStart: async () => {
        s0 = await ingest();
        if (s0.samplesAccepted === 0 && s0.unmapped === 0) {
          const sent = (await pub.request<PublisherStats>({ type: 'stats' })).sent;
          const conn = await http.get('/api/connectivity');
          throw new LoomSkipped(
            `Loom received no Sparkplug samples in the ${WARMUP_S} s warm-up (${fmt(sent)} DDATA published to ` +
              `${MQTT_URL}, group ${plant.group}); is the Sparkplug host running in \`loom start\`? ` +
              `GET /api/connectivity: ${describeProblem(conn.status, conn.body)}`,
          );
        }
        await offered.start();
        if (!('error' in live)) liveAt.start = live.stats();
      },
      atBoundary: () => rss.sample(),
    },
  );
  const live1 = 'error' in live ? null : live.stats();
  const s1 = await ingest();
  const offeredWindows = await offered.stop();
  const end = await pub.request<PublisherStats>({ type: 'pause' });
  const d = (k: Exclude<keyof IngestStats, 'lagMs' | 'unmappedTags'>) => (s1[k] ?? 0) - (s0?.[k] ?? 0);
  const seconds = WINDOWS * WINDOW_S;
  const notes = [
    ...(keptUp(w, offeredWindows) && d('samplesDropped') === 0 ? ['kept up with the offered rate'] : []),
    `Loom's counters over the windows: accepted ${fmt(d('samplesAccepted') / seconds)}/s, stored ${fmt(d('samplesStored') / seconds)}/s`,
    `dropped ${fmt(d('samplesDropped'))}, unmapped ${fmt(d('unmapped'))}, duplicates ${fmt(d('duplicates'))}, ` +
      `deadband-filtered ${fmt(d('deadbandFiltered'))}, type mismatches ${fmt(d('typeMismatch'))}, failed writes ${fmt(d('failedWrites'))}`,
    ...(d('unmapped') > 0 ? [`unmapped tags include ${(s1.unmappedTags ?? []).slice(0, 3).join(', ')}`] : []),
    `buffered at end ${fmt(s1.buffered ?? NaN)}`,
    live1 && liveAt.start
      ? `live: one SSE client on ${equipment.length} WorkUnits got ${fmt((live1.events - liveAt.start.events) / seconds)} events/s, ${fmt((live1.bytes - liveAt.start.bytes) / seconds / 1024)} KiB/s`
      : 'no live subscriber',
    `${end.rebirthRequests} rebirth request(s) answered${end.rebirthRequests > 0 ? ' (seq gaps: the broker drops QoS 0 messages for a subscriber that falls behind)' : ''}`,
    ...(started.stateOnline === false ? ['no STATE online seen'] : []),
    ...end.errors.slice(0, 3),
  ];
  return {
    target: `Loom \`loom start\` (mapping, dedup, rollups, live fan-out)`,
    offered: offeredColumn(rate, offeredWindows),
    windows: w,
    lag: s1.lagMs,
    rss: rss.describe(),
    notes: notes.join('; '),
    keptUp: keptUp(w, offeredWindows) && d('samplesDropped') === 0,
  };
}

async function brokerVersion(): Promise<string> {
  const c = mqtt.connect(MQTT_URL, { reconnectPeriod: 0, connectTimeout: 3000 });
  try {
    return await new Promise<string>((resolve) => {
      const timer = setTimeout(() => resolve('unknown version'), 3000);
      c.on('error', () => resolve('unreachable'));
      c.on('message', (_t, p) => {
        clearTimeout(timer);
        resolve(p.toString());
      });
      c.on('connect', () => void c.subscribeAsync('$SYS/broker/version').catch(() => undefined));
    });
  } finally {
    await c.endAsync(true);
  }
}

const started = new Date();
const loadStart = loads();
const group = `bench-${randomBytes(4).toString('hex')}`;
const rows: Row[] = [];
const skipped: string[] = [];
let failed = false;
let pgDescribe = '';
let broker = '';
try {
  const pgServer = await openBenchPostgres({ LOOM_BENCH_DATABASE_URL: DATABASE_URL });
  defer(() => pgServer.stop());
  pgDescribe = pgServer.describe;
  broker = `${await brokerVersion()} at ${MQTT_URL}`;
  if (runRefs) {
    const refs = await pgServer.createDatabase('bench_ingest_refs');
    defer(() => refs.drop());
    rows.push(await mosquittoRaw(group));
    rows.push(await copyRaw(refs.url, group));
    rows.push(await naive(refs.url, group));
  }
  if (runLoom) {
    try {
      const naiveRate = rows.find((r) => r.target.startsWith('naive'))?.windows.median;
      const rate =
        LOOM_RATE !== undefined
          ? LOOM_RATE
          : Math.ceil(Math.max(TARGET, TARGET_VS_NAIVE * (naiveRate ?? TARGET)) / 1000) * 1000;
      rows.push(await loom(pgServer, group, rate));
    } catch (e) {
      if (interrupted) throw e;
      if (e instanceof LoomSkipped) skipped.push(`Loom section skipped: ${e.message}`);
      else {
        failed = true;
        skipped.push(`Loom section failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
      }
      log(skipped[skipped.length - 1]!);
    }
  }
} catch (e) {
  failed = true;
  if (!interrupted) console.error(e);
} finally {
  await cleanup();
}

const naiveRow = rows.find((r) => r.target.startsWith('naive'));
const loomRow = rows.find((r) => r.target.startsWith('Loom'));
const ratioRows: (string | number)[][] = [];
if (loomRow) {
  const vsTarget = loomRow.windows.median / TARGET;
  ratioRows.push([
    'Loom stored what was offered, dropping none',
    loomRow.offered,
    'sustained',
    loomRow.keptUp === true ? 'yes' : 'no',
  ]);
  ratioRows.push([
    `Loom / ${fmt(TARGET)} values/s`,
    vsTarget.toFixed(2),
    '≥ 1.00',
    vsTarget >= 1 ? 'yes' : 'no',
  ]);
  if (naiveRow) {
    const vsNaive = loomRow.windows.median / naiveRow.windows.median;
    // Both at the offered rate says nothing about their capacities.
    const undecided = loomRow.keptUp === true && naiveRow.keptUp === true;
    ratioRows.push([
      'Loom / naive ingestor',
      vsNaive.toFixed(2),
      `≥ ${TARGET_VS_NAIVE.toFixed(2)}`,
      undecided ? 'undecided: both kept up' : vsNaive >= TARGET_VS_NAIVE ? 'yes' : 'no',
    ]);
  }
}
const command = `${Object.entries(process.env)
  .filter(([k]) => k.startsWith('LOOM_BENCH_'))
  .map(([k, v]) => `${k}=${v} `)
  .join(
    '',
  )}node --import tsx bench/ingest.ts${process.argv.slice(2).length ? ` ${process.argv.slice(2).join(' ')}` : ''}`;
const report = [
  `## ${started.toISOString().slice(0, 10)}: ingest end to end, \`${command}\``,
  '',
  `- Machine: ${cpus().length} CPU, ${cpus()[0]?.model ?? '?'}; Node ${process.version}; ${pgDescribe}; MQTT broker ${broker}`,
  `- Load average (1/5/15 min) at start: ${loadStart}; at end: ${loads()}`,
  `- Messages: Sparkplug B DDATA of ${DEVICES} devices on ${Math.min(NODES, DEVICES)} edge nodes (one MQTT connection each), ` +
    `${METRICS_PER_DEVICE} Double metrics per message with alias and timestamp, encoded with Tahu before timing, QoS 0; ` +
    `publisher, subscribers and Loom each in their own process`,
  `- values/s: median of ${WINDOWS} windows of ${WINDOW_S} s after ${WARMUP_S} s warm-up, counted at the subscriber ` +
    `(Mosquitto raw) or in PostgreSQL (COPY: rows of the plain table; Loom: \`sum(n)\` of \`signal_chunks\`); ` +
    `lag = commit time − receive time of the oldest value of a batch (naive: over the windows; Loom: its own \`lagMs\`, p50 of its last 200 batches, max since it started)`,
  '',
  table(
    ['target', 'offered values/s', 'values/s', 'windows', 'lag p50 ms', 'lag max ms', 'RSS MiB', 'notes'],
    rows.map((r) => [
      r.target,
      r.offered,
      fmt(r.windows.median),
      r.windows.rates.map((x) => fmt(x)).join(' / '),
      r.lag ? fmt(r.lag.p50 ?? NaN) : '',
      r.lag ? fmt(r.lag.max ?? NaN) : '',
      r.rss ?? '',
      r.notes,
    ]),
  ),
  '',
  ...(ratioRows.length ? [table(['ratio', 'value', 'target', 'met'], ratioRows), ''] : []),
  ...skipped.map((s) => `${s}\n`),
].join('\n');
console.log(`\n${report}`);
if (opts.append && rows.length > 0) {
  appendFileSync(new URL('./RESULTS.md', import.meta.url), `\n${report}`);
  log('appended to bench/RESULTS.md');
}
process.exit(failed ? 1 : 0);

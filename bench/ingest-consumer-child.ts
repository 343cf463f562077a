/**
 * The ingest bench's reference consumers of the DDATA stream, in a process of their own.
 * `count`: a bare mqtt.js subscriber that counts messages and decodes nothing (broker throughput).
 * `naive`: the naive ingestor — decode with Tahu, turn every metric into a (ts, alias, value) row
 * and COPY the rows into a plain table, one COPY in flight at a time, nothing else (no mapping, no
 * dedup, no rollups, no births: the alias is the signal). Config as JSON in argv[2]: {@link ConsumerConfig}.
 */
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import mqtt from 'mqtt';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { serveIngestChild } from './ingest-child.ts';
import { tahu, toNumber } from './ingest-sparkplug.ts';

export interface ConsumerConfig {
  readonly url: string;
  readonly group: string;
  readonly mode: 'count' | 'naive';
  readonly databaseUrl?: string;
  readonly table?: string;
  /** Most messages one COPY takes (default 500: 50,000 rows). */
  readonly maxBatchMessages?: number;
  /** Messages held while the database is behind (default 2,000: 200,000 rows); beyond it messages are dropped and counted. */
  readonly maxPendingMessages?: number;
}

export interface ConsumerStats {
  readonly messages: number;
  /** Rows in committed COPYs (naive). */
  readonly rowsCommitted: number;
  readonly droppedMessages: number;
  readonly batches: number;
  /** Commit time − receive time of the oldest row of each batch since the last reset, ms. */
  readonly lagMs: { readonly p50: number; readonly max: number } | null;
  readonly errors: readonly string[];
}

const config = JSON.parse(process.argv[2] ?? '{}') as ConsumerConfig;
const errors: string[] = [];
let messages = 0;
let rowsCommitted = 0;
let droppedMessages = 0;
let batches = 0;
let lags: number[] = [];

/** The rows of one received message as COPY text, and when it arrived. */
interface Pending {
  readonly text: string;
  readonly rows: number;
  readonly rx: number;
}
const pending: Pending[] = [];
let copying = false;
let db: pg.Client | undefined;

const client = mqtt.connect(config.url, {
  clientId: `${config.group}-${config.mode}-${process.pid}`,
  clean: true,
  reconnectPeriod: 0,
  protocolVersion: 4,
});
client.on('error', (e) => errors.push(e.message));

/** (metric timestamp, alias, value) rows as COPY text. */
function toRows(payload: Buffer, rx: number): Pending {
  const decoded = tahu.decodePayload(payload);
  let text = '';
  let rows = 0;
  let lastTs = -1;
  let iso = '';
  for (const m of decoded.metrics ?? []) {
    const ts = toNumber(m.timestamp ?? decoded.timestamp);
    if (ts !== lastTs) {
      lastTs = ts;
      iso = new Date(ts).toISOString();
    }
    text += `${iso}\t${toNumber(m.alias)}\t${m.value as number}\n`;
    rows++;
  }
  return { text, rows, rx };
}

/** One COPY (one transaction) in flight; what arrives meanwhile goes into the next one. */
async function copyPending(): Promise<void> {
  if (copying || pending.length === 0 || !db) return;
  copying = true;
  try {
    while (pending.length > 0) {
      const batch = pending.splice(0, config.maxBatchMessages ?? 500);
      const rows = batch.reduce((n, p) => n + p.rows, 0);
      await pipeline(
        Readable.from([batch.map((p) => p.text).join('')]),
        db.query(copyFrom(`COPY ${config.table} (ts, signal, value) FROM STDIN`)),
      );
      rowsCommitted += rows;
      batches++;
      lags.push(Date.now() - batch[0]!.rx);
    }
  } catch (e) {
    errors.push(e instanceof Error ? e.message : String(e));
  } finally {
    copying = false;
  }
}

/**
 * Decoded on arrival, so decoding overlaps the COPY in flight. Beyond the bound a message is
 * dropped (and counted) before it is decoded: under overload no work goes into rows that are then
 * thrown away, and the heap stays small, so the ingestor stores at its capacity rather than
 * sliding into garbage collection.
 */
client.on('message', (_topic, payload) => {
  messages++;
  if (config.mode === 'count') return;
  if (pending.length >= (config.maxPendingMessages ?? 2_000)) {
    droppedMessages++;
    return;
  }
  try {
    pending.push(toRows(payload, Date.now()));
  } catch (e) {
    errors.push(`decode: ${e instanceof Error ? e.message : String(e)}`);
    return;
  }
  void copyPending();
});

const init = (async () => {
  if (config.mode === 'naive') {
    db = new pg.Client({ connectionString: config.databaseUrl });
    db.on('error', (e) => errors.push(e.message));
    await db.connect();
  }
  await new Promise<void>((resolve, reject) => {
    if (client.connected) resolve();
    client.once('connect', () => resolve());
    client.once('error', reject);
  });
  await client.subscribeAsync(`spBv1.0/${config.group}/DDATA/#`, { qos: 0 });
})();

function lagStats(): ConsumerStats['lagMs'] {
  if (lags.length === 0) return null;
  const sorted = [...lags].sort((a, b) => a - b);
  return { p50: sorted[Math.floor((sorted.length - 1) / 2)]!, max: sorted[sorted.length - 1]! };
}

serveIngestChild(
  init,
  (body) => {
    if (body.type !== 'stats') throw new Error(`unknown request ${body.type}`);
    const stats: ConsumerStats = {
      messages,
      rowsCommitted,
      droppedMessages,
      batches,
      lagMs: lagStats(),
      errors,
    };
    if (body.resetLag === true) lags = [];
    return stats;
  },
  async () => {
    await client.endAsync(true);
    await db?.end();
  },
);

import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { from as copyFrom } from 'pg-copy-streams';
import type {
  MappedSignal,
  SampleStore,
  SignalSeries,
  StaleMark,
  WriteOutcome,
} from '../../app/telemetry/sample-store.ts';
import { COPY_BINARY_HEADER, COPY_BINARY_TRAILER, copyBinaryRow } from './postgres-copy-binary.ts';
import type { Database, Tx } from './postgres-pool.ts';

/** A chunk never spans more than this (the migration's CHECK; history queries prune by it). */
export const CHUNK_MAX_SPAN_MS = 3_600_000;
/** Samples per chunk at most: keeps a row's arrays a few tens of kB. */
const CHUNK_MAX_SAMPLES = 4096;
const MINUTE_MS = 60_000;
const DAY_MS = 86_400_000;
/** First key of the two-int advisory locks that serialise checked writes per signal. */
const HISTORICAL_LOCK_SPACE = 0x4c4f4f4d; // 'LOOM'

const COPY_CHUNKS =
  'COPY signal_chunks (signal_no, t_first, t_last, n, historical, ts, rx, v, s, q) FROM STDIN (FORMAT binary)';

interface Rollup {
  signalNo: number;
  minute: number;
  n: number;
  sum: number;
  min: number;
  max: number;
}

/**
 * The time-series store on PostgreSQL (migration 0008): samples as per-signal chunks written
 * with COPY, one-minute rollups merged in the same transaction, historical replays de-duplicated
 * (and BIRTH values, which every instance receives) de-duplicated by (signal, source timestamp)
 * under a per-signal lock.
 */
export function postgresSampleStore(db: Database): SampleStore {
  return {
    async loadSignals(): Promise<MappedSignal[]> {
      const r = await db.query<{
        signal_no: number;
        id: string;
        equipment_id: string;
        data_type: MappedSignal['dataType'];
        deadband: number;
        source_tag: string;
        source: MappedSignal['source'];
        writable: boolean;
        packml: NonNullable<MappedSignal['packml']> | null;
      }>(
        `SELECT signal_no, id, equipment_id, data_type, coalesce(deadband, 0) AS deadband, source_tag, source,
                writable, packml
           FROM signals ORDER BY signal_no`,
      );
      return r.rows.map((row) => ({
        no: row.signal_no,
        id: row.id,
        equipment: row.equipment_id,
        dataType: row.data_type,
        deadband: row.deadband,
        tag: row.source_tag,
        source: row.source,
        writable: row.writable,
        ...(row.packml !== null ? { packml: row.packml } : {}),
      }));
    },

    async ensurePartitions(now: Date): Promise<void> {
      const today = Math.floor(now.getTime() / DAY_MS) * DAY_MS;
      for (let d = -1; d <= 2; d++) {
        const day = new Date(today + d * DAY_MS).toISOString().slice(0, 10);
        await db.query('SELECT telemetry_ensure_partition($1::date)', [day]);
      }
    },

    async compact(closedBefore: Date, maxGroups: number): Promise<number> {
      const r = await db.query<{ removed: number }>('SELECT telemetry_compact($1, $2) AS removed', [
        closedBefore,
        maxGroups,
      ]);
      return r.rows[0]?.removed ?? 0;
    },

    async dropDaysBefore(keepFrom: Date): Promise<number> {
      const r = await db.query<{ dropped: number }>(
        'SELECT telemetry_drop_partitions_before($1::date) AS dropped',
        [keepFrom.toISOString().slice(0, 10)],
      );
      return r.rows[0]?.dropped ?? 0;
    },

    async write(series: readonly SignalSeries[], stale: readonly StaleMark[]): Promise<WriteOutcome> {
      return db.transaction(
        async (tx) => {
          let duplicates = 0;
          const kept: SignalSeries[] = [];
          const checked = series.filter((s) => s.checked);
          const existing =
            checked.length > 0 ? await storedTimestamps(tx, checked) : new Map<number, Set<number>>();
          for (const s of series) {
            if (!s.checked) {
              kept.push(s);
              continue;
            }
            const unique = withoutStored(s, existing.get(s.signal.no) ?? new Set());
            duplicates += s.ts.length - unique.ts.length;
            if (unique.ts.length > 0) kept.push(unique);
          }
          let stored = 0;
          if (kept.length > 0) {
            const copy = chunkRows(kept);
            stored = copy.samples;
            await pipeline(Readable.from(copy.rows), tx.query(copyFrom(COPY_CHUNKS)));
            await upsertRollups(tx, rollupsOf(kept));
          }
          for (const mark of stale) {
            await tx.query(
              `INSERT INTO signal_stale (signal_no, stale_since, reason)
             SELECT no, $2, $3 FROM unnest($1::int[]) AS no
             ON CONFLICT (signal_no) DO UPDATE
               SET stale_since = greatest(signal_stale.stale_since, EXCLUDED.stale_since),
                   reason = CASE WHEN EXCLUDED.stale_since >= signal_stale.stale_since
                                 THEN EXCLUDED.reason ELSE signal_stale.reason END`,
              [[...mark.signalNos].sort((a, b) => a - b), new Date(mark.at), mark.reason],
            );
          }
          return { stored, duplicates };
        },
        { copy: true },
      );
    },
  };
}

/**
 * Source timestamps already stored for the checked series' signals in their time ranges. Takes
 * a transaction-scoped lock per signal first (in signal order, so instances never deadlock), so
 * two instances receiving the same data cannot both decide it is new.
 */
async function storedTimestamps(tx: Tx, checked: readonly SignalSeries[]): Promise<Map<number, Set<number>>> {
  const ranges = new Map<number, { lo: number; hi: number }>();
  for (const s of checked) {
    let lo = Number.POSITIVE_INFINITY;
    let hi = Number.NEGATIVE_INFINITY;
    for (const t of s.ts) {
      if (t < lo) lo = t;
      if (t > hi) hi = t;
    }
    const r = ranges.get(s.signal.no);
    ranges.set(s.signal.no, r ? { lo: Math.min(r.lo, lo), hi: Math.max(r.hi, hi) } : { lo, hi });
  }
  const nos = [...ranges.keys()].sort((a, b) => a - b);
  await tx.query('SELECT pg_advisory_xact_lock($1, no) FROM unnest($2::int[]) AS no ORDER BY no', [
    HISTORICAL_LOCK_SPACE,
    nos,
  ]);
  const r = await tx.query<{ signal_no: number; t: number }>(
    `SELECT c.signal_no, u.t
       FROM unnest($1::int[], $2::timestamptz[], $3::timestamptz[]) AS r (no, lo, hi)
       JOIN signal_chunks c ON c.signal_no = r.no
                           AND c.t_first <= r.hi AND c.t_last >= r.lo
                           AND c.t_first >= r.lo - interval '1 hour'
       CROSS JOIN LATERAL unnest(c.ts) AS u (t)
      WHERE u.t BETWEEN (extract(epoch FROM r.lo) * 1000)::bigint AND (extract(epoch FROM r.hi) * 1000)::bigint`,
    [nos, nos.map((n) => new Date(ranges.get(n)!.lo)), nos.map((n) => new Date(ranges.get(n)!.hi))],
  );
  const out = new Map<number, Set<number>>();
  for (const row of r.rows) {
    let set = out.get(row.signal_no);
    if (!set) out.set(row.signal_no, (set = new Set()));
    set.add(row.t);
  }
  return out;
}

/** The series without samples whose timestamp is stored or repeated earlier in the series. */
function withoutStored(s: SignalSeries, stored: Set<number>): SignalSeries {
  const seen = new Set(stored);
  const out: SignalSeries = { ...s, ts: [], rx: [], v: [], s: [], q: [], allGood: true };
  const isString = s.signal.dataType === 'string';
  for (let i = 0; i < s.ts.length; i++) {
    const t = s.ts[i]!;
    if (seen.has(t)) continue;
    seen.add(t);
    out.ts.push(t);
    out.rx.push(s.rx[i]!);
    if (isString) out.s.push(s.s[i] ?? null);
    else out.v.push(s.v[i] ?? null);
    const q = s.q[i] ?? 0;
    out.q.push(q);
    if (q !== 0) out.allGood = false;
  }
  return out;
}

/** Indices of a series in source-timestamp order (stable; usually already in order). */
function order(ts: readonly number[]): number[] {
  const idx = ts.map((_, i) => i);
  for (let i = 1; i < ts.length; i++) {
    if (ts[i]! < ts[i - 1]!) return idx.sort((a, b) => ts[a]! - ts[b]! || a - b);
  }
  return idx;
}

/** Binary COPY rows (one per chunk) for all series, split by span and size. */
function chunkRows(series: readonly SignalSeries[]): { rows: Buffer[]; samples: number } {
  const rows: Buffer[] = [COPY_BINARY_HEADER];
  let samples = 0;
  for (const s of series) {
    const idx = order(s.ts);
    const text =
      s.signal.dataType === 'string' ? s.s.map((x) => (x === null ? null : Buffer.from(x, 'utf8'))) : null;
    let start = 0;
    while (start < idx.length) {
      const t0 = s.ts[idx[start]!]!;
      let end = start + 1;
      while (
        end < idx.length &&
        end - start < CHUNK_MAX_SAMPLES &&
        s.ts[idx[end]!]! - t0 <= CHUNK_MAX_SPAN_MS
      )
        end++;
      const index = idx.slice(start, end);
      let good = true;
      for (const i of index) if ((s.q[i] ?? 0) !== 0) good = false;
      rows.push(
        copyBinaryRow([
          { type: 'int4', value: s.signal.no },
          { type: 'timestamptz', ms: t0 },
          { type: 'timestamptz', ms: s.ts[idx[end - 1]!]! },
          { type: 'int4', value: end - start },
          { type: 'bool', value: s.historical },
          { type: 'int8[]', values: s.ts, index },
          { type: 'int8[]', values: s.rx, index },
          text === null ? { type: 'float8[]', values: s.v, index } : { type: 'null' },
          text === null ? { type: 'null' } : { type: 'text[]', values: text, index },
          good ? { type: 'null' } : { type: 'int2[]', values: s.q, index },
        ]),
      );
      samples += end - start;
      start = end;
    }
  }
  rows.push(COPY_BINARY_TRAILER);
  return { rows, samples };
}

/** One-minute aggregates of good, non-null number/boolean values, per signal and minute. */
function rollupsOf(series: readonly SignalSeries[]): Rollup[] {
  const out: Rollup[] = [];
  for (const s of series) {
    if (s.signal.dataType === 'string') continue;
    // Samples arrive mostly in time order: aggregate runs of one minute, merge repeats below.
    let current: Rollup | null = null;
    for (let i = 0; i < s.ts.length; i++) {
      const v = s.v[i];
      if (v === null || v === undefined || (s.q[i] ?? 0) !== 0) continue;
      const minute = s.ts[i]! - (s.ts[i]! % MINUTE_MS);
      if (current === null || current.minute !== minute) {
        current = { signalNo: s.signal.no, minute, n: 0, sum: 0, min: v, max: v };
        out.push(current);
      }
      current.n++;
      current.sum += v;
      if (v < current.min) current.min = v;
      if (v > current.max) current.max = v;
    }
  }
  out.sort((a, b) => a.signalNo - b.signalNo || a.minute - b.minute);
  const merged: Rollup[] = [];
  for (const r of out) {
    const last = merged[merged.length - 1];
    if (last !== undefined && last.signalNo === r.signalNo && last.minute === r.minute) {
      last.n += r.n;
      last.sum += r.sum;
      if (r.min < last.min) last.min = r.min;
      if (r.max > last.max) last.max = r.max;
    } else merged.push(r);
  }
  return merged;
}

/** Merges rollups additively, in key order so concurrent instances lock rows in one order. */
async function upsertRollups(tx: Tx, rollups: readonly Rollup[]): Promise<void> {
  if (rollups.length === 0) return;
  await tx.query(
    `INSERT INTO signal_rollups_1m AS r (signal_no, minute, n, sum, min, max)
     SELECT * FROM unnest($1::int[], $2::timestamptz[], $3::int[], $4::float8[], $5::float8[], $6::float8[])
     ON CONFLICT (signal_no, minute) DO UPDATE
       SET n = r.n + EXCLUDED.n, sum = r.sum + EXCLUDED.sum,
           min = least(r.min, EXCLUDED.min), max = greatest(r.max, EXCLUDED.max)`,
    [
      rollups.map((r) => r.signalNo),
      rollups.map((r) => new Date(r.minute)),
      rollups.map((r) => r.n),
      rollups.map((r) => r.sum),
      rollups.map((r) => r.min),
      rollups.map((r) => r.max),
    ],
  );
}

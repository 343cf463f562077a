import type {
  BucketPoint,
  LatestValue,
  RawPoint,
  SignalHistoryStore,
  SignalInfo,
} from '../../app/telemetry/signal-history.ts';
import { QUALITY_OF_CODE } from '../../app/telemetry/sample-store.ts';
import type { SampleValue } from '../../domain/signal/sample.ts';
import type { Database } from './postgres-pool.ts';

/**
 * Chunks overlapping [from, to): `t_first >= from - 1 hour` lets PostgreSQL prune partitions and
 * bound the index range, since no chunk spans more than an hour (migration 0008).
 */
const OVERLAPPING = `c.signal_no = $1 AND c.t_first < $3 AND c.t_last >= $2 AND c.t_first >= $2::timestamptz - interval '1 hour'`;

const valueOf = (info: SignalInfo, v: number | null, s: string | null): SampleValue => {
  if (info.dataType === 'string') return s;
  if (v === null) return null;
  return info.dataType === 'boolean' ? v !== 0 : v;
};

/** History reads on PostgreSQL (migration 0008). */
export function postgresSignalHistory(db: Database): SignalHistoryStore {
  return {
    async signal(id) {
      const r = await db.query<{
        signal_no: number;
        id: string;
        equipment_id: string;
        data_type: SignalInfo['dataType'];
      }>('SELECT signal_no, id, equipment_id, data_type FROM signals WHERE id = $1', [id]);
      const row = r.rows[0];
      return row
        ? { no: row.signal_no, id: row.id, equipment: row.equipment_id, dataType: row.data_type }
        : null;
    },

    async countGood(signal, from, to) {
      const r = await db.query<{ n: number }>(
        `SELECT coalesce(sum(n), 0)::int8 AS n FROM signal_rollups_1m
          WHERE signal_no = $1 AND minute >= date_trunc('minute', $2::timestamptz) AND minute < $3`,
        [signal.no, new Date(from), new Date(to)],
      );
      return r.rows[0]?.n ?? 0;
    },

    async raw(signal, from, to, limit) {
      const r = await db.query<{
        t: number;
        v: number | null;
        s: string | null;
        q: number | null;
        historical: boolean;
      }>(
        `SELECT u.t, u.v, u.s, u.q, c.historical
           FROM signal_chunks c
           CROSS JOIN LATERAL unnest(c.ts, coalesce(c.v, array_fill(NULL::float8, ARRAY[c.n])),
                                     coalesce(c.s, array_fill(NULL::text, ARRAY[c.n])), c.q) AS u (t, v, s, q)
          WHERE ${OVERLAPPING} AND u.t >= $4 AND u.t < $5
          ORDER BY u.t
          LIMIT $6`,
        [signal.no, new Date(from), new Date(to), from, to, limit],
      );
      return r.rows.map((row): RawPoint => ({
        t: row.t,
        v: valueOf(signal, row.v, row.s),
        q: QUALITY_OF_CODE[row.q ?? 0] ?? 'bad',
        historical: row.historical,
      }));
    },

    async bucketsFromSamples(signal, from, to, bucketMs) {
      const r = await db.query<BucketRow>(
        `SELECT $4 + (u.t - $4) / $6 * $6 AS t, avg(u.v) AS avg, min(u.v) AS min, max(u.v) AS max, count(*)::int AS n
           FROM signal_chunks c
           CROSS JOIN LATERAL unnest(c.ts, c.v, c.q) AS u (t, v, q)
          WHERE ${OVERLAPPING} AND u.t >= $4 AND u.t < $5 AND u.v IS NOT NULL AND coalesce(u.q, 0) = 0
          GROUP BY 1 ORDER BY 1`,
        [signal.no, new Date(from), new Date(to), from, to, bucketMs],
      );
      return r.rows.map(toBucket);
    },

    async bucketsFromRollups(signal, from, to, bucketMs) {
      const start = Math.floor(from / 60_000) * 60_000;
      const r = await db.query<BucketRow>(
        `SELECT $4::int8 + ((extract(epoch FROM minute) * 1000)::int8 - $4::int8) / $5 * $5 AS t,
                sum(sum) / sum(n) AS avg, min(min) AS min, max(max) AS max, sum(n)::int AS n
           FROM signal_rollups_1m
          WHERE signal_no = $1 AND minute >= $2 AND minute < $3
          GROUP BY 1 ORDER BY 1`,
        [signal.no, new Date(start), new Date(to), start, bucketMs],
      );
      return r.rows.map(toBucket);
    },

    async latestOfEquipment(equipmentId) {
      const exists = await db.query('SELECT 1 FROM equipment WHERE id = $1', [equipmentId]);
      if (exists.rowCount === 0) return null;
      const r = await db.query<{
        id: string;
        data_type: SignalInfo['dataType'];
        t: number | null;
        rx: number | null;
        v: number | null;
        s: string | null;
        q: number | null;
        stale_since: Date | null;
        reason: string | null;
      }>(
        `SELECT s.id, s.data_type, l.t, l.rx, l.v, l.s, l.q, st.stale_since, st.reason
           FROM signals s
           LEFT JOIN LATERAL (
             SELECT c.ts[c.n] AS t, c.rx[c.n] AS rx, c.v[c.n] AS v, c.s[c.n] AS s, c.q[c.n] AS q
               FROM signal_chunks c
              WHERE c.signal_no = s.signal_no AND NOT c.historical
              ORDER BY c.t_first DESC
              LIMIT 1) l ON true
           LEFT JOIN signal_stale st ON st.signal_no = s.signal_no
          WHERE s.equipment_id = $1
          ORDER BY s.id`,
        [equipmentId],
      );
      return r.rows.map((row): LatestValue => {
        const info = { no: 0, id: row.id, equipment: equipmentId, dataType: row.data_type };
        const stale = row.stale_since !== null && (row.t === null || row.stale_since.getTime() >= row.t);
        return {
          signal: row.id,
          dataType: row.data_type,
          t: row.t,
          receivedAt: row.rx,
          value: row.t === null ? null : valueOf(info, row.v, row.s),
          quality: row.t === null ? null : stale ? 'bad' : (QUALITY_OF_CODE[row.q ?? 0] ?? 'bad'),
          stale,
          staleReason: stale ? row.reason : null,
        };
      });
    },
  };
}

interface BucketRow {
  t: number;
  avg: number;
  min: number;
  max: number;
  n: number;
}

const toBucket = (r: BucketRow): BucketPoint => ({
  t: Number(r.t),
  avg: r.avg,
  min: r.min,
  max: r.max,
  n: r.n,
});

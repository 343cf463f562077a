/**
 * PostgreSQL side of the ingest bench's references: the plain (ts, signal, value) table, a cheap
 * exact row count of it while it grows, and the raw COPY reference.
 */
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { tahu, toNumber, type PatchableMessage } from './ingest-sparkplug.ts';

export const PLAIN_TABLE = 'ingest_plain';

/** The table a naive ingestor writes: a row per value and the index every history query needs. */
export async function createPlainTable(db: pg.Client): Promise<void> {
  await db.query(`DROP TABLE IF EXISTS ${PLAIN_TABLE}`);
  await db.query(`CREATE TABLE ${PLAIN_TABLE} (ts timestamptz NOT NULL, signal int NOT NULL, value float8)`);
  await db.query(`CREATE INDEX ${PLAIN_TABLE}_signal_ts ON ${PLAIN_TABLE} (signal, ts)`);
}

/**
 * Rows committed so far in a table that one writer only appends to (no UPDATE, no DELETE), read
 * without scanning it all: pages below the last page seen are complete, so only the rows from
 * that page on are counted again (a TID range scan, PostgreSQL 14+). A `count(*)` of millions of
 * rows every window would take CPU from what is measured. {@link verify} compares with `count(*)`.
 */
export function appendOnlyCounter(db: pg.Client, table: string) {
  let below = 0;
  let fromPage = 0;
  let last = 0;
  return {
    async count(): Promise<number> {
      const r = await db.query<{ page: string; n: string }>(
        `SELECT (ctid::text::point)[0]::bigint AS page, count(*) AS n
           FROM ${table} WHERE ctid >= '(${fromPage},0)'::tid GROUP BY 1`,
      );
      let total = below;
      let maxPage = fromPage;
      for (const row of r.rows) {
        total += Number(row.n);
        maxPage = Math.max(maxPage, Number(row.page));
      }
      for (const row of r.rows) if (Number(row.page) < maxPage) below += Number(row.n);
      fromPage = maxPage;
      last = total;
      return total;
    },
    /**
     * Null when the running count matches `count(*)`, else both. One snapshot for both: a COPY
     * sent before its writer disconnected may still commit after.
     */
    async verify(): Promise<string | null> {
      await db.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
      try {
        await this.count();
        const r = await db.query<{ n: string }>(`SELECT count(*) AS n FROM ${table}`);
        const n = Number(r.rows[0]!.n);
        return n === last ? null : `row counter ${last} but count(*) ${n}`;
      } finally {
        await db.query('COMMIT');
      }
    },
  };
}

/**
 * The rows the DDATA messages carry, as COPY text in batches of about `batchRows` rows: (metric
 * timestamp, alias, value). Built once before timing; the COPY reference sends them round.
 */
export function copyBatches(messages: readonly PatchableMessage[], batchRows: number): string[] {
  const batches: string[] = [];
  let text = '';
  let rows = 0;
  let ts = Date.now();
  for (const msg of messages) {
    const decoded = tahu.decodePayload(msg.payload);
    const iso = new Date(ts++).toISOString();
    for (const m of decoded.metrics ?? []) {
      text += `${iso}\t${toNumber(m.alias)}\t${m.value as number}\n`;
      rows++;
    }
    if (rows >= batchRows) {
      batches.push(text);
      text = '';
      rows = 0;
    }
  }
  if (rows > 0) batches.push(text);
  return batches;
}

/** COPYs `batches` round and round on one connection, one COPY (one transaction) at a time, until stopped. */
export function copyLoop(db: pg.Client, batches: readonly string[]) {
  let running = true;
  let error: Error | undefined;
  const done = (async () => {
    for (let i = 0; running; i++) {
      await pipeline(
        Readable.from([batches[i % batches.length]!]),
        db.query(copyFrom(`COPY ${PLAIN_TABLE} (ts, signal, value) FROM STDIN`)),
      );
    }
  })().catch((e: unknown) => {
    error = e instanceof Error ? e : new Error(String(e));
  });
  return {
    async stop(): Promise<void> {
      running = false;
      await done;
      if (error) throw error;
    },
  };
}

import type { Socket } from 'node:net';
import pg from 'pg';
import type { Logger } from 'pino';
import { discardDeferred, flushDeferred } from './postgres-deferred-writes.ts';

export type Queryable = Pick<pg.PoolClient, 'query'>;

/** A transaction handle. Repositories take it explicitly; none reaches for a global pool (STYLE.md, Immich lesson). */
export type Tx = pg.PoolClient;

export interface Database {
  readonly pool: pg.Pool;
  /**
   * Runs `fn` in one transaction; commits on return, rolls back on throw. Connections are
   * pipelined (ADR 0011): BEGIN goes out with the transaction's first statement, the deferred
   * writes with COMMIT. `{ copy: true }` runs it on a connection that is not pipelined, which a
   * COPY stream needs (node-postgres refuses custom query classes on a pipelined connection).
   */
  transaction<T>(fn: (tx: Tx) => Promise<T>, opts?: { copy?: boolean }): Promise<T>;
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(
    text: string,
    values?: unknown[],
  ): Promise<pg.QueryResult<R>>;
  close(): Promise<void>;
  /**
   * What it takes to open another pool on the same database with the same session settings (a
   * worker thread's, ADR 0017). A method, so the URL and its password stay out of any object a
   * log call might serialise.
   */
  connection(): DatabaseConnection;
}

export interface DatabaseConnection {
  readonly url: string;
  readonly schema?: string | undefined;
  readonly timeZone?: string | undefined;
}

// int8 (bigint) and numeric come back as strings by default; Loom keeps ids and quantities exact,
// so numeric stays a string at the edge and is parsed where its scale is known. int8 counts fit
// in a double for any realistic plant.
pg.types.setTypeParser(pg.types.builtins.INT8, (v) => Number.parseInt(v, 10));

/**
 * Buffers what is written to the client's socket until the event loop has run every pending
 * callback and promise continuation (setImmediate), then sends it in one write. node-postgres
 * corks around each query itself; nested corks only flush when the outermost is released.
 */
function corkUntilIdle(client: pg.PoolClient): void {
  const stream = (client as unknown as { connection?: { stream?: Partial<Socket> } }).connection?.stream;
  if (!stream?.cork || !stream.uncork) return;
  stream.cork();
  setImmediate(() => stream.uncork!());
}

export function createDatabase(
  url: string,
  opts: { poolSize: number; logger: Logger; schema?: string; timeZone?: string },
): Database {
  // The session time zone is the plant's: shift_of() and date arithmetic in SQL read plant-local
  // times of day. Stored timestamps are timestamptz and unaffected.
  const settings = [
    ...(opts.schema ? [`-c search_path=${opts.schema},public`] : []),
    ...(opts.timeZone ? [`-c TimeZone=${opts.timeZone}`] : []),
  ];
  const newPool = (pipeline: boolean, max: number) => {
    const pool = new pg.Pool({
      connectionString: url,
      max,
      connectionTimeoutMillis: 10_000,
      idleTimeoutMillis: 30_000,
      application_name: 'loom',
      // Statements are written without waiting for the previous answer (node-postgres ≥ 8.23, each
      // with its own Sync): a transaction's dependent statements still wait for their results,
      // but BEGIN, COMMIT and independent reads share a round trip (ADR 0011).
      pipeline,
      ...(settings.length ? { options: settings.join(' ') } : {}),
    });
    // node-postgres emits 'error' on idle clients when the server goes away; unhandled, it would
    // kill the process (RELIABILITY.md, security controls). The next query reconnects.
    pool.on('error', (e) =>
      opts.logger.error({ err: e }, 'PostgreSQL connection lost (idle client); will reconnect'),
    );
    return pool;
  };
  const pool = newPool(true, opts.poolSize);
  // COPY streams (telemetry chunks) need a connection that is not pipelined; one writer at a time
  // uses it, so it is small, and it is opened only when first needed.
  let copyPool: pg.Pool | null = null;

  return {
    pool,
    async transaction(fn, o) {
      const pipelined = !o?.copy;
      const client = await (pipelined ? pool : (copyPool ??= newPool(false, 2))).connect();
      try {
        // Pipelined, BEGIN is held in the socket until the use case has issued what it can without
        // waiting for an answer (its first statements): one write for all of them.
        if (pipelined) corkUntilIdle(client);
        const begin = client.query('BEGIN');
        if (pipelined) begin.catch(() => undefined);
        else await begin;
        const result = await fn(client);
        await begin;
        // The deferred writes and COMMIT go out together. Should the writes fail, the COMMIT
        // arrives in an aborted transaction and PostgreSQL rolls it back (answering ROLLBACK).
        if (pipelined) corkUntilIdle(client);
        const flushed = flushDeferred(client);
        if (pipelined) {
          const committed = client.query('COMMIT');
          const [f, c] = await Promise.allSettled([flushed, committed]);
          if (f.status === 'rejected') throw f.reason;
          if (c.status === 'rejected') throw c.reason;
          if (c.value.command !== 'COMMIT') throw new Error(`COMMIT answered ${c.value.command}`);
        } else {
          await flushed;
          const c = await client.query('COMMIT');
          if (c.command !== 'COMMIT') throw new Error(`COMMIT answered ${c.command}`);
        }
        return result;
      } catch (e) {
        discardDeferred(client);
        await client.query('ROLLBACK').catch(() => undefined);
        throw e;
      } finally {
        client.release();
      }
    },
    query: (text, values) => pool.query(text, values),
    close: async () => {
      await Promise.all([pool.end(), copyPool?.end()]);
    },
    connection: () => ({ url, schema: opts.schema, timeZone: opts.timeZone }),
  };
}

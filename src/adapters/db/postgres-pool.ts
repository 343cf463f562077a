import pg from 'pg';
import type { Logger } from 'pino';
import { discardDeferred, flushDeferred } from './postgres-deferred-writes.ts';

export type Queryable = Pick<pg.PoolClient, 'query'>;

/** A transaction handle. Repositories take it explicitly; none reaches for a global pool (STYLE.md, Immich lesson). */
export type Tx = pg.PoolClient;

export interface Database {
  readonly pool: pg.Pool;
  /** Runs `fn` in one transaction; commits on return, rolls back on throw. */
  transaction<T>(fn: (tx: Tx) => Promise<T>): Promise<T>;
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(
    text: string,
    values?: unknown[],
  ): Promise<pg.QueryResult<R>>;
  close(): Promise<void>;
}

// int8 (bigint) and numeric come back as strings by default; Loom keeps ids and quantities exact,
// so numeric stays a string at the edge and is parsed where its scale is known. int8 counts fit
// in a double for any realistic plant.
pg.types.setTypeParser(pg.types.builtins.INT8, (v) => Number.parseInt(v, 10));

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
  const pool = new pg.Pool({
    connectionString: url,
    max: opts.poolSize,
    connectionTimeoutMillis: 10_000,
    idleTimeoutMillis: 30_000,
    application_name: 'loom',
    ...(settings.length ? { options: settings.join(' ') } : {}),
  });
  // node-postgres emits 'error' on idle clients when the server goes away; unhandled, it would
  // kill the process (RELIABILITY.md, security controls). The next query reconnects.
  pool.on('error', (e) =>
    opts.logger.error({ err: e }, 'PostgreSQL connection lost (idle client); will reconnect'),
  );

  return {
    pool,
    async transaction(fn) {
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        const result = await fn(client);
        await flushDeferred(client);
        await client.query('COMMIT');
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
    close: () => pool.end(),
  };
}

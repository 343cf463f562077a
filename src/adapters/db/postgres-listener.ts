import pg from 'pg';
import type { Database } from './postgres-pool.ts';

export interface ListenerLog {
  warn(details: object, message: string): void;
}

export interface PostgresListener {
  stop(): Promise<void>;
}

/**
 * LISTENs on `channel` on its own connection (a pooled one would be handed back and lose the
 * subscription) and calls `onNotify` for each notification. When the connection is lost it calls
 * `onLost` (notifications may be missed from then on), reconnects with backoff and calls
 * `onNotify` once, since notifications sent meanwhile are gone.
 */
export function listenPostgres(
  db: Database,
  channel: string,
  onNotify: (payload: string) => void,
  log: ListenerLog,
  opts: { onLost?: () => void } = {},
): Promise<PostgresListener> {
  let client: pg.Client | null = null;
  let stopped = false;
  let retry: NodeJS.Timeout | null = null;
  let backoff = 250;

  const connect = async (): Promise<void> => {
    const c = new pg.Client(db.pool.options);
    // Before LISTEN is up, a failure rejects connect() instead (the caller or the retry handles it).
    let established = false;
    let lost = false;
    const onLost = (e: Error | null) => {
      if (!established || lost || stopped) return;
      lost = true;
      log.warn({ err: e ?? undefined, channel }, 'LISTEN connection lost; reconnecting');
      c.removeAllListeners('notification');
      void c.end().catch(() => undefined);
      if (client === c) client = null;
      opts.onLost?.();
      schedule();
    };
    c.on('error', onLost);
    // The server may also close the connection without an error event (a shutdown, a terminated
    // backend): either way, notifications stop.
    c.on('end', () => onLost(null));
    c.on('notification', (n) => {
      if (n.channel === channel) onNotify(n.payload ?? '');
    });
    try {
      await c.connect();
      await c.query(`LISTEN ${pg.escapeIdentifier(channel)}`);
    } catch (e) {
      void c.end().catch(() => undefined);
      throw e;
    }
    if (stopped) {
      await c.end();
      return;
    }
    client = c;
    established = true;
    backoff = 250;
  };

  const schedule = () => {
    if (stopped || retry !== null) return;
    retry = setTimeout(() => {
      retry = null;
      connect().then(
        () => onNotify(''),
        (e: unknown) => {
          log.warn({ err: e, channel }, 'LISTEN reconnect failed; retrying');
          backoff = Math.min(backoff * 2, 10_000);
          schedule();
        },
      );
    }, backoff);
    retry.unref();
  };

  return connect().then(() => ({
    async stop() {
      stopped = true;
      if (retry) clearTimeout(retry);
      const c = client;
      client = null;
      if (c) await c.end().catch(() => undefined);
    },
  }));
}

import pg from 'pg';

/** Per-statement counts and time, collected by wrapping pg's Client#query in a profiling run. */
export interface QueryStat {
  readonly sql: string;
  count: number;
  totalMs: number;
}

/**
 * Wraps `pg.Client.prototype.query` (pool clients included) to count statements and their
 * round-trip time. Used only with `--profile`: it changes no behaviour but adds a little overhead.
 */
export function collectQueryStats(): { get(): QueryStat[]; reset(): void } {
  const stats = new Map<string, QueryStat>();
  const proto = pg.Client.prototype as unknown as { query: (...args: unknown[]) => unknown };
  const original = proto.query;
  proto.query = function (this: unknown, ...args: unknown[]) {
    const first = args[0];
    const text =
      typeof first === 'string'
        ? first
        : typeof first === 'object' && first !== null && 'text' in first
          ? String(first.text)
          : '?';
    const sql = text.replace(/\s+/g, ' ').trim().slice(0, 110);
    const started = performance.now();
    const result = original.apply(this, args);
    const done = () => {
      const s = stats.get(sql) ?? { sql, count: 0, totalMs: 0 };
      s.count++;
      s.totalMs += performance.now() - started;
      stats.set(sql, s);
    };
    if (result instanceof Promise) {
      result.then(done, done);
    } else {
      done();
    }
    return result;
  };
  return {
    get: () => [...stats.values()].sort((a, b) => b.totalMs - a.totalMs),
    reset: () => stats.clear(),
  };
}

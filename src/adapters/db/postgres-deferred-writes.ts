import type pg from 'pg';
import { prepared } from './postgres-prepared.ts';

/**
 * Writes of a transaction that nothing reads back before commit, buffered per transaction and sent
 * in ONE statement just before COMMIT instead of one round trip each (ADR 0006, ADR 0011):
 *
 * - inserts: audit entries, outbox events, activities, production events;
 * - updates of rows whose new values the caller already knows and that no one else can change
 *   before the commit, because the caller holds the lock that every writer of them takes first
 *   (an order's operations, under the order's row lock).
 *
 * Order is kept: rows of a table are inserted in the order they were added, so outbox ids still
 * follow the order of events. Two updates of one row merge (the later value of a column wins).
 *
 * A deferred write is invisible to the transaction's own queries until the flush: only add tables
 * here that the same transaction never reads after writing them.
 */
export type DeferredTable = 'audit_log' | 'outbox_events' | 'operation_activities' | 'production_events';
/** Tables whose rows may be updated at commit; each has a bigint primary key `id`. */
export type DeferredUpdateTable = 'order_operations';

interface Buffer {
  readonly inserts: Map<DeferredTable, { columns: string[]; rows: Record<string, unknown>[] }>;
  readonly updates: Map<DeferredUpdateTable, Map<number, Record<string, unknown>>>;
}

const buffers = new WeakMap<pg.PoolClient, Buffer>();

function bufferOf(client: pg.PoolClient): Buffer {
  let buffer = buffers.get(client);
  if (!buffer) {
    buffer = { inserts: new Map(), updates: new Map() };
    buffers.set(client, buffer);
  }
  return buffer;
}

export function deferInsert(client: pg.PoolClient, table: DeferredTable, row: Record<string, unknown>): void {
  const inserts = bufferOf(client).inserts;
  const entry = inserts.get(table);
  if (entry) entry.rows.push(row);
  else inserts.set(table, { columns: Object.keys(row), rows: [row] });
}

/** Sets `patch` (column → value; undefined values are skipped) on row `id` of `table` at commit. */
export function deferUpdate(
  client: pg.PoolClient,
  table: DeferredUpdateTable,
  id: number,
  patch: Record<string, unknown>,
): void {
  const updates = bufferOf(client).updates;
  let rows = updates.get(table);
  if (!rows) {
    rows = new Map();
    updates.set(table, rows);
  }
  const row = rows.get(id) ?? {};
  for (const [column, value] of Object.entries(patch)) if (value !== undefined) row[column] = value;
  rows.set(id, row);
}

/**
 * For the rest of the transaction (only the flush and COMMIT follow), prepared statements run their
 * cached generic plan. PostgreSQL otherwise kept choosing a custom plan for a write statement that
 * passes rows as JSON, which means planning it again at every commit: 0.26 of about 1 ms of server
 * time per completion (pg_stat_statements, session 12). Its generic plan finds the rows by primary
 * key (tested). A statement with parameters only has nothing a custom plan could do better, and
 * PostgreSQL settles on its generic plan after five executions by itself (tested), so it goes
 * without this extra statement.
 */
const GENERIC_PLANS = 'SET LOCAL plan_cache_mode = force_generic_plan';

/**
 * Writes every buffered row of the transaction in one statement (resolves at once when nothing is
 * buffered). The statement is written before this returns, so a query issued right after it (the
 * pipelined COMMIT) follows it on the wire; so is the SET before it, in the same write.
 */
export function flushDeferred(client: pg.PoolClient): Promise<unknown> {
  const built = buildDeferred(client);
  if (!built) return Promise.resolve();
  if (!built.json) return client.query(built.statement);
  const generic = client.query(GENERIC_PLANS);
  return Promise.all([generic, client.query(built.statement)]);
}

/**
 * The jsonb columns of the deferrable tables (the other columns take text or numbers as they are).
 * A value for one of these is written as its JSON text, whatever it is (object, array, string,
 * number), as `jsonb_populate_recordset` did; null stays SQL NULL. A test compares this list with
 * the catalog.
 */
export const JSONB_COLUMNS: Readonly<Record<DeferredTable | DeferredUpdateTable, readonly string[]>> = {
  audit_log: ['old_value', 'new_value', 'signature'],
  outbox_events: ['payload'],
  operation_activities: ['detail'],
  production_events: [],
  order_operations: ['parameters', 'bom', 'characteristics'],
};

/**
 * Up to this many rows of one table are written as parameters (a VALUES list, or one UPDATE by
 * primary key per row); more go as one JSON array through `jsonb_populate_recordset`. Parameters
 * spare PostgreSQL a function scan, a JSON parse and (for updates) a hash join per table, about a
 * fifth of its CPU on a completion (perf, session 16); the limit keeps the number of statement
 * shapes, each prepared on every connection, small.
 */
export const MAX_PARAMETER_ROWS = 4;

/** A value as a statement parameter: JSON text for a jsonb column, Dates as ISO text. */
function parameter(value: unknown, json: boolean): unknown {
  if (value === undefined || value === null) return null;
  if (json) return JSON.stringify(value);
  return value instanceof Date ? value.toISOString() : value;
}

/**
 * The one statement that writes every buffered row of the transaction, which it takes out of the
 * buffer (undefined when nothing is buffered). Exported for the plan test; use flushDeferred.
 */
export function takeDeferred(client: pg.PoolClient): pg.QueryConfig | undefined {
  return buildDeferred(client)?.statement;
}

/** The write statement, and whether a table's rows go in it as JSON (see GENERIC_PLANS). */
function buildDeferred(client: pg.PoolClient): { statement: pg.QueryConfig; json: boolean } | undefined {
  const buffer = buffers.get(client);
  buffers.delete(client);
  if (!buffer) return undefined;
  const parts: string[] = [];
  const values: unknown[] = [];
  // Whether a table's rows go as one JSON array (more than MAX_PARAMETER_ROWS of them).
  let jsonRows = false;
  const param = (value: unknown, jsonColumn: boolean) => {
    values.push(parameter(value, jsonColumn));
    return `$${values.length}`;
  };
  for (const [table, rows] of buffer.updates) {
    const jsonb = JSONB_COLUMNS[table] ?? [];
    if (rows.size <= MAX_PARAMETER_ROWS) {
      // One UPDATE per row, found by primary key; PostgreSQL types each parameter by its column.
      for (const [id, patch] of rows) {
        const columns = Object.keys(patch).sort();
        const sets = columns.map((c) => `${c} = ${param(patch[c], jsonb.includes(c))}`).join(', ');
        parts.push(`UPDATE ${table} SET ${sets} WHERE id = ${param(id, false)}`);
      }
      continue;
    }
    // One UPDATE per set of columns; every row appears in exactly one of them.
    jsonRows = true;
    const byColumns = new Map<string, Record<string, unknown>[]>();
    for (const [id, patch] of rows) {
      const key = Object.keys(patch).sort().join(',');
      const group = byColumns.get(key);
      const row = { ...patch, id };
      if (group) group.push(row);
      else byColumns.set(key, [row]);
    }
    for (const [key, group] of byColumns) {
      const sets = key
        .split(',')
        .map((c) => `${c} = x.${c}`)
        .join(', ');
      // The rows are found by primary key (`t.id = ANY(…)`) whatever the planner thinks of the
      // table's size. A plain join with jsonb_populate_recordset (estimated 100 rows) was planned
      // as a hash join over a sequential scan of the whole table while it was small, and that
      // generic plan stayed cached on the connection as the table grew: every completion read
      // every operation (session 11).
      values.push(
        JSON.stringify(group),
        group.map((row) => row.id),
      );
      parts.push(
        `UPDATE ${table} AS t SET ${sets} FROM jsonb_populate_recordset(NULL::${table}, $${values.length - 1}::jsonb) AS x WHERE t.id = ANY($${values.length}::bigint[]) AND t.id = x.id`,
      );
    }
  }
  for (const [table, { columns, rows }] of buffer.inserts) {
    const cols = columns.join(', ');
    if (rows.length <= MAX_PARAMETER_ROWS) {
      // PostgreSQL types each parameter of an INSERT's VALUES list by its target column.
      const jsonb = columns.map((c) => JSONB_COLUMNS[table].includes(c));
      const tuples = rows.map((row) => `(${columns.map((c, i) => param(row[c], jsonb[i]!)).join(', ')})`);
      parts.push(`INSERT INTO ${table} (${cols}) VALUES ${tuples.join(', ')}`);
      continue;
    }
    jsonRows = true;
    values.push(JSON.stringify(rows));
    // jsonb_populate_recordset types every field by the table's own row type.
    parts.push(
      `INSERT INTO ${table} (${cols}) SELECT ${cols} FROM jsonb_populate_recordset(NULL::${table}, $${values.length}::jsonb)`,
    );
  }
  if (parts.length === 0) return undefined;
  const last = parts.pop()!;
  const sql = parts.length ? `WITH ${parts.map((p, i) => `w${i} AS (${p})`).join(', ')} ${last}` : last;
  return { statement: prepared(sql, values), json: jsonRows };
}

/** Drops the buffer of a transaction that rolls back. */
export function discardDeferred(client: pg.PoolClient): void {
  buffers.delete(client);
}

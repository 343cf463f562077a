import type {
  OutboxAdminStore,
  OutboxEventView,
  OutboxMessage,
  OutboxRelayStore,
  OutboxStatus,
} from '../../app/erp/outbox-ports.ts';
import type { Database } from './postgres-pool.ts';
import { asPg } from './postgres-unit-of-work.ts';

interface EventRow {
  id: number;
  message_id: string;
  aggregate_type: string;
  aggregate_id: string;
  event_type: string;
  payload: unknown;
  created_at: Date;
  attempts: number;
  status: OutboxStatus;
  next_attempt_at: Date | null;
  delivered_at: Date | null;
  last_error: string | null;
}

const COLUMNS = `id, message_id, aggregate_type, aggregate_id, event_type, payload, created_at, attempts,
                 status, next_attempt_at, delivered_at, last_error`;

const toMessage = (r: EventRow): OutboxMessage => ({
  id: r.id,
  messageId: r.message_id,
  aggregateType: r.aggregate_type,
  aggregateId: r.aggregate_id,
  eventType: r.event_type,
  payload: r.payload,
  createdAt: r.created_at,
  attempts: r.attempts,
});

const toView = (r: EventRow): OutboxEventView => ({
  id: r.id,
  messageId: r.message_id,
  aggregateType: r.aggregate_type,
  aggregateId: r.aggregate_id,
  eventType: r.event_type,
  status: r.status,
  attempts: r.attempts,
  createdAt: r.created_at.toISOString(),
  nextAttemptAt: r.status === 'pending' && r.next_attempt_at ? r.next_attempt_at.toISOString() : null,
  deliveredAt: r.delivered_at?.toISOString() ?? null,
  lastError: r.last_error,
  payload: r.payload,
});

/**
 * The outbox relay on PostgreSQL. The claim is one statement: candidates are due pending events
 * with no earlier pending or dead event of the same order; `SKIP LOCKED` passes over rows another
 * relay holds. An earlier event held by another relay is still `pending`, so its successors are not
 * candidates either: two relays never send two events of one order at the same time.
 */
export function postgresOutboxRelayStore(): OutboxRelayStore {
  return {
    async claimDue(tx, limit) {
      const r = await asPg(tx).query<EventRow>(
        `SELECT ${COLUMNS.replace(/(\w+)/g, 'e.$1')}
           FROM outbox_events e
          WHERE e.status = 'pending'
            AND e.next_attempt_at <= clock_timestamp()
            AND NOT EXISTS (SELECT 1 FROM outbox_events p
                             WHERE p.aggregate_id = e.aggregate_id AND p.id < e.id
                               AND p.status IN ('pending', 'dead'))
          ORDER BY e.id
          LIMIT $1
          FOR UPDATE OF e SKIP LOCKED`,
        [limit],
      );
      return r.rows.map(toMessage);
    },

    async recordAttempt(tx, message, a) {
      const db = asPg(tx);
      const attempt = message.attempts + 1;
      switch (a.outcome) {
        case 'delivered':
          await db.query(
            `UPDATE outbox_events SET status = 'delivered', attempts = $2, delivered_at = clock_timestamp()
              WHERE id = $1`,
            [message.id, attempt],
          );
          break;
        case 'failed':
          await db.query(
            `UPDATE outbox_events
                SET attempts = $2, last_error = $3,
                    next_attempt_at = clock_timestamp() + $4 * interval '1 millisecond'
              WHERE id = $1`,
            [message.id, attempt, a.error, a.retryInMs ?? 0],
          );
          break;
        case 'dead':
          await db.query(
            `UPDATE outbox_events SET status = 'dead', attempts = $2, last_error = $3 WHERE id = $1`,
            [message.id, attempt, a.error],
          );
          break;
      }
      await db.query(
        `INSERT INTO outbox_deliveries (event_id, attempt, at, outcome, http_status, error, duration_ms)
         VALUES ($1, $2, clock_timestamp(), $3, $4, $5, $6)`,
        [message.id, attempt, a.outcome, a.httpStatus, a.error, a.durationMs],
      );
    },
  };
}

export function postgresOutboxAdminStore(db: Database): OutboxAdminStore {
  return {
    async list(f) {
      const where: string[] = [];
      const values: unknown[] = [];
      if (f.status) where.push(`status = $${values.push(f.status)}`);
      if (f.aggregateId) where.push(`aggregate_id = $${values.push(f.aggregateId)}`);
      if (f.afterId !== undefined) where.push(`id > $${values.push(f.afterId)}`);
      const r = await db.query<EventRow>(
        `SELECT ${COLUMNS} FROM outbox_events ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
          ORDER BY id LIMIT $${values.push(f.limit)}`,
        values,
      );
      return r.rows.map(toView);
    },

    async find(tx, id, forUpdate) {
      const r = await asPg(tx).query<EventRow>(
        `SELECT ${COLUMNS} FROM outbox_events WHERE id = $1 ${forUpdate ? 'FOR UPDATE' : ''}`,
        [id],
      );
      return r.rows[0] ? toView(r.rows[0]) : null;
    },

    async requeue(tx, id) {
      const r = await asPg(tx).query<EventRow>(
        `UPDATE outbox_events SET status = 'pending', attempts = 0, next_attempt_at = now()
          WHERE id = $1 RETURNING ${COLUMNS}`,
        [id],
      );
      return toView(r.rows[0]!);
    },

    async health() {
      const r = await db.query<{
        pending: number;
        oldest_s: number | null;
        dead: number;
        last_success: Date | null;
        last_failure: Date | null;
        last_failure_error: string | null;
      }>(
        `SELECT (SELECT count(*) FROM outbox_events WHERE status = 'pending')::int AS pending,
                (SELECT extract(epoch FROM now() - min(created_at))::float8
                   FROM outbox_events WHERE status = 'pending') AS oldest_s,
                (SELECT count(*) FROM outbox_events WHERE status = 'dead')::int AS dead,
                (SELECT at FROM outbox_deliveries WHERE outcome = 'delivered'
                  ORDER BY id DESC LIMIT 1) AS last_success,
                f.at AS last_failure, f.error AS last_failure_error
           FROM (SELECT 1) one
           LEFT JOIN LATERAL (SELECT at, error FROM outbox_deliveries WHERE outcome <> 'delivered'
                               ORDER BY id DESC LIMIT 1) f ON true`,
      );
      const row = r.rows[0]!;
      return {
        pending: row.pending,
        oldestPendingAgeSeconds: row.oldest_s === null ? null : Math.max(0, Math.round(row.oldest_s)),
        dead: row.dead,
        lastSuccessAt: row.last_success?.toISOString() ?? null,
        lastFailureAt: row.last_failure?.toISOString() ?? null,
        lastFailureError: row.last_failure_error,
      };
    },
  };
}

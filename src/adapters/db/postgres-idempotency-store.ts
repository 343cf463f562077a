import type { IdempotencyStore, Outbox } from '../../app/ports.ts';
import { deferInsert } from './postgres-deferred-writes.ts';
import { asPg } from './postgres-unit-of-work.ts';

export function postgresIdempotencyStore(): IdempotencyStore {
  return {
    async claim(tx, scope, key, requestHash) {
      const db = asPg(tx);
      // ON CONFLICT waits for a concurrent holder of the key to commit or roll back, so two
      // presses of the same button never both run the effect.
      const inserted = await db.query(
        `INSERT INTO idempotency_keys (scope, key, request_hash) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`,
        [scope, key, requestHash],
      );
      if (inserted.rowCount === 1) return { kind: 'new' };
      const r = await db.query<{ request_hash: string; status: number | null; response: unknown }>(
        'SELECT request_hash, status, response FROM idempotency_keys WHERE scope = $1 AND key = $2',
        [scope, key],
      );
      const row = r.rows[0];
      if (!row || row.request_hash !== requestHash || row.status === null) return { kind: 'conflict' };
      return { kind: 'replay', status: row.status, response: row.response };
    },
    async complete(tx, scope, key, status, response) {
      await asPg(tx).query(
        'UPDATE idempotency_keys SET status = $3, response = $4 WHERE scope = $1 AND key = $2',
        [scope, key, status, JSON.stringify(response ?? null)],
      );
    },
  };
}

export function postgresOutbox(): Outbox {
  return {
    async add(tx, e) {
      deferInsert(asPg(tx), 'outbox_events', {
        aggregate_type: e.aggregateType,
        aggregate_id: e.aggregateId,
        event_type: e.eventType,
        payload: e.payload ?? null,
      });
    },
  };
}

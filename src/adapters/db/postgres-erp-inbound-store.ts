import type { InboundMessageStore } from '../../app/erp/erp-ports.ts';
import { asPg } from './postgres-unit-of-work.ts';

/** `erp_inbound_messages` (migration 0005). A claimed row holds JSON null until the effect completes. */
export function postgresErpInboundStore(): InboundMessageStore {
  return {
    async claim(tx, m) {
      const db = asPg(tx);
      // ON CONFLICT waits for a concurrent holder of the id to commit or roll back, so two
      // deliveries of one message never both apply it.
      const inserted = await db.query(
        `INSERT INTO erp_inbound_messages (message_id, source, verb, request_hash, result)
         VALUES ($1, $2, $3, $4, 'null'::jsonb) ON CONFLICT DO NOTHING`,
        [m.messageId, m.source, m.verb, m.requestHash],
      );
      if (inserted.rowCount === 1) return { kind: 'new' };
      const r = await db.query<{ verb: string; request_hash: string; result: unknown }>(
        'SELECT verb, request_hash, result FROM erp_inbound_messages WHERE message_id = $1',
        [m.messageId],
      );
      const row = r.rows[0];
      if (!row || row.request_hash !== m.requestHash || row.verb !== m.verb || row.result === null) {
        return { kind: 'conflict', verb: row?.verb ?? m.verb };
      }
      return { kind: 'replay', result: row.result };
    },
    async complete(tx, messageId, result) {
      await asPg(tx).query('UPDATE erp_inbound_messages SET result = $2 WHERE message_id = $1', [
        messageId,
        JSON.stringify(result ?? null),
      ]);
    },
  };
}

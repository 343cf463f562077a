import type { AuditEntry, AuditTrail, AuditVerification, ElectronicSignature } from '../../app/ports.ts';
import type { Database } from './postgres-pool.ts';
import { deferInsert } from './postgres-deferred-writes.ts';
import { asPg } from './postgres-unit-of-work.ts';

interface AuditRow {
  id: number;
  at: Date;
  actor_id: number | null;
  actor_name: string;
  action: string;
  entity_type: string;
  entity_id: string;
  reason: string | null;
  old_value: unknown;
  new_value: unknown;
  signature: ElectronicSignature | null;
  request_id: string | null;
  chain_seq: number | null;
  prev_hash: string | null;
  hash: string | null;
}

const toEntry = (r: AuditRow): AuditEntry => ({
  id: r.id,
  at: r.at.toISOString(),
  actorId: r.actor_id,
  actorName: r.actor_name,
  action: r.action,
  entityType: r.entity_type,
  entityId: r.entity_id,
  reason: r.reason,
  oldValue: r.old_value,
  newValue: r.new_value,
  signature: r.signature,
  requestId: r.request_id,
  chain: r.chain_seq !== null ? { seq: r.chain_seq, prevHash: r.prev_hash!, hash: r.hash! } : null,
});

const GENESIS = '0'.repeat(64);
const VERIFY_BATCH = 5000;

/**
 * The audit trail on PostgreSQL (migration 0001, docs/adr/0005). Entries are written by the
 * caller's transaction; the hash chain is extended by `audit_chain_pending()`, which the server
 * runs every second and `verify()` runs first.
 */
export function postgresAuditTrail(db: Database): AuditTrail {
  const chainPending = async (): Promise<number> =>
    (await db.pool.query<{ n: number }>('SELECT audit_chain_pending() AS n')).rows[0]!.n;

  return {
    // Deferred to the transaction's single flush before COMMIT (postgres-deferred-writes.ts); the
    // trigger still stamps server time and the writing transaction.
    async append(tx, e) {
      deferInsert(asPg(tx), 'audit_log', {
        actor_id: e.actor.userId,
        actor_name: e.actor.username,
        action: e.action,
        entity_type: e.entityType,
        entity_id: e.entityId,
        reason: e.reason ?? null,
        old_value: e.oldValue ?? null,
        new_value: e.newValue ?? null,
        signature: e.signature ?? null,
        request_id: e.requestId ?? null,
      });
    },

    async list(f) {
      const where: string[] = [];
      const values: unknown[] = [];
      const add = (sql: string, v: unknown) => {
        values.push(v);
        where.push(sql.replace('?', `$${values.length}`));
      };
      if (f.entityType) add('a.entity_type = ?', f.entityType);
      if (f.entityId) add('a.entity_id = ?', f.entityId);
      if (f.actor) add('a.actor_name = ?', f.actor);
      if (f.from) add('a.at >= ?', f.from);
      if (f.to) add('a.at < ?', f.to);
      if (f.afterId !== undefined) add('a.id > ?', f.afterId);
      values.push(f.limit);
      const r = await db.pool.query<AuditRow>(
        `SELECT a.*, c.seq AS chain_seq, c.prev_hash, c.hash
           FROM audit_log a LEFT JOIN audit_chain c ON c.entry_id = a.id
          ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY a.id LIMIT $${values.length}`,
        values,
      );
      return r.rows.map(toEntry);
    },

    chainPending,

    /**
     * Walks the chain in batches: links numbered without gaps, each link's prev_hash equal to the
     * previous hash, each entry still present and hashing to its link; then no final entry may be
     * left outside the chain. Reports the first broken link by audit entry id.
     */
    async verify(): Promise<AuditVerification> {
      await chainPending();
      let prevSeq = 0;
      let prevHash = GENESIS;
      let entries = 0;
      for (;;) {
        const r = await db.pool.query<{
          seq: number;
          entry_id: number;
          prev_hash: string;
          hash: string;
          present: boolean;
          recomputed: string | null;
        }>(
          `SELECT c.seq, c.entry_id, c.prev_hash, c.hash, a.id IS NOT NULL AS present,
                  CASE WHEN a.id IS NULL THEN NULL ELSE audit_entry_hash(a, c.prev_hash) END AS recomputed
             FROM audit_chain c LEFT JOIN audit_log a ON a.id = c.entry_id
            WHERE c.seq > $1 ORDER BY c.seq LIMIT $2`,
          [prevSeq, VERIFY_BATCH],
        );
        for (const row of r.rows) {
          const broken = (
            reason: Exclude<AuditVerification, { ok: true }>['reason'],
            message: string,
          ): AuditVerification => ({
            ok: false,
            entries,
            brokenAt: row.entry_id,
            reason,
            message,
          });
          if (row.seq !== prevSeq + 1) {
            return broken(
              'sequence-gap',
              `chain links ${prevSeq + 1}..${row.seq - 1} are missing before audit entry ${row.entry_id}`,
            );
          }
          if (!row.present)
            return broken('entry-missing', `audit entry ${row.entry_id} was deleted: its chain link remains`);
          if (row.prev_hash !== prevHash) {
            return broken(
              'chain-broken',
              `audit entry ${row.entry_id} does not link to the entry before it (prev_hash differs)`,
            );
          }
          if (row.hash !== row.recomputed) {
            return broken(
              'hash-mismatch',
              `audit entry ${row.entry_id} was altered: its content no longer matches its hash`,
            );
          }
          prevSeq = row.seq;
          prevHash = row.hash;
          entries++;
        }
        if (r.rows.length < VERIFY_BATCH) break;
      }
      const loose = await db.pool.query<{ id: number; final: boolean }>(
        `SELECT a.id, a.txid < h.horizon AS final
           FROM audit_log a CROSS JOIN audit_chain_head h
          WHERE NOT EXISTS (SELECT 1 FROM audit_chain c WHERE c.entry_id = a.id)
          ORDER BY a.id`,
      );
      const unchained = loose.rows.find((x) => x.final);
      if (unchained) {
        return {
          ok: false,
          entries,
          brokenAt: unchained.id,
          reason: 'entry-unchained',
          message: `audit entry ${unchained.id} is final but not in the chain (inserted behind the chain's back?)`,
        };
      }
      return { ok: true, entries, lastHash: entries > 0 ? prevHash : null, pending: loose.rows.length };
    },
  };
}

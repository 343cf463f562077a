import type { AuditEntry, AuditTrail, AuditVerification, ElectronicSignature } from '../../app/ports.ts';
import type { Database } from './postgres-pool.ts';
import { asPg } from './postgres-unit-of-work.ts';

interface AuditRow {
  seq: number;
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
  prev_hash: string;
  hash: string;
}

const toEntry = (r: AuditRow): AuditEntry => ({
  seq: r.seq,
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
  prevHash: r.prev_hash,
  hash: r.hash,
});

const GENESIS = '0'.repeat(64);
const VERIFY_BATCH = 5000;

/** JSON for a jsonb parameter; `undefined` (no value) is SQL NULL, not JSON null. */
const json = (v: unknown): string | null => (v === undefined ? null : JSON.stringify(v));

/**
 * The audit trail on PostgreSQL. Sequence, server time and the hash chain are assigned by the
 * `audit_log_chain` trigger (migration 0001), so they cannot be supplied or forged by the caller.
 */
export function postgresAuditTrail(db: Database): AuditTrail {
  return {
    async append(tx, e) {
      await asPg(tx).query(
        `INSERT INTO audit_log (seq, at, actor_id, actor_name, action, entity_type, entity_id, reason,
                                old_value, new_value, signature, request_id, prev_hash, hash)
         VALUES (0, now(), $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, '', '')`,
        [
          e.actor.userId,
          e.actor.username,
          e.action,
          e.entityType,
          e.entityId,
          e.reason ?? null,
          json(e.oldValue),
          json(e.newValue),
          json(e.signature ?? undefined),
          e.requestId ?? null,
        ],
      );
    },

    async list(f) {
      const where: string[] = [];
      const values: unknown[] = [];
      const add = (sql: string, v: unknown) => {
        values.push(v);
        where.push(sql.replace('?', `$${values.length}`));
      };
      if (f.entityType) add('entity_type = ?', f.entityType);
      if (f.entityId) add('entity_id = ?', f.entityId);
      if (f.actor) add('actor_name = ?', f.actor);
      if (f.from) add('at >= ?', f.from);
      if (f.to) add('at < ?', f.to);
      if (f.afterSeq !== undefined) add('seq > ?', f.afterSeq);
      values.push(f.limit);
      const r = await db.pool.query<AuditRow>(
        `SELECT * FROM audit_log ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY seq LIMIT $${values.length}`,
        values,
      );
      return r.rows.map(toEntry);
    },

    /**
     * Walks the whole chain in batches: every entry's stored hash must equal the hash recomputed
     * from its columns, its prev_hash must equal the previous entry's hash, and seq must have no
     * gaps (a deleted entry). Reports the first broken link.
     */
    async verify(): Promise<AuditVerification> {
      let prevSeq = 0;
      let prevHash = GENESIS;
      let entries = 0;
      for (;;) {
        const r = await db.pool.query<{ seq: number; prev_hash: string; hash: string; recomputed: string }>(
          `SELECT seq, prev_hash, hash, audit_entry_hash(a) AS recomputed
             FROM audit_log a WHERE seq > $1 ORDER BY seq LIMIT $2`,
          [prevSeq, VERIFY_BATCH],
        );
        for (const row of r.rows) {
          if (row.seq !== prevSeq + 1) {
            return {
              ok: false,
              entries,
              brokenAt: row.seq,
              reason: 'sequence-gap',
              message: `audit entries ${prevSeq + 1}..${row.seq - 1} are missing (deleted?) before entry ${row.seq}`,
            };
          }
          if (row.hash !== row.recomputed) {
            return {
              ok: false,
              entries,
              brokenAt: row.seq,
              reason: 'hash-mismatch',
              message: `audit entry ${row.seq} was altered: its content no longer matches its hash`,
            };
          }
          if (row.prev_hash !== prevHash) {
            return {
              ok: false,
              entries,
              brokenAt: row.seq,
              reason: 'chain-broken',
              message: `audit entry ${row.seq} does not link to entry ${prevSeq} (prev_hash differs)`,
            };
          }
          prevSeq = row.seq;
          prevHash = row.hash;
          entries++;
        }
        if (r.rows.length < VERIFY_BATCH) break;
      }
      return { ok: true, entries, lastHash: entries > 0 ? prevHash : null };
    },
  };
}

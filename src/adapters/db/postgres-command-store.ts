import type {
  CommandError,
  CommandRecord,
  CommandStore,
  ParameterResult,
  StateReading,
} from '../../app/equipment/command-ports.ts';
import type { ElectronicSignature } from '../../app/ports.ts';
import type { CommandKind, CommandOutcome } from '../../domain/equipment/equipment-command.ts';
import type { Database } from './postgres-pool.ts';
import { asPg } from './postgres-unit-of-work.ts';
import { SIGNAL_COLUMNS, toSignal, type SignalRow } from './postgres-plant-store.ts';

interface CommandRow {
  id: string;
  no: number;
  equipment_id: string;
  kind: CommandKind;
  payload: Record<string, unknown>;
  reason: string;
  requested_by_id: number | null;
  requested_by: string;
  signature: ElectronicSignature | null;
  operation_pk: number | null;
  requested_at: Date;
  finished_at: Date | null;
  outcome: CommandOutcome;
  state: StateReading | null;
  results: ParameterResult[];
  error_code: string | null;
  error_message: string | null;
  error_details: Record<string, unknown> | null;
  idempotency_scope: string | null;
  idempotency_key: string | null;
  request_hash: string | null;
  request_id: string | null;
}

const COLUMNS = `id, no, equipment_id, kind, payload, reason, requested_by_id, requested_by, signature,
  operation_pk, requested_at, finished_at, outcome, state, results, error_code, error_message, error_details,
  idempotency_scope, idempotency_key, request_hash, request_id`;

function toRecord(r: CommandRow): CommandRecord {
  const error: CommandError | null =
    r.error_code === null
      ? null
      : { code: r.error_code, message: r.error_message ?? '', details: r.error_details };
  return {
    id: r.id,
    no: r.no,
    equipment: r.equipment_id,
    kind: r.kind,
    request: r.payload,
    reason: r.reason,
    requestedBy: { userId: r.requested_by_id, username: r.requested_by },
    signature: r.signature,
    operationPk: r.operation_pk,
    requestedAt: r.requested_at,
    finishedAt: r.finished_at,
    outcome: r.outcome,
    state: r.state,
    results: r.results,
    error,
    idempotency:
      r.idempotency_scope !== null && r.idempotency_key !== null && r.request_hash !== null
        ? { scope: r.idempotency_scope, key: r.idempotency_key, requestHash: r.request_hash }
        : null,
    requestId: r.request_id,
  };
}

/** Equipment commands on PostgreSQL (migration 0011). */
export function postgresCommandStore(db: Database): CommandStore {
  return {
    async equipment(id) {
      const r = await db.query<{ id: string; name: string }>('SELECT id, name FROM equipment WHERE id = $1', [
        id,
      ]);
      return r.rows[0] ?? null;
    },

    async signalsOf(equipment) {
      const r = await db.query<SignalRow>(
        `SELECT ${SIGNAL_COLUMNS} FROM signals WHERE equipment_id = $1 ORDER BY id`,
        [equipment],
      );
      return r.rows.map(toSignal);
    },

    async operation(pk) {
      const r = await db.query<{ pk: number; order_id: string; operation_id: string }>(
        'SELECT id AS pk, order_id, operation_id FROM order_operations WHERE id = $1',
        [pk],
      );
      const row = r.rows[0];
      return row ? { pk: row.pk, orderId: row.order_id, operationId: row.operation_id } : null;
    },

    async byIdempotencyKey(scope, key) {
      const r = await db.query<CommandRow>(
        `SELECT ${COLUMNS} FROM equipment_commands WHERE idempotency_scope = $1 AND idempotency_key = $2`,
        [scope, key],
      );
      return r.rows[0] ? toRecord(r.rows[0]) : null;
    },

    async insert(tx, c) {
      // ON CONFLICT waits for a concurrent insert of the same key to commit, then yields no row.
      const r = await asPg(tx).query<CommandRow>(
        `INSERT INTO equipment_commands (equipment_id, kind, payload, reason, requested_by_id, requested_by,
           signature, operation_pk, requested_at, idempotency_scope, idempotency_key, request_hash, request_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
         ON CONFLICT (idempotency_scope, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
         RETURNING ${COLUMNS}`,
        [
          c.equipment,
          c.kind,
          JSON.stringify(c.request),
          c.reason,
          c.requestedBy.userId,
          c.requestedBy.username,
          c.signature === null ? null : JSON.stringify(c.signature),
          c.operationPk,
          c.requestedAt,
          c.idempotency?.scope ?? null,
          c.idempotency?.key ?? null,
          c.idempotency?.requestHash ?? null,
          c.requestId,
        ],
      );
      return r.rows[0] ? toRecord(r.rows[0]) : null;
    },

    async finish(tx, id, f) {
      const r = await asPg(tx).query<CommandRow>(
        `UPDATE equipment_commands
            SET outcome = $2, finished_at = $3, state = $4, results = $5,
                error_code = $6, error_message = $7, error_details = $8
          WHERE id = $1 AND outcome = 'requested'
          RETURNING ${COLUMNS}`,
        [
          id,
          f.outcome,
          f.finishedAt,
          f.state === null ? null : JSON.stringify(f.state),
          JSON.stringify(f.results),
          f.error?.code ?? null,
          f.error?.message ?? null,
          f.error?.details == null ? null : JSON.stringify(f.error.details),
        ],
      );
      if (!r.rows[0]) throw new Error(`equipment command ${id} is not requested any more`);
      return toRecord(r.rows[0]);
    },

    async get(id) {
      const r = await db.query<CommandRow>(`SELECT ${COLUMNS} FROM equipment_commands WHERE id = $1`, [id]);
      return r.rows[0] ? toRecord(r.rows[0]) : null;
    },

    async list(equipment, page) {
      const r = await db.query<CommandRow>(
        `SELECT ${COLUMNS} FROM equipment_commands
          WHERE equipment_id = $1 AND ($2::bigint IS NULL OR no < $2)
          ORDER BY no DESC LIMIT $3`,
        [equipment, page.before ?? null, page.limit],
      );
      return r.rows.map(toRecord);
    },
  };
}

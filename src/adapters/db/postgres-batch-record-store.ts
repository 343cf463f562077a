import type {
  BatchRecordData,
  BatchRecordStore,
  LotConsumption,
  OperationActivity,
  RecordAuditEntry,
} from '../../app/execution/batch-record-ports.ts';
import type { ElectronicSignature } from '../../app/ports.ts';
import { quantityFromDb } from '../../domain/shared/quantity.ts';
import { postgresExecutionStore } from './postgres-execution-store.ts';
import { toLot, type LotRow } from './postgres-lot-store.ts';
import { toNcr, toResult, type NcrRow, type ResultRow } from './postgres-quality-store.ts';
import type { Database } from './postgres-pool.ts';
import { asTx } from './postgres-unit-of-work.ts';

interface ActivityRow {
  operation_pk: number;
  kind: string;
  at: Date;
  actor: string;
  person_id: string | null;
  work_unit_id: string | null;
  detail: unknown;
}

interface ConsumptionRow {
  id: number;
  operation_pk: number;
  lot_id: string;
  material_id: string;
  unit_id: string;
  quantity: string;
  into_lot_id: string | null;
  actor: string;
  person_id: string | null;
  equipment_id: string | null;
  at: Date;
}

interface AuditRow {
  at: Date;
  actor_name: string;
  action: string;
  entity_type: string;
  entity_id: string;
  reason: string | null;
  signature: ElectronicSignature | null;
}

const toActivity = (r: ActivityRow): OperationActivity => ({
  operationPk: r.operation_pk,
  kind: r.kind,
  at: r.at,
  actor: r.actor,
  personId: r.person_id,
  workUnitId: r.work_unit_id,
  detail: r.detail,
});

const toConsumption = (r: ConsumptionRow): LotConsumption => ({
  id: r.id,
  operationPk: r.operation_pk,
  lotId: r.lot_id,
  materialId: r.material_id,
  unitId: r.unit_id,
  quantity: quantityFromDb(r.quantity),
  intoLotId: r.into_lot_id,
  actor: r.actor,
  personId: r.person_id,
  equipmentId: r.equipment_id,
  at: r.at,
});

const toAudit = (r: AuditRow): RecordAuditEntry => ({
  at: r.at.toISOString(),
  actorName: r.actor_name,
  action: r.action,
  entityType: r.entity_type,
  entityId: r.entity_id,
  reason: r.reason,
  signature: r.signature,
});

/**
 * The audit entries of an order, its operations, its NCRs (keyed by NCR number, as the quality
 * service writes them) and every lot the order touched. Ordered by every shown column so that
 * entries written in the same microsecond still come out in one reproducible order (the record
 * hash depends on it); only columns that exist in every version of audit_log are read.
 */
const AUDIT_SQL = `
  WITH ops AS (SELECT id FROM order_operations WHERE order_id = $1::text),
  order_lots AS (
    SELECT lot_id AS id FROM material_consumptions WHERE operation_pk IN (SELECT id FROM ops)
    UNION SELECT id FROM lots WHERE produced_by IN (SELECT id FROM ops)
    UNION SELECT lot_id FROM quality_results WHERE operation_pk IN (SELECT id FROM ops) AND lot_id IS NOT NULL
    UNION SELECT lot_id FROM ncrs WHERE order_id = $1::text AND lot_id IS NOT NULL
  ),
  subjects (entity_type, entity_id) AS (
    SELECT 'production-order', $1::text
    UNION ALL SELECT 'order-operation', id::text FROM ops
    UNION ALL SELECT 'ncr', number FROM ncrs WHERE order_id = $1::text
    UNION ALL SELECT 'lot', id FROM order_lots
  )
  SELECT a.at, a.actor_name, a.action, a.entity_type, a.entity_id, a.reason, a.signature
    FROM audit_log a
    JOIN subjects s ON s.entity_type = a.entity_type AND s.entity_id = a.entity_id
   ORDER BY a.at, a.entity_type, a.entity_id, a.action, a.actor_name, a.reason, a.signature::text`;

/** The batch record's reads on PostgreSQL: one read-only REPEATABLE READ transaction, one snapshot. */
export function postgresBatchRecordStore(db: Database): BatchRecordStore {
  const execution = postgresExecutionStore(db);

  return {
    load(orderId) {
      return db.transaction(async (c): Promise<BatchRecordData | null> => {
        await c.query('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY');
        const tx = asTx(c);
        const order = await execution.order(tx, orderId);
        if (!order) return null;
        const operations = await execution.operations(tx, orderId);

        const activities = await c.query<ActivityRow>(
          `SELECT a.operation_pk, a.kind, a.at, a.actor, a.person_id, a.work_unit_id, a.detail
             FROM operation_activities a JOIN order_operations o ON o.id = a.operation_pk
            WHERE o.order_id = $1 ORDER BY a.id`,
          [orderId],
        );
        const consumptions = await c.query<ConsumptionRow>(
          `SELECT c.id, c.operation_pk, c.lot_id, l.material_id, l.unit_id, c.quantity, c.into_lot_id, c.actor,
                  c.person_id, c.equipment_id, c.at
             FROM material_consumptions c
             JOIN order_operations o ON o.id = c.operation_pk
             JOIN lots l ON l.id = c.lot_id
            WHERE o.order_id = $1 ORDER BY c.id`,
          [orderId],
        );
        const produced = await c.query<LotRow>(
          `SELECT l.* FROM lots l JOIN order_operations o ON o.id = l.produced_by
            WHERE o.order_id = $1 ORDER BY l.created_at, l.id`,
          [orderId],
        );
        const results = await c.query<ResultRow>(
          `SELECT r.*, n.id AS ncr_id, n.number AS ncr_number
             FROM quality_results r
             JOIN order_operations o ON o.id = r.operation_pk
             LEFT JOIN ncrs n ON n.result_id = r.id
            WHERE o.order_id = $1 ORDER BY r.id`,
          [orderId],
        );
        const ncrs = await c.query<NcrRow>(
          `SELECT n.*, o.operation_id FROM ncrs n JOIN order_operations o ON o.id = n.operation_pk
            WHERE n.order_id = $1 ORDER BY n.id`,
          [orderId],
        );
        const audit = await c.query<AuditRow>(AUDIT_SQL, [orderId]);

        const personIds = new Set<string>();
        for (const row of [
          ...operations.map((o) => o.personId),
          ...activities.rows.map((a) => a.person_id),
          ...consumptions.rows.map((x) => x.person_id),
          ...results.rows.map((r) => r.person_id),
        ]) {
          if (row !== null) personIds.add(row);
        }
        const people = await c.query<{ id: string; name: string }>(
          'SELECT id, name FROM persons WHERE id = ANY($1::text[]) ORDER BY id',
          [[...personIds]],
        );

        return {
          order,
          operations,
          activities: activities.rows.map(toActivity),
          consumptions: consumptions.rows.map(toConsumption),
          producedLots: produced.rows.map(toLot),
          results: results.rows.map(toResult),
          ncrs: ncrs.rows.map(toNcr),
          audit: audit.rows.map(toAudit),
          people: new Map(people.rows.map((p) => [p.id, p.name])),
        };
      });
    },
  };
}

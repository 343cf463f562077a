import type {
  BatchRecordData,
  BatchRecordStore,
  LotConsumption,
  OperationActivity,
  RecordAuditEntry,
} from '../../app/execution/batch-record-ports.ts';
import type { Lot, LotKind, LotStatus } from '../../app/material/material-ports.ts';
import type { ElectronicSignature } from '../../app/ports.ts';
import type { NcrRecord, QualityResultRecord } from '../../app/quality/quality-ports.ts';
import type { Disposition, NcrState, Verdict } from '../../domain/quality/quality.ts';
import { quantityFromDb } from '../../domain/shared/quantity.ts';
import { postgresExecutionStore } from './postgres-execution-store.ts';
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

interface LotRow {
  id: string;
  kind: LotKind;
  material_id: string;
  quantity: string;
  unit_id: string;
  status: LotStatus;
  location: string | null;
  supplier_lot: string | null;
  produced_by: number | null;
  order_id: string | null;
  created_at: Date;
  updated_at: Date;
}

interface ResultRow {
  id: number;
  operation_pk: number;
  characteristic_id: string;
  kind: 'numeric' | 'attribute';
  value_numeric: string | null;
  value_attribute: Verdict | null;
  lsl: string | null;
  usl: string | null;
  verdict: Verdict;
  lot_id: string | null;
  actor: string;
  person_id: string | null;
  at: Date;
  ncr_id: number | null;
  ncr_number: string | null;
}

interface NcrRow {
  id: number;
  number: string;
  order_id: string;
  operation_pk: number;
  operation_id: string;
  result_id: number | null;
  characteristic_id: string | null;
  lot_id: string | null;
  quantity: string;
  description: string;
  cause_code: string | null;
  state: NcrState;
  disposition: Disposition | null;
  disposition_reason: string | null;
  dispositioned_by: string | null;
  dispositioned_at: Date | null;
  signature: ElectronicSignature | null;
  rework_operation_pk: number | null;
  created_by: string;
  created_at: Date;
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

const toLot = (r: LotRow): Lot => ({
  id: r.id,
  kind: r.kind,
  materialId: r.material_id,
  quantity: quantityFromDb(r.quantity),
  unitId: r.unit_id,
  status: r.status,
  location: r.location,
  supplierLot: r.supplier_lot,
  producedBy: r.produced_by,
  orderId: r.order_id,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});

const toResult = (r: ResultRow): QualityResultRecord => ({
  id: r.id,
  operationPk: r.operation_pk,
  characteristic: r.characteristic_id,
  kind: r.kind,
  value: r.kind === 'numeric' ? Number(r.value_numeric) : (r.value_attribute ?? 'fail'),
  lsl: r.lsl === null ? null : Number(r.lsl),
  usl: r.usl === null ? null : Number(r.usl),
  verdict: r.verdict,
  lotId: r.lot_id,
  actor: r.actor,
  personId: r.person_id,
  at: r.at.toISOString(),
  ncr: r.ncr_id === null || r.ncr_number === null ? null : { id: r.ncr_id, number: r.ncr_number },
});

const toNcr = (r: NcrRow): NcrRecord => ({
  id: r.id,
  number: r.number,
  orderId: r.order_id,
  operationPk: r.operation_pk,
  operationId: r.operation_id,
  resultId: r.result_id,
  characteristicId: r.characteristic_id,
  lotId: r.lot_id,
  quantity: quantityFromDb(r.quantity),
  description: r.description,
  causeCode: r.cause_code,
  state: r.state,
  disposition: r.disposition,
  dispositionReason: r.disposition_reason,
  dispositionedBy: r.dispositioned_by,
  dispositionedAt: r.dispositioned_at?.toISOString() ?? null,
  signature: r.signature,
  reworkOperationPk: r.rework_operation_pk,
  createdBy: r.created_by,
  createdAt: r.created_at.toISOString(),
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

import type {
  DispatchRow,
  ExecutionStore,
  OrderOperation,
  PersonWithQualifications,
  ProductionOrder,
} from '../../app/execution/execution-ports.ts';
import type { Tx } from '../../app/ports.ts';
import type { EquipmentState } from '../../domain/equipment/equipment-state.ts';
import { formatQuantity, quantityFromDb } from '../../domain/shared/quantity.ts';
import type { OperationState } from '../../domain/work-order/operation-state.ts';
import type { OrderState } from '../../domain/work-order/order-state.ts';
import type { Database, Queryable } from './postgres-pool.ts';
import { deferInsert, deferUpdate } from './postgres-deferred-writes.ts';
import { prepared } from './postgres-prepared.ts';
import { asPg } from './postgres-unit-of-work.ts';

interface OrderRow {
  id: string;
  external_id: string | null;
  product_id: string;
  material_id: string;
  quantity: string;
  unit_id: string;
  due_at: Date | null;
  priority: number;
  state: OrderState;
  held_from: OrderState | null;
  hold_reason: string | null;
  released_at: Date;
  started_at: Date | null;
  completed_at: Date | null;
  closed_at: Date | null;
  created_by: string;
  request_hash: string | null;
}

const toOrder = (r: OrderRow): ProductionOrder => ({
  id: r.id,
  externalId: r.external_id,
  productId: r.product_id,
  materialId: r.material_id,
  quantity: quantityFromDb(r.quantity),
  unitId: r.unit_id,
  dueAt: r.due_at,
  priority: r.priority,
  state: r.state,
  heldFrom: r.held_from,
  holdReason: r.hold_reason,
  releasedAt: r.released_at,
  startedAt: r.started_at,
  completedAt: r.completed_at,
  closedAt: r.closed_at,
  createdBy: r.created_by,
  requestHash: r.request_hash,
});

interface OperationRow {
  id: number;
  order_id: string;
  operation_id: string;
  sequence: number;
  name: string;
  work_center_id: string;
  allowed_work_units: string[];
  work_unit_id: string | null;
  standard_cycle_time_s: string;
  required_qualifications: string[];
  parameters: unknown[];
  bom: unknown[];
  characteristics: unknown[];
  planned_quantity: string;
  good_quantity: string;
  scrap_quantity: string;
  rework_quantity: string;
  state: OperationState;
  held_from: OperationState | null;
  is_rework: boolean;
  rework_of: number | null;
  rework_loop: number;
  started_at: Date | null;
  started_by: string | null;
  person_id: string | null;
  completed_at: Date | null;
  completed_by: string | null;
}

const toOperation = (r: OperationRow): OrderOperation => ({
  pk: r.id,
  orderId: r.order_id,
  operationId: r.operation_id,
  sequence: r.sequence,
  name: r.name,
  workCenterId: r.work_center_id,
  allowedWorkUnits: r.allowed_work_units,
  workUnitId: r.work_unit_id,
  standardCycleTimeS: Number(r.standard_cycle_time_s),
  requiredQualifications: r.required_qualifications,
  parameters: r.parameters,
  bom: r.bom,
  characteristics: r.characteristics,
  plannedQuantity: quantityFromDb(r.planned_quantity),
  goodQuantity: quantityFromDb(r.good_quantity),
  scrapQuantity: quantityFromDb(r.scrap_quantity),
  reworkQuantity: quantityFromDb(r.rework_quantity),
  state: r.state,
  heldFrom: r.held_from,
  isRework: r.is_rework,
  reworkOf: r.rework_of,
  reworkLoop: r.rework_loop,
  startedAt: r.started_at,
  startedBy: r.started_by,
  personId: r.person_id,
  completedAt: r.completed_at,
  completedBy: r.completed_by,
});

const ORDER_COLUMNS: Record<string, string> = {
  state: 'state',
  heldFrom: 'held_from',
  holdReason: 'hold_reason',
  startedAt: 'started_at',
  completedAt: 'completed_at',
  closedAt: 'closed_at',
  quantity: 'quantity',
  dueAt: 'due_at',
  priority: 'priority',
  requestHash: 'request_hash',
};

const OPERATION_COLUMNS: Record<string, string> = {
  state: 'state',
  heldFrom: 'held_from',
  workUnitId: 'work_unit_id',
  startedAt: 'started_at',
  startedBy: 'started_by',
  personId: 'person_id',
  completedAt: 'completed_at',
  completedBy: 'completed_by',
  goodQuantity: 'good_quantity',
  scrapQuantity: 'scrap_quantity',
  plannedQuantity: 'planned_quantity',
};

/** Column → value from a camelCase patch (undefined skipped); bigint quantities as exact decimal text. */
function columnsOf(patch: Record<string, unknown>, columns: Record<string, string>): Record<string, unknown> {
  const row: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === undefined) continue;
    const column = columns[k];
    if (!column) throw new Error(`no column for ${k}`);
    row[column] = typeof v === 'bigint' ? formatQuantity(v) : v;
  }
  return row;
}

/** `SET a = $1, b = $2` from a camelCase patch. */
function setClause(
  patch: Record<string, unknown>,
  columns: Record<string, string>,
  values: unknown[],
): string {
  const sets: string[] = [];
  for (const [column, v] of Object.entries(columnsOf(patch, columns))) {
    values.push(v);
    sets.push(`${column} = $${values.length}`);
  }
  return sets.join(', ');
}

export function postgresExecutionStore(db: Database): ExecutionStore {
  const q = (tx: Tx | null): Queryable => (tx ? asPg(tx) : db.pool);
  const lock = (forUpdate: boolean | undefined) => (forUpdate ? ' FOR UPDATE' : '');

  return {
    async routing(tx, productId) {
      const p = await q(tx).query<{ id: string; material_id: string; unit_id: string; tracking: string }>(
        `SELECT p.id, p.material_id, m.unit_id, m.tracking FROM products p JOIN material_definitions m ON m.id = p.material_id WHERE p.id = $1`,
        [productId],
      );
      const product = p.rows[0];
      if (!product) return null;
      const ops = await q(tx).query<{
        operation_id: string;
        name: string;
        work_center_id: string;
        standard_cycle_time_s: string;
        parameters: unknown[];
        work_units: string[];
        qualifications: string[];
        bom: unknown[];
        characteristics: unknown[];
      }>(
        `SELECT o.operation_id, o.name, o.work_center_id, o.standard_cycle_time_s, o.parameters,
           -- ::text: an array of a domain type (plant_id) is not one node-postgres parses; text[] is.
           COALESCE((SELECT array_agg(equipment_id::text ORDER BY position) FROM routing_operation_work_units w
                      WHERE w.product_id = o.product_id AND w.operation_id = o.operation_id), '{}') AS work_units,
           COALESCE((SELECT array_agg(qualification_id::text ORDER BY position) FROM routing_operation_qualifications x
                      WHERE x.product_id = o.product_id AND x.operation_id = o.operation_id), '{}') AS qualifications,
           COALESCE((SELECT jsonb_agg(jsonb_strip_nulls(jsonb_build_object(
                        'material', b.material_id, 'quantity', b.quantity::text, 'unit', COALESCE(b.unit_id, m.unit_id)))
                      ORDER BY b.position)
                      FROM routing_operation_bom b JOIN material_definitions m ON m.id = b.material_id
                      WHERE b.product_id = o.product_id AND b.operation_id = o.operation_id), '[]') AS bom,
           COALESCE((SELECT jsonb_agg(jsonb_strip_nulls(jsonb_build_object(
                        'id', c.characteristic_id, 'name', c.name, 'kind', c.kind, 'unit', c.unit_id,
                        'lsl', c.lsl, 'usl', c.usl, 'target', c.target)) ORDER BY c.position)
                      FROM routing_operation_characteristics c
                      WHERE c.product_id = o.product_id AND c.operation_id = o.operation_id), '[]') AS characteristics
         FROM routing_operations o WHERE o.product_id = $1 ORDER BY o.position`,
        [productId],
      );
      return {
        productId: product.id,
        materialId: product.material_id,
        unitId: product.unit_id,
        serialTracked: product.tracking === 'serial',
        steps: ops.rows.map((r) => ({
          operationId: r.operation_id,
          name: r.name,
          workCenterId: r.work_center_id,
          workUnits: r.work_units,
          standardCycleTimeS: Number(r.standard_cycle_time_s),
          qualifications: r.qualifications,
          parameters: r.parameters,
          bom: r.bom,
          characteristics: r.characteristics,
        })),
      };
    },

    async nextOrderId(tx) {
      const r = await asPg(tx).query<{ n: number }>(`SELECT nextval('production_order_number')::int AS n`);
      return `PO-${String(r.rows[0]!.n).padStart(6, '0')}`;
    },

    async insertOrder(tx, o) {
      const r = await asPg(tx).query<OrderRow>(
        `INSERT INTO production_orders (id, external_id, product_id, material_id, quantity, unit_id, due_at, priority,
                                        state, created_by, request_hash)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'Released', $9, $10) RETURNING *`,
        [
          o.id,
          o.externalId,
          o.productId,
          o.materialId,
          formatQuantity(o.quantity),
          o.unitId,
          o.dueAt,
          o.priority,
          o.createdBy,
          o.requestHash,
        ],
      );
      return toOrder(r.rows[0]!);
    },

    async order(tx, id, forUpdate) {
      const r = await q(tx).query<OrderRow>(
        `SELECT * FROM production_orders WHERE id = $1${lock(forUpdate)}`,
        [id],
      );
      return r.rows[0] ? toOrder(r.rows[0]) : null;
    },

    async orderByExternalId(tx, externalId, forUpdate) {
      const r = await asPg(tx).query<OrderRow>(
        `SELECT * FROM production_orders WHERE external_id = $1${lock(forUpdate)}`,
        [externalId],
      );
      return r.rows[0] ? toOrder(r.rows[0]) : null;
    },

    async orders(f) {
      const where: string[] = [];
      const values: unknown[] = [];
      if (f.state) {
        values.push(f.state);
        where.push(`state = $${values.length}`);
      }
      if (f.productId) {
        values.push(f.productId);
        where.push(`product_id = $${values.length}`);
      }
      values.push(f.limit);
      const r = await db.pool.query<OrderRow>(
        `SELECT * FROM production_orders ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
          ORDER BY released_at DESC, id DESC LIMIT $${values.length}`,
        values,
      );
      return r.rows.map(toOrder);
    },

    async updateOrder(tx, id, patch) {
      const values: unknown[] = [];
      const sets = setClause(patch, ORDER_COLUMNS, values);
      values.push(id);
      const r = await asPg(tx).query<OrderRow>(
        `UPDATE production_orders SET ${sets} WHERE id = $${values.length} RETURNING *`,
        values,
      );
      return toOrder(r.rows[0]!);
    },

    async insertOperations(tx, orderId, ops) {
      if (ops.length === 0) return [];
      const r = await asPg(tx).query<OperationRow>(
        `INSERT INTO order_operations (order_id, operation_id, sequence, name, work_center_id, allowed_work_units,
                                       standard_cycle_time_s, required_qualifications, parameters, bom, characteristics,
                                       planned_quantity, state)
         SELECT $1, x.operation_id, x.sequence, x.name, x.work_center_id, x.allowed_work_units, x.standard_cycle_time_s,
                x.required_qualifications, x.parameters, x.bom, x.characteristics, x.planned_quantity, x.state
           FROM jsonb_to_recordset($2::jsonb) AS x(operation_id text, sequence int, name text, work_center_id text,
                allowed_work_units text[], standard_cycle_time_s numeric, required_qualifications text[],
                parameters jsonb, bom jsonb, characteristics jsonb, planned_quantity numeric, state text)
         RETURNING *`,
        [
          orderId,
          JSON.stringify(
            ops.map((o) => ({
              operation_id: o.operationId,
              sequence: o.sequence,
              name: o.name,
              work_center_id: o.workCenterId,
              allowed_work_units: o.allowedWorkUnits,
              standard_cycle_time_s: o.standardCycleTimeS,
              required_qualifications: o.requiredQualifications,
              parameters: o.parameters,
              bom: o.bom,
              characteristics: o.characteristics,
              planned_quantity: formatQuantity(o.plannedQuantity),
              state: o.state,
            })),
          ),
        ],
      );
      return r.rows.map(toOperation).sort((a, b) => a.sequence - b.sequence);
    },

    async deleteOperations(tx, orderId) {
      await asPg(tx).query('DELETE FROM order_operations WHERE order_id = $1', [orderId]);
    },

    async setPlannedQuantity(tx, orderId, quantity) {
      const r = await asPg(tx).query<OperationRow>(
        'UPDATE order_operations SET planned_quantity = $2 WHERE order_id = $1 RETURNING *',
        [orderId, formatQuantity(quantity)],
      );
      return r.rows.map(toOperation).sort((a, b) => a.sequence - b.sequence);
    },

    async operation(tx, pk, forUpdate) {
      const r = await q(tx).query<OperationRow>(
        `SELECT * FROM order_operations WHERE id = $1${lock(forUpdate)}`,
        [pk],
      );
      return r.rows[0] ? toOperation(r.rows[0]) : null;
    },

    async operations(tx, orderId) {
      const r = await q(tx).query<OperationRow>(
        `SELECT * FROM order_operations WHERE order_id = $1 ORDER BY sequence`,
        [orderId],
      );
      return r.rows.map(toOperation);
    },

    async updateOperation(tx, pk, patch) {
      const values: unknown[] = [];
      const sets = setClause(patch, OPERATION_COLUMNS, values);
      values.push(pk);
      const r = await asPg(tx).query<OperationRow>(
        prepared(`UPDATE order_operations SET ${sets} WHERE id = $${values.length} RETURNING *`, values),
      );
      return toOperation(r.rows[0]!);
    },

    deferOperationUpdate(tx, op, patch) {
      // Dates become ISO text in the deferred statement (as a parameter, or in its JSON for many rows).
      deferUpdate(asPg(tx), 'order_operations', op.pk, columnsOf(patch, OPERATION_COLUMNS));
      const defined = Object.fromEntries(Object.entries(patch).filter(([, v]) => v !== undefined));
      return { ...op, ...defined };
    },

    async addActivity(tx, a) {
      deferInsert(asPg(tx), 'operation_activities', {
        operation_pk: a.operationPk,
        kind: a.kind,
        actor: a.actor,
        person_id: a.personId ?? null,
        work_unit_id: a.workUnitId ?? null,
        detail: a.detail ?? null,
        at: a.at.toISOString(),
      });
    },

    async dispatch(f) {
      const values: unknown[] = [];
      let where: string;
      if (f.workUnitId) {
        values.push(f.workUnitId);
        // A unit's list: work assigned to it, or open work of its work center that it may run.
        where = `(q.work_unit_id = $1 OR (q.work_unit_id IS NULL
                  AND q.work_center_id = (SELECT parent_id FROM equipment WHERE id = $1)
                  AND (cardinality(o.allowed_work_units) = 0 OR $1 = ANY (o.allowed_work_units))))`;
      } else {
        values.push(f.workCenterId);
        where = 'q.work_center_id = $1';
      }
      const r = await db.pool.query<
        OperationRow & {
          o_priority: number;
          o_due_at: Date | null;
          o_released_at: Date;
          o_product_id: string;
          o_external_id: string | null;
          predecessors_completed: boolean;
        }
      >(
        `SELECT o.*, p.priority AS o_priority, p.due_at AS o_due_at, p.released_at AS o_released_at,
                p.product_id AS o_product_id, p.external_id AS o_external_id,
                NOT EXISTS (SELECT 1 FROM order_operations e
                             WHERE e.order_id = o.order_id AND e.sequence < o.sequence
                               AND NOT e.is_rework AND e.state <> 'Completed') AS predecessors_completed
           -- From the open operations only (operation_queue, ADR 0015), never from all work ever done.
           FROM operation_queue q
           JOIN order_operations o ON o.id = q.operation_pk
           JOIN production_orders p ON p.id = o.order_id
          WHERE ${where} AND o.state IN ('Ready', 'Running', 'Paused')
            AND p.state IN ('Released', 'InProgress')`,
        values,
      );
      return r.rows.map((row): DispatchRow => ({
        operation: toOperation(row),
        order: {
          id: row.order_id,
          priority: row.o_priority,
          dueAt: row.o_due_at,
          releasedAt: row.o_released_at,
          productId: row.o_product_id,
          externalId: row.o_external_id,
        },
        predecessorsCompleted: row.predecessors_completed,
      }));
    },

    async equipment(tx, id) {
      const r = await q(tx).query<{ id: string; level: string; parent_id: string | null }>(
        'SELECT id, level, parent_id FROM equipment WHERE id = $1',
        [id],
      );
      const row = r.rows[0];
      return row ? { id: row.id, level: row.level, parentId: row.parent_id } : null;
    },

    async equipmentState(tx, id) {
      const r = await q(tx).query<{ state: EquipmentState; reason: string | null; since: Date }>(
        'SELECT state, reason, since FROM equipment_state WHERE equipment_id = $1',
        [id],
      );
      const row = r.rows[0];
      // No recorded state yet: nothing says the machine is unable, so it is taken as Idle.
      return row
        ? { state: row.state, reason: row.reason, since: row.since }
        : { state: 'Idle', reason: null, since: null };
    },

    async setEquipmentState(tx, id, s) {
      await asPg(tx).query(
        `INSERT INTO equipment_state (equipment_id, state, reason, since, source) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (equipment_id) DO UPDATE SET state = EXCLUDED.state, reason = EXCLUDED.reason,
           since = EXCLUDED.since, source = EXCLUDED.source`,
        [id, s.state, s.reason, s.at, s.source],
      );
      await asPg(tx).query(
        `INSERT INTO equipment_state_events (equipment_id, state, reason, at, source, actor) VALUES ($1, $2, $3, $4, $5, $6)`,
        [id, s.state, s.reason, s.at, s.source, s.actor],
      );
    },

    async personByUsername(tx, username) {
      const r = await q(tx).query<{
        id: string;
        name: string;
        username: string | null;
        qualifications: { qualification: string; issued: string; expires: string | null }[];
      }>(
        `SELECT p.id, p.name, p.username,
                COALESCE((SELECT jsonb_agg(jsonb_build_object('qualification', q.qualification_id,
                           'issued', to_char(q.issued, 'YYYY-MM-DD'), 'expires', to_char(q.expires, 'YYYY-MM-DD'))
                           ORDER BY q.position)
                          FROM person_qualifications q WHERE q.person_id = p.id), '[]') AS qualifications
           FROM persons p WHERE p.username = $1`,
        [username],
      );
      const row = r.rows[0];
      return row ? ({ ...row } satisfies PersonWithQualifications) : null;
    },

    async lotStatuses(tx, ids) {
      const r = await asPg(tx).query<{ id: string; status: string; material_id: string }>(
        'SELECT id, status, material_id FROM lots WHERE id = ANY ($1)',
        [ids],
      );
      return new Map(r.rows.map((x) => [x.id, { status: x.status, materialId: x.material_id }]));
    },

    async reasonCodeExists(tx, code) {
      const r = await asPg(tx).query('SELECT 1 FROM reason_codes WHERE code = $1 AND active', [code]);
      return r.rowCount === 1;
    },

    async lockForOperation(tx, pk) {
      const db = asPg(tx);
      const oq = db.query<OrderRow>({
        name: 'loom_lock_order_of_operation',
        text: `SELECT * FROM production_orders WHERE id = (SELECT order_id FROM order_operations WHERE id = $1) FOR UPDATE`,
        values: [pk],
      });
      // No row locks here: every writer of an order's operations holds the order's lock first, so
      // this read (a new snapshot, taken after the lock was granted) is current until commit.
      const opsq = db.query<OperationRow & { ncr_quantity: string | null }>({
        name: 'loom_operations_of_locked_order',
        // The operation's units under an NCR that no disposition has counted as good or scrap yet:
        // open NCRs and those sent to rework, on the operation's own units (no lot, or a lot of this
        // order). An NCR on consumed material is in the material's unit, not the product's.
        text: `SELECT o.*, CASE WHEN o.id = $1 THEN (SELECT COALESCE(sum(n.quantity), 0)::text FROM ncrs n
                   WHERE n.operation_pk = o.id AND (n.disposition IS NULL OR n.disposition = 'rework')
                     AND (n.lot_id IS NULL OR EXISTS (SELECT 1 FROM lots l WHERE l.id = n.lot_id AND l.order_id = o.order_id))) END AS ncr_quantity
           FROM order_operations o WHERE o.order_id = (SELECT order_id FROM order_operations WHERE id = $1) ORDER BY o.sequence`,
        values: [pk],
      });
      const [o, ops] = await Promise.all([oq, opsq]);
      const order = o.rows[0];
      if (!order) return null;
      const mine = ops.rows.find((r) => r.id === pk);
      return {
        order: toOrder(order),
        operations: ops.rows.map(toOperation),
        ncrQuantity: quantityFromDb(mine?.ncr_quantity ?? '0'),
      };
    },

    async reasonCodes() {
      const r = await db.pool.query<{ code: string; category: string; description: string; active: boolean }>(
        'SELECT code, category, description, active FROM reason_codes ORDER BY category, code',
      );
      return r.rows;
    },

    async addProductionEvent(tx, e) {
      // shift_id is filled by a trigger from `at` (migration 0004).
      deferInsert(asPg(tx), 'production_events', {
        at: e.at.toISOString(),
        kind: e.kind,
        quantity: formatQuantity(e.quantity),
        order_id: e.order.id,
        operation_pk: e.operation.pk,
        operation_id: e.operation.operationId,
        routing_step: e.routingStep,
        product_id: e.order.productId,
        work_unit_id: e.workUnitId,
        cause_code: e.causeCode,
        first_pass: e.firstPass,
      });
    },
  };
}

import type { Tx } from '../../app/ports.ts';
import type {
  NcrRecord,
  OperationCharacteristic,
  QualityOperation,
  QualityResultRecord,
  QualityStore,
} from '../../app/quality/quality-ports.ts';
import type { Disposition, NcrState, Verdict } from '../../domain/quality/quality.ts';
import { formatQuantity, quantityFromDb } from '../../domain/shared/quantity.ts';
import type { OperationState } from '../../domain/work-order/operation-state.ts';
import type { Database, Queryable } from './postgres-pool.ts';
import { asPg } from './postgres-unit-of-work.ts';

const num = (v: unknown): number | undefined =>
  v === null || v === undefined || v === '' ? undefined : Number(v);

/** The characteristics snapshot of an order operation (`[{id, name, kind, unit?, lsl?, usl?, target?}]`). */
function characteristicsOf(json: unknown): OperationCharacteristic[] {
  if (!Array.isArray(json)) return [];
  return json.map((raw) => {
    const c = raw as Record<string, unknown>;
    return {
      id: String(c.id),
      name: typeof c.name === 'string' ? c.name : String(c.id),
      kind: c.kind === 'attribute' ? 'attribute' : 'numeric',
      unit: typeof c.unit === 'string' ? c.unit : null,
      lsl: num(c.lsl),
      usl: num(c.usl),
      target: num(c.target) ?? null,
    };
  });
}

interface OperationRow {
  pk: number;
  order_id: string;
  product_id: string;
  operation_id: string;
  sequence: number;
  name: string;
  state: OperationState;
  work_unit_id: string | null;
  characteristics: unknown;
  is_rework: boolean;
  rework_of: number | null;
  rework_loop: number;
}

export interface ResultRow {
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

export const toResult = (r: ResultRow): QualityResultRecord => ({
  id: r.id,
  operationPk: r.operation_pk,
  characteristic: r.characteristic_id,
  kind: r.kind,
  value: r.kind === 'numeric' ? Number(r.value_numeric) : r.value_attribute!,
  lsl: r.lsl === null ? null : Number(r.lsl),
  usl: r.usl === null ? null : Number(r.usl),
  verdict: r.verdict,
  lotId: r.lot_id,
  actor: r.actor,
  personId: r.person_id,
  at: r.at.toISOString(),
  ncr: r.ncr_id === null ? null : { id: r.ncr_id, number: r.ncr_number! },
});

export interface NcrRow {
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
  signature: NcrRecord['signature'];
  rework_operation_pk: number | null;
  created_by: string;
  created_at: Date;
}

export const toNcr = (r: NcrRow): NcrRecord => ({
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

const NCR_SELECT = `SELECT n.*, o.operation_id FROM ncrs n JOIN order_operations o ON o.id = n.operation_pk`;

export function postgresQualityStore(db: Database): QualityStore {
  const q = (tx: Tx | null): Queryable => (tx ? asPg(tx) : db.pool);

  const ncrById = async (tx: Tx, id: number): Promise<NcrRecord> => {
    const r = await asPg(tx).query<NcrRow>(`${NCR_SELECT} WHERE n.id = $1`, [id]);
    return toNcr(r.rows[0]!);
  };

  return {
    async operation(tx, pk, lock) {
      const suffix = lock === 'update' ? 'FOR UPDATE OF o' : lock === 'share' ? 'FOR SHARE OF o' : '';
      const r = await q(tx).query<OperationRow>(
        `SELECT o.id AS pk, o.order_id, p.product_id, o.operation_id, o.sequence, o.name, o.state, o.work_unit_id,
                o.characteristics, o.is_rework, o.rework_of, o.rework_loop
           FROM order_operations o JOIN production_orders p ON p.id = o.order_id
          WHERE o.id = $1 ${suffix}`,
        [pk],
      );
      const row = r.rows[0];
      if (!row) return null;
      return {
        pk: row.pk,
        orderId: row.order_id,
        productId: row.product_id,
        operationId: row.operation_id,
        sequence: row.sequence,
        name: row.name,
        state: row.state,
        workUnitId: row.work_unit_id,
        characteristics: characteristicsOf(row.characteristics),
        isRework: row.is_rework,
        reworkOf: row.rework_of,
        reworkLoop: row.rework_loop,
      } satisfies QualityOperation;
    },

    async lockOrder(tx, orderId) {
      await asPg(tx).query('SELECT id FROM production_orders WHERE id = $1 FOR UPDATE', [orderId]);
    },

    async personIdOf(tx, username) {
      const r = await asPg(tx).query<{ id: string }>(
        'SELECT id FROM persons WHERE lower(username) = lower($1)',
        [username],
      );
      return r.rows[0]?.id ?? null;
    },

    async lot(tx, id, forUpdate = false) {
      const r = await asPg(tx).query<{ id: string; kind: string; status: string; order_id: string | null }>(
        `SELECT id, kind, status, order_id FROM lots WHERE id = $1 ${forUpdate ? 'FOR UPDATE' : ''}`,
        [id],
      );
      const l = r.rows[0];
      return l ? { id: l.id, kind: l.kind, status: l.status, orderId: l.order_id } : null;
    },

    async ncrCoverage(tx, operationPk) {
      const r = await asPg(tx).query<{ planned: string; reported: string; under: string }>(
        `SELECT o.planned_quantity::text AS planned, (o.good_quantity + o.scrap_quantity)::text AS reported,
                (SELECT COALESCE(sum(n.quantity), 0) FROM ncrs n
                  WHERE n.operation_pk = o.id AND (n.disposition IS NULL OR n.disposition = 'rework')
                    AND (n.lot_id IS NULL OR EXISTS (SELECT 1 FROM lots l WHERE l.id = n.lot_id AND l.order_id = o.order_id)))::text AS under
           FROM order_operations o WHERE o.id = $1`,
        [operationPk],
      );
      const row = r.rows[0];
      return {
        planned: quantityFromDb(row?.planned ?? '0'),
        reported: quantityFromDb(row?.reported ?? '0'),
        underNcr: quantityFromDb(row?.under ?? '0'),
      };
    },

    async setLotStatus(tx, id, status, at) {
      await asPg(tx).query('UPDATE lots SET status = $2, updated_at = $3 WHERE id = $1', [id, status, at]);
    },

    async reasonCode(tx, code) {
      const r = await asPg(tx).query<{ category: string; active: boolean }>(
        'SELECT category, active FROM reason_codes WHERE code = $1',
        [code],
      );
      return r.rows[0] ?? null;
    },

    async insertResult(tx, x) {
      const c = x.characteristic;
      const r = await asPg(tx).query<ResultRow>(
        `INSERT INTO quality_results (operation_pk, characteristic_id, kind, value_numeric, value_attribute, lsl, usl,
                                      verdict, lot_id, actor, person_id, at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
         RETURNING *, NULL::bigint AS ncr_id, NULL::text AS ncr_number`,
        [
          x.operationPk,
          c.id,
          c.kind,
          x.numeric === null ? null : String(x.numeric),
          x.attribute,
          c.kind === 'numeric' && c.lsl !== undefined ? String(c.lsl) : null,
          c.kind === 'numeric' && c.usl !== undefined ? String(c.usl) : null,
          x.verdict,
          x.lotId,
          x.actor,
          x.personId,
          x.at,
        ],
      );
      return toResult(r.rows[0]!);
    },

    async results(operationPk) {
      const r = await db.query<ResultRow>(
        `SELECT r.*, n.id AS ncr_id, n.number AS ncr_number
           FROM quality_results r LEFT JOIN ncrs n ON n.result_id = r.id
          WHERE r.operation_pk = $1 ORDER BY r.id`,
        [operationPk],
      );
      return r.rows.map(toResult);
    },

    async insertNcr(tx, n) {
      const r = await asPg(tx).query<{ id: number }>(
        `INSERT INTO ncrs (number, order_id, operation_pk, result_id, characteristic_id, lot_id, quantity, description,
                           cause_code, state, created_by, created_at)
         VALUES ('NCR-' || lpad(nextval('ncr_number')::text, 6, '0'), $1, $2, $3, $4, $5, $6, $7, $8, 'Open', $9, $10)
         RETURNING id`,
        [
          n.orderId,
          n.operationPk,
          n.resultId,
          n.characteristicId,
          n.lotId,
          formatQuantity(n.quantity),
          n.description,
          n.causeCode,
          n.createdBy,
          n.at,
        ],
      );
      return ncrById(tx, r.rows[0]!.id);
    },

    async ncr(tx, id, forUpdate = false) {
      const r = await q(tx).query<NcrRow>(
        `${NCR_SELECT} WHERE n.id = $1 ${forUpdate ? 'FOR UPDATE OF n' : ''}`,
        [id],
      );
      const row = r.rows[0];
      return row ? toNcr(row) : null;
    },

    async ncrs(f) {
      const r = await db.query<NcrRow>(
        `${NCR_SELECT}
          WHERE ($1::text IS NULL OR n.state = $1) AND ($2::text IS NULL OR n.order_id = $2)
          ORDER BY n.id LIMIT $3`,
        [f.state ?? null, f.orderId ?? null, f.limit],
      );
      return r.rows.map(toNcr);
    },

    async dispositionNcr(tx, id, p) {
      await asPg(tx).query(
        `UPDATE ncrs SET state = 'Dispositioned', disposition = $2, cause_code = $3, disposition_reason = $4,
                         dispositioned_by = $5, dispositioned_at = $6, signature = $7, rework_operation_pk = $8
          WHERE id = $1`,
        [
          id,
          p.disposition,
          p.causeCode,
          p.reason,
          p.by,
          p.at,
          p.signature === null ? null : JSON.stringify(p.signature),
          p.reworkOperationPk,
        ],
      );
      return ncrById(tx, id);
    },

    async closeNcr(tx, id) {
      await asPg(tx).query(`UPDATE ncrs SET state = 'Closed' WHERE id = $1`, [id]);
      return ncrById(tx, id);
    },

    async lastReworkLoop(tx, rootPk) {
      const r = await asPg(tx).query<{ last: number }>(
        'SELECT COALESCE(max(rework_loop), 0)::int AS last FROM order_operations WHERE rework_of = $1',
        [rootPk],
      );
      return r.rows[0]!.last;
    },

    async insertReworkOperation(tx, root, loop, quantity) {
      const r = await asPg(tx).query<{ pk: number; operation_id: string; sequence: number; name: string }>(
        `INSERT INTO order_operations (order_id, operation_id, sequence, name, work_center_id, allowed_work_units,
                                       standard_cycle_time_s, required_qualifications, parameters, bom, characteristics,
                                       planned_quantity, state, is_rework, rework_of, rework_loop)
         SELECT order_id, $2, sequence + $3, $4, work_center_id, allowed_work_units, standard_cycle_time_s,
                required_qualifications, parameters, '[]', characteristics, $5, 'Ready', true, id, $3
           FROM order_operations WHERE id = $1
         RETURNING id AS pk, operation_id, sequence, name`,
        [
          root.pk,
          `${root.operationId}-RW${loop}`,
          loop,
          `Rework of ${root.operationId}: ${root.name}`,
          formatQuantity(quantity),
        ],
      );
      const row = r.rows[0]!;
      return { pk: row.pk, operationId: row.operation_id, sequence: row.sequence, name: row.name };
    },

    async addOperationQuantity(tx, pk, field, quantity) {
      const column = { good: 'good_quantity', scrap: 'scrap_quantity', rework: 'rework_quantity' }[field];
      await asPg(tx).query(`UPDATE order_operations SET ${column} = ${column} + $2 WHERE id = $1`, [
        pk,
        formatQuantity(quantity),
      ]);
    },

    async addActivity(tx, a) {
      await asPg(tx).query(
        'INSERT INTO operation_activities (operation_pk, kind, at, actor, detail) VALUES ($1, $2, $3, $4, $5)',
        [a.operationPk, a.kind, a.at, a.actor, JSON.stringify(a.detail ?? null)],
      );
    },

    async addProductionEvent(tx, e) {
      await asPg(tx).query(
        `INSERT INTO production_events (at, kind, quantity, order_id, operation_pk, operation_id, routing_step, product_id,
                                        work_unit_id, cause_code, shift_id, first_pass, ncr_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, shift_of($1), $11, $12)`,
        [
          e.at,
          e.kind,
          formatQuantity(e.quantity),
          e.orderId,
          e.operationPk,
          e.operationId,
          e.routingStep,
          e.productId,
          e.workUnitId,
          e.causeCode,
          e.firstPass,
          e.ncrId,
        ],
      );
    },
  };
}

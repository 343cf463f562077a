import type {
  Consumption,
  Lot,
  LotKind,
  LotStatus,
  LotStore,
  MaterialInfo,
} from '../../app/material/material-ports.ts';
import type { Tx } from '../../app/ports.ts';
import { formatQuantity, quantityFromDb } from '../../domain/shared/quantity.ts';
import type { Database, Queryable } from './postgres-pool.ts';
import { asPg } from './postgres-unit-of-work.ts';

export interface LotRow {
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

interface ConsumptionRow {
  id: number;
  operation_pk: number;
  lot_id: string;
  into_lot_id: string | null;
  quantity: string;
  actor: string;
  person_id: string | null;
  equipment_id: string | null;
  at: Date;
}

export const toLot = (r: LotRow): Lot => ({
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

const toConsumption = (r: ConsumptionRow): Consumption => ({
  id: r.id,
  operationPk: r.operation_pk,
  lotId: r.lot_id,
  intoLotId: r.into_lot_id,
  quantity: quantityFromDb(r.quantity),
  actor: r.actor,
  personId: r.person_id,
  equipmentId: r.equipment_id,
  at: r.at,
});

const isPgError = (e: unknown, code: string): boolean =>
  typeof e === 'object' && e !== null && (e as { code?: unknown }).code === code;

const UNIQUE_VIOLATION = '23505';
const CHECK_VIOLATION = '23514';

export function postgresLotStore(db: Database): LotStore {
  const q = (tx: Tx | null): Queryable => (tx ? asPg(tx) : db.pool);

  return {
    async get(tx, id) {
      const r = await q(tx).query<LotRow>('SELECT * FROM lots WHERE id = $1', [id]);
      return r.rows[0] ? toLot(r.rows[0]) : null;
    },

    async lockMany(tx, ids) {
      const r = await asPg(tx).query<LotRow>(
        'SELECT * FROM lots WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE',
        [[...ids]],
      );
      return r.rows.map(toLot);
    },

    async list(f) {
      const where: string[] = [];
      const values: unknown[] = [];
      if (f.materialId !== undefined) {
        values.push(f.materialId);
        where.push(`material_id = $${values.length}`);
      }
      if (f.status !== undefined) {
        values.push(f.status);
        where.push(`status = $${values.length}`);
      }
      values.push(f.limit);
      const r = await db.pool.query<LotRow>(
        `SELECT * FROM lots ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
         ORDER BY created_at, id LIMIT $${values.length}`,
        values,
      );
      return r.rows.map(toLot);
    },

    async insert(tx, l) {
      // A savepoint keeps the caller's transaction usable when the id is taken.
      const pg = asPg(tx);
      await pg.query('SAVEPOINT lot_insert');
      try {
        const r = await pg.query<LotRow>(
          `INSERT INTO lots (id, kind, material_id, quantity, unit_id, status, location, supplier_lot, produced_by, order_id)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING *`,
          [
            l.id,
            l.kind,
            l.materialId,
            formatQuantity(l.quantity),
            l.unitId,
            l.status,
            l.location,
            l.supplierLot,
            l.producedBy,
            l.orderId,
          ],
        );
        await pg.query('RELEASE SAVEPOINT lot_insert');
        return toLot(r.rows[0]!);
      } catch (e) {
        if (!isPgError(e, UNIQUE_VIOLATION)) throw e;
        await pg.query('ROLLBACK TO SAVEPOINT lot_insert');
        return false;
      }
    },

    async update(tx, id, patch) {
      const sets: string[] = ['updated_at = now()'];
      const values: unknown[] = [id];
      const set = (column: string, v: unknown) => {
        values.push(v);
        sets.push(`${column} = $${values.length}`);
      };
      if (patch.quantity !== undefined) set('quantity', formatQuantity(patch.quantity));
      if (patch.status !== undefined) set('status', patch.status);
      if (patch.location !== undefined) set('location', patch.location);
      const r = await asPg(tx).query<LotRow>(
        `UPDATE lots SET ${sets.join(', ')} WHERE id = $1 RETURNING *`,
        values,
      );
      if (!r.rows[0]) throw new Error(`lot ${id} vanished inside its own transaction`);
      return toLot(r.rows[0]);
    },

    async take(tx, id, quantity) {
      const pg = asPg(tx);
      await pg.query('SAVEPOINT lot_take');
      try {
        const r = await pg.query<LotRow>(
          `UPDATE lots SET quantity = quantity - $2,
                  status = CASE WHEN quantity - $2 = 0 THEN 'Consumed' ELSE status END,
                  updated_at = now()
            WHERE id = $1 RETURNING *`,
          [id, formatQuantity(quantity)],
        );
        await pg.query('RELEASE SAVEPOINT lot_take');
        if (!r.rows[0]) throw new Error(`lot ${id} vanished inside its own transaction`);
        return toLot(r.rows[0]);
      } catch (e) {
        if (!isPgError(e, CHECK_VIOLATION)) throw e;
        await pg.query('ROLLBACK TO SAVEPOINT lot_take');
        return false;
      }
    },

    async material(tx, id) {
      const r = await q(tx).query<{
        id: string;
        unit_id: string;
        class: string;
        tracking: MaterialInfo['tracking'];
      }>('SELECT id, unit_id, class, tracking FROM material_definitions WHERE id = $1', [id]);
      const m = r.rows[0];
      return m ? { id: m.id, unitId: m.unit_id, class: m.class, tracking: m.tracking } : null;
    },

    async personOf(tx, username) {
      const r = await asPg(tx).query<{ id: string }>('SELECT id FROM persons WHERE username = $1', [
        username,
      ]);
      return r.rows[0]?.id ?? null;
    },

    async lockOperation(tx, pk) {
      const r = await asPg(tx).query<{
        id: number;
        order_id: string;
        operation_id: string;
        name: string;
        state: string;
        work_unit_id: string | null;
        person_id: string | null;
        bom: unknown[];
        order_material_id: string;
        order_external_id: string | null;
        order_state: string;
      }>(
        // The order's state is read, not locked: every order writer locks the order before its
        // operations, and a lock taken here after the operation's could deadlock with them. A hold
        // committed after this read orders after this transaction, as if it came later.
        `SELECT o.id, o.order_id, o.operation_id, o.name, o.state, o.work_unit_id, o.person_id, o.bom,
                p.material_id AS order_material_id, p.external_id AS order_external_id, p.state AS order_state
           FROM order_operations o JOIN production_orders p ON p.id = o.order_id
          WHERE o.id = $1 FOR UPDATE OF o`,
        [pk],
      );
      const o = r.rows[0];
      return o
        ? {
            pk: o.id,
            orderId: o.order_id,
            orderExternalId: o.order_external_id,
            operationId: o.operation_id,
            name: o.name,
            state: o.state,
            workUnitId: o.work_unit_id,
            personId: o.person_id,
            orderMaterialId: o.order_material_id,
            orderState: o.order_state,
            bom: Array.isArray(o.bom) ? o.bom : [],
          }
        : null;
    },

    async insertConsumption(tx, c) {
      const r = await asPg(tx).query<ConsumptionRow>(
        `INSERT INTO material_consumptions (operation_pk, lot_id, into_lot_id, quantity, actor, person_id, equipment_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING *`,
        [c.operationPk, c.lotId, c.intoLotId, formatQuantity(c.quantity), c.actor, c.personId, c.equipmentId],
      );
      return toConsumption(r.rows[0]!);
    },

    async consumptionsWithoutInto(tx, operationPk) {
      const r = await asPg(tx).query<ConsumptionRow>(
        'SELECT * FROM material_consumptions WHERE operation_pk = $1 AND into_lot_id IS NULL ORDER BY id',
        [operationPk],
      );
      return r.rows.map(toConsumption);
    },

    async producedBy(tx, operationPk) {
      const r = await asPg(tx).query<LotRow>('SELECT * FROM lots WHERE produced_by = $1 ORDER BY id', [
        operationPk,
      ]);
      return r.rows.map(toLot);
    },
  };
}

import type {
  GenealogyEdgeRecord,
  GenealogyKind,
  GenealogyStore,
  LotKind,
  LotStatus,
  QualityResultRecord,
} from '../../app/material/material-ports.ts';
import { formatQuantity, quantityFromDb } from '../../domain/shared/quantity.ts';
import type { Database } from './postgres-pool.ts';
import { asPg } from './postgres-unit-of-work.ts';

interface EdgeRow {
  id: number;
  from_lot: string;
  to_lot: string;
  kind: GenealogyKind;
  quantity: string;
  depth: number;
  at: Date;
  actor: string;
  person_id: string | null;
  person_name: string | null;
  equipment_id: string | null;
  operation_pk: number | null;
  order_id: string | null;
  operation_id: string | null;
  operation_name: string | null;
  work_unit_id: string | null;
}

/**
 * One recursive step per direction. `UNION` (not `UNION ALL`) drops a row already produced, and
 * the depth bound ends any cycle, so a corrupt genealogy cannot make the walk run away; each edge
 * is reported once, at the smallest depth it was reached.
 */
const WALK = {
  backward: { start: 'to_lot', next: 'from_lot' },
  forward: { start: 'from_lot', next: 'to_lot' },
} as const;

export function postgresGenealogyStore(db: Database): GenealogyStore {
  return {
    async addEdges(tx, edges) {
      if (edges.length === 0) return;
      await asPg(tx).query(
        `INSERT INTO genealogy_edges (from_lot, to_lot, kind, quantity, operation_pk, actor, person_id, equipment_id)
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::numeric[], $5::bigint[], $6::text[], $7::text[], $8::text[])`,
        [
          edges.map((e) => e.fromLot),
          edges.map((e) => e.toLot),
          edges.map((e) => e.kind),
          edges.map((e) => formatQuantity(e.quantity)),
          edges.map((e) => e.operationPk),
          edges.map((e) => e.actor),
          edges.map((e) => e.personId),
          edges.map((e) => e.equipmentId),
        ],
      );
    },

    async walk(lotId, direction, maxDepth) {
      const { start, next } = WALK[direction];
      const r = await db.pool.query<EdgeRow>(
        `WITH RECURSIVE walk(id, lot, depth) AS (
           SELECT e.id, e.${next}, 1 FROM genealogy_edges e WHERE e.${start} = $1
           UNION
           SELECT e.id, e.${next}, w.depth + 1
             FROM walk w JOIN genealogy_edges e ON e.${start} = w.lot
            WHERE w.depth < $2
         ), reached AS (
           SELECT id, min(depth) AS depth FROM walk GROUP BY id
         )
         SELECT e.id, e.from_lot, e.to_lot, e.kind, e.quantity::text AS quantity, r.depth, e.at, e.actor,
                e.person_id, p.name AS person_name, e.equipment_id, e.operation_pk,
                o.order_id, o.operation_id, o.name AS operation_name, o.work_unit_id
           FROM reached r
           JOIN genealogy_edges e ON e.id = r.id
           LEFT JOIN order_operations o ON o.id = e.operation_pk
           LEFT JOIN persons p ON p.id = e.person_id
          ORDER BY r.depth, e.id`,
        [lotId, maxDepth],
      );
      // Quality results of every operation in the tree in one query, not one subquery per edge.
      const opPks = [...new Set(r.rows.map((e) => e.operation_pk).filter((pk): pk is number => pk !== null))];
      const quality = new Map<number, (QualityResultRecord & { operationPk: number })[]>();
      if (opPks.length > 0) {
        const q = await db.pool.query<QualityResultRecord & { operationPk: number }>(
          `SELECT q.operation_pk AS "operationPk", q.characteristic_id AS "characteristicId", q.kind,
                  COALESCE(q.value_numeric::text, q.value_attribute) AS value, q.lsl::text AS lsl, q.usl::text AS usl,
                  q.verdict, q.lot_id AS "lotId", q.actor,
                  to_char(q.at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS at
             FROM quality_results q WHERE q.operation_pk = ANY($1::bigint[]) ORDER BY q.id`,
          [opPks],
        );
        for (const row of q.rows) {
          const list = quality.get(row.operationPk);
          if (list) list.push(row);
          else quality.set(row.operationPk, [row]);
        }
      }
      const resultsFor = (opPk: number | null, toLot: string): QualityResultRecord[] =>
        opPk === null
          ? []
          : (quality.get(opPk) ?? [])
              .filter((q) => q.lotId === null || q.lotId === toLot)
              .map(({ operationPk: _pk, ...rest }) => rest);
      return r.rows.map((e): GenealogyEdgeRecord => ({
        id: e.id,
        fromLot: e.from_lot,
        toLot: e.to_lot,
        kind: e.kind,
        quantity: quantityFromDb(e.quantity),
        depth: e.depth,
        at: e.at,
        actor: e.actor,
        personId: e.person_id,
        personName: e.person_name,
        equipmentId: e.equipment_id,
        operation:
          e.operation_pk === null
            ? null
            : {
                pk: e.operation_pk,
                orderId: e.order_id!,
                operationId: e.operation_id!,
                name: e.operation_name!,
                workUnitId: e.work_unit_id,
              },
        qualityResults: resultsFor(e.operation_pk, e.to_lot),
      }));
    },

    async lots(ids) {
      const r = await db.pool.query<{
        id: string;
        kind: LotKind;
        material_id: string;
        material_name: string;
        material_class: string;
        quantity: string;
        unit_id: string;
        status: LotStatus;
        order_id: string | null;
        supplier_lot: string | null;
        has_outgoing: boolean;
      }>(
        `SELECT l.id, l.kind, l.material_id, m.name AS material_name, m.class AS material_class,
                l.quantity::text AS quantity, l.unit_id, l.status, l.order_id, l.supplier_lot,
                EXISTS (SELECT 1 FROM genealogy_edges g WHERE g.from_lot = l.id) AS has_outgoing
           FROM lots l JOIN material_definitions m ON m.id = l.material_id
          WHERE l.id = ANY($1::text[])`,
        [[...ids]],
      );
      return r.rows.map((l) => ({
        id: l.id,
        kind: l.kind,
        materialId: l.material_id,
        materialName: l.material_name,
        materialClass: l.material_class,
        quantity: quantityFromDb(l.quantity),
        unitId: l.unit_id,
        status: l.status,
        orderId: l.order_id,
        supplierLot: l.supplier_lot,
        hasOutgoing: l.has_outgoing,
      }));
    },

    async orders(ids) {
      const r = await db.pool.query<{
        id: string;
        product_id: string;
        external_id: string | null;
        state: string;
      }>(
        'SELECT id, product_id, external_id, state FROM production_orders WHERE id = ANY($1::text[]) ORDER BY id',
        [[...ids]],
      );
      return r.rows.map((o) => ({
        id: o.id,
        productId: o.product_id,
        externalId: o.external_id,
        state: o.state,
      }));
    },
  };
}

import type {
  GenealogyEdgeRecord,
  GenealogyKind,
  GenealogyStore,
  LotKind,
  LotStatus,
  QualityResultRecord,
} from '../../app/material/material-ports.ts';
import { groupBy } from '../../domain/shared/group-by.ts';
import { formatQuantity } from '../../domain/shared/quantity.ts';
import type { Database } from './postgres-pool.ts';
import { asPg } from './postgres-unit-of-work.ts';

interface EdgeRow {
  id: number;
  from_lot: string;
  to_lot: string;
  kind: GenealogyKind;
  quantity: string;
  depth: number;
  /** ISO 8601 UTC with milliseconds, as PostgreSQL formats it (no Date parsed per edge). */
  at: string;
  actor: string;
  person_id: string | null;
  person_name: string | null;
  equipment_id: string | null;
  operation_pk: number | null;
}

interface OperationRow {
  id: number;
  order_id: string;
  operation_id: string;
  name: string;
  work_unit_id: string | null;
}

interface LotRow {
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
  has_outgoing?: boolean;
}

/**
 * The walk's rows arrive as arrays (`rowMode: 'array'`, in walkSql's column order) and become
 * EdgeRows through one object literal: node-postgres builds row objects with a keyed store per
 * column, a third of the walk's time on a 2,243-edge tree (session 12).
 */
type EdgeTuple = [
  number,
  string,
  string,
  GenealogyKind,
  string,
  number,
  string,
  string,
  string | null,
  string | null,
  string | null,
  number | null,
];
const edgeRow = (r: EdgeTuple): EdgeRow => ({
  id: r[0],
  from_lot: r[1],
  to_lot: r[2],
  kind: r[3],
  quantity: r[4],
  depth: r[5],
  at: r[6],
  actor: r[7],
  person_id: r[8],
  person_name: r[9],
  equipment_id: r[10],
  operation_pk: r[11],
});

/**
 * Which end of an edge a walk starts from, per direction. The walk runs over lots, not edges:
 * `UNION` keeps each lot once, so every lot is expanded once whatever the number of paths to it,
 * and a cycle in a corrupt genealogy ends because a lot seen before adds nothing. The recursion
 * reads only the covering index (start lot INCLUDE next lot); the edges are read once at the end,
 * as every edge whose start lot was reached (session 11: 24 → 5 ms for a 2,432-edge walk).
 */
const WALK = {
  backward: { start: 'to_lot', next: 'from_lot' },
  forward: { start: 'from_lot', next: 'to_lot' },
} as const;

/** The walk's statement ($1: the lot), its columns in EdgeTuple's order; exported for the trace benchmark's EXPLAIN. */
export function walkSql(direction: 'backward' | 'forward'): string {
  const { start, next } = WALK[direction];
  return `WITH RECURSIVE reached(lot) AS (
            SELECT $1::text
            UNION
            SELECT e.${next} FROM reached r JOIN genealogy_edges e ON e.${start} = r.lot
          )
          SELECT e.id, e.from_lot, e.to_lot, e.kind, trim_scale(e.quantity)::text AS quantity, 0 AS depth,
                 to_char(e.at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS at, e.actor,
                 e.person_id, p.name AS person_name, e.equipment_id, e.operation_pk
            FROM genealogy_edges e LEFT JOIN persons p ON p.id = e.person_id
           WHERE e.${start} IN (SELECT lot FROM reached)`;
}

/**
 * Each edge's smallest depth (1 for the edges at `root`), by breadth-first search from `root`;
 * edges deeper than `maxDepth` are left out. Ordered by depth, then id.
 */
function byDepth(
  root: string,
  rows: EdgeRow[],
  direction: 'backward' | 'forward',
  maxDepth: number,
): EdgeRow[] {
  const from = groupBy(rows, (row) => (direction === 'backward' ? row.to_lot : row.from_lot));
  const out: EdgeRow[] = [];
  const seen = new Set<string>([root]);
  let level = [root];
  for (let depth = 1; depth <= maxDepth && level.length > 0; depth++) {
    const nextLevel: string[] = [];
    const edges: EdgeRow[] = [];
    for (const lot of level) {
      for (const row of from.get(lot) ?? []) {
        row.depth = depth;
        edges.push(row);
        const to = direction === 'backward' ? row.from_lot : row.to_lot;
        if (!seen.has(to)) {
          seen.add(to);
          nextLevel.push(to);
        }
      }
    }
    edges.sort((a, b) => a.id - b.id);
    for (const e of edges) out.push(e);
    level = nextLevel;
  }
  return out;
}

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

    async trace(lotId, direction, maxDepth, opts) {
      // One connection, pipelined (ADR 0011): the walk, then the operations, quality results and
      // lots it reached in one round trip.
      const client = await db.pool.connect();
      try {
        const walked = await client.query<EdgeTuple>({
          name: `loom_genealogy_walk_${direction}`,
          text: walkSql(direction),
          values: [lotId],
          rowMode: 'array',
        });
        const edges = byDepth(lotId, walked.rows.map(edgeRow), direction, maxDepth);
        const opPks = [
          ...new Set(edges.map((e) => e.operation_pk).filter((pk): pk is number => pk !== null)),
        ];
        const lotIds = [...new Set([lotId, ...edges.flatMap((e) => [e.from_lot, e.to_lot])])];
        const [operations, quality, lots] = await Promise.all([
          opPks.length === 0
            ? null
            : client.query<OperationRow>({
                name: 'loom_genealogy_operations',
                text: `SELECT id, order_id, operation_id, name, work_unit_id FROM order_operations WHERE id = ANY($1::bigint[])`,
                values: [opPks],
              }),
          opPks.length === 0
            ? null
            : client.query<QualityResultRecord & { operationPk: number }>({
                name: 'loom_genealogy_quality',
                text: `SELECT q.operation_pk AS "operationPk", q.characteristic_id AS "characteristicId", q.kind,
                              COALESCE(q.value_numeric::text, q.value_attribute) AS value, q.lsl::text AS lsl,
                              q.usl::text AS usl, q.verdict, q.lot_id AS "lotId", q.actor,
                              to_char(q.at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS at
                         FROM quality_results q WHERE q.operation_pk = ANY($1::bigint[]) ORDER BY q.id`,
                values: [opPks],
              }),
          client.query<LotRow>({
            name: opts?.outgoing ? 'loom_genealogy_lots_outgoing' : 'loom_genealogy_lots',
            text: `SELECT l.id, l.kind, l.material_id, m.name AS material_name, m.class AS material_class,
                          trim_scale(l.quantity)::text AS quantity, l.unit_id, l.status, l.order_id, l.supplier_lot
                          ${opts?.outgoing ? ', EXISTS (SELECT 1 FROM genealogy_edges g WHERE g.from_lot = l.id) AS has_outgoing' : ''}
                     FROM lots l JOIN material_definitions m ON m.id = l.material_id
                    WHERE l.id = ANY($1::text[])`,
            values: [lotIds],
          }),
        ]);
        const ops = new Map((operations?.rows ?? []).map((o) => [o.id, o]));
        const results = groupBy(quality?.rows ?? [], (row) => row.operationPk);
        // The edges into one lot share their operation's results: one array for all of them.
        const shared = new Map<string, QualityResultRecord[]>();
        const resultsFor = (opPk: number | null, toLot: string): QualityResultRecord[] => {
          if (opPk === null) return [];
          const key = `${opPk} ${toLot}`;
          let list = shared.get(key);
          if (!list) {
            list = (results.get(opPk) ?? [])
              .filter((q) => q.lotId === null || q.lotId === toLot)
              .map(({ operationPk: _pk, ...rest }) => rest);
            shared.set(key, list);
          }
          return list;
        };
        return {
          // Every walked row is reachable; one left out by byDepth lies beyond maxDepth.
          truncated: edges.length < walked.rows.length,
          edges: edges.map((e): GenealogyEdgeRecord => {
            const op = e.operation_pk === null ? undefined : ops.get(e.operation_pk);
            return {
              id: e.id,
              fromLot: e.from_lot,
              toLot: e.to_lot,
              kind: e.kind,
              quantity: e.quantity,
              depth: e.depth,
              at: e.at,
              actor: e.actor,
              personId: e.person_id,
              personName: e.person_name,
              equipmentId: e.equipment_id,
              operation: op
                ? {
                    pk: op.id,
                    orderId: op.order_id,
                    operationId: op.operation_id,
                    name: op.name,
                    workUnitId: op.work_unit_id,
                  }
                : null,
              qualityResults: resultsFor(e.operation_pk, e.to_lot),
            };
          }),
          lots: lots.rows.map((l) => ({
            id: l.id,
            kind: l.kind,
            materialId: l.material_id,
            materialName: l.material_name,
            materialClass: l.material_class,
            quantity: l.quantity,
            unitId: l.unit_id,
            status: l.status,
            orderId: l.order_id,
            supplierLot: l.supplier_lot,
            ...(opts?.outgoing ? { hasOutgoing: l.has_outgoing === true } : {}),
          })),
        };
      } finally {
        client.release();
      }
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

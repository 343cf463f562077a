import type {
  GenealogyEdgeRecord,
  GenealogyKind,
  GenealogyStore,
  LotKind,
  LotStatus,
  QualityResultRecord,
  TraceLot,
  TraceOperation,
} from '../../app/material/material-ports.ts';
import { groupBy } from '../../domain/shared/group-by.ts';
import { formatQuantity } from '../../domain/shared/quantity.ts';
import type { Database } from './postgres-pool.ts';
import { asPg } from './postgres-unit-of-work.ts';

/** The trace's lookups' rows, as arrays in their statements' column order (rowMode: 'array'). */
type OperationTuple = [number, string, string, string, string | null];
type QualityTuple = [
  number,
  string,
  string,
  string,
  string | null,
  string | null,
  string,
  string | null,
  string,
  number,
];
type LotTuple = [
  string,
  LotKind,
  string,
  string,
  string,
  string,
  string,
  LotStatus,
  string | null,
  string | null,
  boolean?,
];

/**
 * The walk's rows arrive as arrays (`rowMode: 'array'`, in walkSql's column order) and become
 * GenealogyEdgeRecords, the API's own shape, through one object literal: node-postgres builds
 * row objects with a keyed store per column (a third of the walk's time on a 2,243-edge tree,
 * session 12), and every copy of 2,000 edges is garbage the young generation must scavenge.
 */
type EdgeTuple = [
  number,
  string,
  string,
  GenealogyKind,
  string,
  number,
  string,
  string | null,
  string | null,
  string | null,
  number | null,
];
type Person = NonNullable<GenealogyEdgeRecord['person']>;

/** Edge records from the walk's rows; one person object per person. */
function edgeRecords(rows: readonly EdgeTuple[]): GenealogyEdgeRecord[] {
  const persons = new Map<string, Person>();
  const personOf = (id: string | null, name: string | null): Person | null => {
    if (id === null) return null;
    let p = persons.get(id);
    if (!p) {
      p = { id, name };
      persons.set(id, p);
    }
    return p;
  };
  const out = new Array<GenealogyEdgeRecord>(rows.length);
  // The edges into one lot come one after another and were written by one transaction, at one
  // time: each time is formatted once.
  let lastMs = Number.NaN;
  let lastAt = '';
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i]!;
    if (r[5] !== lastMs) {
      lastMs = r[5];
      // Milliseconds since the epoch, formatted here: PostgreSQL 18's to_char costs 0.7 µs a row
      // (2.5 times PostgreSQL 15's), 1.7 ms of a 2,400-edge walk; toISOString costs a fifth of that.
      lastAt = new Date(lastMs).toISOString();
    }
    out[i] = {
      id: r[0],
      kind: r[3],
      from: r[1],
      to: r[2],
      quantity: r[4],
      at: lastAt,
      actor: r[6],
      person: personOf(r[7], r[8]),
      equipment: r[9],
      operation: r[10],
    };
  }
  return out;
}

/**
 * A PostgreSQL text[] literal (`{"a","b\\"c"}`): every element quoted, `"` and `\` escaped.
 * node-postgres builds one by concatenating element by element; a trace passes 700 lot ids to two
 * statements, and building the literal once halves that work.
 */
export function textArrayLiteral(values: Iterable<string>): string {
  const quoted: string[] = [];
  for (const v of values) quoted.push(/["\\]/.test(v) ? `"${v.replace(/["\\]/g, '\\$&')}"` : `"${v}"`);
  return `{${quoted.join(',')}}`;
}

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
          SELECT e.id, e.from_lot, e.to_lot, e.kind, trim_scale(e.quantity)::text AS quantity,
                 floor(extract(epoch FROM e.at) * 1000)::bigint AS at_ms, e.actor,
                 e.person_id, p.name AS person_name, e.equipment_id, e.operation_pk
            FROM genealogy_edges e LEFT JOIN persons p ON p.id = e.person_id
           WHERE e.${start} IN (SELECT lot FROM reached)`;
}

/**
 * The edges reachable from `root` within `maxDepth` levels, by breadth-first search: each edge
 * at its smallest depth, ordered by depth, then id.
 */
function byDepth(
  root: string,
  edges: readonly GenealogyEdgeRecord[],
  direction: 'backward' | 'forward',
  maxDepth: number,
): GenealogyEdgeRecord[] {
  const backward = direction === 'backward';
  const from = groupBy(edges, (e) => (backward ? e.to : e.from));
  const out: GenealogyEdgeRecord[] = [];
  const seen = new Set<string>([root]);
  let level = [root];
  for (let depth = 1; depth <= maxDepth && level.length > 0; depth++) {
    const nextLevel: string[] = [];
    const atDepth: GenealogyEdgeRecord[] = [];
    for (const lot of level) {
      for (const e of from.get(lot) ?? []) {
        atDepth.push(e);
        const to = backward ? e.from : e.to;
        if (!seen.has(to)) {
          seen.add(to);
          nextLevel.push(to);
        }
      }
    }
    atDepth.sort((a, b) => a.id - b.id);
    for (const e of atDepth) out.push(e);
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

    async walk(lotId, direction, maxDepth) {
      const walked = await db.pool.query<EdgeTuple>({
        name: `loom_genealogy_walk_${direction}`,
        text: walkSql(direction),
        values: [lotId],
        rowMode: 'array',
      });
      const edges = byDepth(lotId, edgeRecords(walked.rows), direction, maxDepth);
      // Every walked row is reachable; one left out by byDepth lies beyond maxDepth.
      return { edges, truncated: edges.length < walked.rows.length };
    },

    async reached(keys, opts) {
      // The operations, quality results and lots as three statements on connections of their
      // own, so PostgreSQL runs them side by side on the machine's cores. Pipelined on one
      // connection they ran one after another: the store call for a level-12 trace took 17–21 ms
      // (median) against 14–17 ms side by side (session 14, paired runs; session 18 over HTTP:
      // p90 48–50 against 42–44 ms). No connection is held while another is awaited, so
      // concurrent traces cannot starve the pool.
      const opPks = keys.operations;
      // Array literals built once here: node-postgres builds one by concatenating element by
      // element, 236 kB of garbage for the 700 operation pks of a deep trace (heap sampling).
      const opPkList = `{${opPks.join(',')}}`;
      const lotIds = textArrayLiteral(keys.lots);
      const [operations, quality, lots] = await Promise.all([
        opPks.length === 0
          ? null
          : db.pool.query<OperationTuple>({
              name: 'loom_genealogy_operations',
              text: `SELECT id, order_id, operation_id, name, work_unit_id
                       FROM order_operations WHERE id = ANY($1::bigint[])`,
              values: [opPkList],
              rowMode: 'array',
            }),
        // An operation's results for itself or for a lot in the trace: not those for the other
        // hundred serials the same operation made. IN (SELECT unnest) is a hashed subplan;
        // `= ANY($2)` compared each result with every lot of the trace, 18 % of a deep trace's
        // PostgreSQL time.
        opPks.length === 0
          ? null
          : db.pool.query<QualityTuple>({
              name: 'loom_genealogy_quality',
              text: `SELECT q.operation_pk, q.characteristic_id, q.kind,
                            COALESCE(q.value_numeric::text, q.value_attribute), q.lsl::text, q.usl::text,
                            q.verdict, q.lot_id, q.actor, floor(extract(epoch FROM q.at) * 1000)::bigint
                       FROM quality_results q
                      WHERE q.operation_pk = ANY($1::bigint[])
                        AND (q.lot_id IS NULL OR q.lot_id IN (SELECT unnest($2::text[])))
                      ORDER BY q.id`,
              values: [opPkList, lotIds],
              rowMode: 'array',
            }),
        db.pool.query<LotTuple>({
          name: opts?.outgoing ? 'loom_genealogy_lots_outgoing' : 'loom_genealogy_lots',
          text: `SELECT l.id, l.kind, l.material_id, m.name, m.class, trim_scale(l.quantity)::text, l.unit_id,
                        l.status, l.order_id, l.supplier_lot
                        ${opts?.outgoing ? ', EXISTS (SELECT 1 FROM genealogy_edges g WHERE g.from_lot = l.id)' : ''}
                   FROM lots l JOIN material_definitions m ON m.id = l.material_id
                  WHERE l.id = ANY($1::text[])`,
          values: [lotIds],
          rowMode: 'array',
        }),
      ]);
      // Records straight from the rows (as the walk's edges): no row objects copied into others.
      const results = new Map<number, QualityResultRecord[]>();
      for (const q of quality?.rows ?? []) {
        const record: QualityResultRecord = {
          characteristicId: q[1],
          kind: q[2],
          value: q[3],
          lsl: q[4],
          usl: q[5],
          verdict: q[6],
          lotId: q[7],
          actor: q[8],
          at: new Date(q[9]).toISOString(),
        };
        const list = results.get(q[0]);
        if (list) list.push(record);
        else results.set(q[0], [record]);
      }
      return {
        operations: (operations?.rows ?? []).map((o): TraceOperation => ({
          id: o[0],
          orderId: o[1],
          operationId: o[2],
          name: o[3],
          workUnit: o[4],
          qualityResults: results.get(o[0]) ?? [],
        })),
        lots: lots.rows.map((l): TraceLot => {
          const lot: TraceLot = {
            id: l[0],
            kind: l[1],
            material: l[2],
            materialName: l[3],
            materialClass: l[4],
            quantity: l[5],
            unit: l[6],
            status: l[7],
            orderId: l[8],
            supplierLot: l[9],
          };
          return opts?.outgoing ? { ...lot, hasOutgoing: l[10] === true } : lot;
        }),
      };
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

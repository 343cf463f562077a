import type { KpiCounts, KpiGroupBy, KpiQuery, KpiStore } from '../../app/quality/quality-ports.ts';
import { quantityFromDb } from '../../domain/shared/quantity.ts';
import type { Database } from './postgres-pool.ts';

/**
 * Quality KPIs straight from production_events (docs/kpi.md has the definitions). Every fact a
 * KPI groups by is copied into the event row, so a time range is one index range scan and a
 * GROUP BY, no joins.
 */
const SUMS = `
  COALESCE(sum(quantity) FILTER (WHERE first_pass), 0)::text AS processed,
  COALESCE(sum(quantity) FILTER (WHERE first_pass AND kind = 'good' AND ncr_id IS NULL), 0)::text AS first_pass_good,
  COALESCE(sum(quantity) FILTER (WHERE kind = 'good'), 0)::text AS good,
  COALESCE(sum(quantity) FILTER (WHERE kind = 'rework'), 0)::text AS rework,
  COALESCE(sum(quantity) FILTER (WHERE kind = 'scrap'), 0)::text AS scrap`;

/** $1 from (inclusive), $2 to (exclusive), $3 product; NULL leaves a bound open. */
const WHERE = `($1::timestamptz IS NULL OR e.at >= $1) AND ($2::timestamptz IS NULL OR e.at < $2)
  AND ($3::text IS NULL OR e.product_id = $3)`;

const KEYS: Readonly<Record<KpiGroupBy, readonly (readonly [string, string])[]>> = {
  operation: [
    ['product', 'product_id'],
    ['operation', 'routing_step'],
  ],
  product: [['product', 'product_id']],
  workUnit: [['workUnit', 'work_unit_id']],
  cause: [['cause', 'cause_code']],
  shift: [['shift', 'shift_id']],
};

interface SumsRow {
  processed: string;
  first_pass_good: string;
  good: string;
  rework: string;
  scrap: string;
}

const counts = (r: SumsRow): KpiCounts => ({
  processed: quantityFromDb(r.processed),
  firstPassGood: quantityFromDb(r.first_pass_good),
  good: quantityFromDb(r.good),
  rework: quantityFromDb(r.rework),
  scrap: quantityFromDb(r.scrap),
});

export function postgresKpiStore(db: Database): KpiStore {
  const params = (q: KpiQuery) => [q.from, q.to, q.productId];
  return {
    async productKnown(productId) {
      const r = await db.query<{ known: boolean }>(
        `SELECT EXISTS (SELECT 1 FROM products WHERE id = $1)
             OR EXISTS (SELECT 1 FROM production_events WHERE product_id = $1) AS known`,
        [productId],
      );
      return r.rows[0]?.known === true;
    },

    async groups(q, groupBy) {
      const keys = KEYS[groupBy];
      const cols = keys.map(([alias, col]) => `e.${col} AS "${alias}"`).join(', ');
      const by = keys.map(([, col]) => `e.${col}`).join(', ');
      // Good quantity carries no cause: by cause, only what was lost to one is listed.
      const onlyCaused = groupBy === 'cause' ? 'AND e.cause_code IS NOT NULL' : '';
      const r = await db.query<SumsRow & Record<string, string | null>>(
        `SELECT ${cols}, ${SUMS} FROM production_events e WHERE ${WHERE} ${onlyCaused}
          GROUP BY ${by} ORDER BY ${by} NULLS LAST`,
        params(q),
      );
      return r.rows.map((row) => ({
        key: Object.fromEntries(keys.map(([alias]) => [alias, row[alias] ?? null])),
        ...counts(row),
      }));
    },

    async totals(q) {
      const r = await db.query<SumsRow>(`SELECT ${SUMS} FROM production_events e WHERE ${WHERE}`, params(q));
      return counts(r.rows[0]!);
    },

    async steps(q) {
      const r = await db.query<SumsRow & { product_id: string; routing_step: string }>(
        `SELECT e.product_id, e.routing_step, ${SUMS} FROM production_events e WHERE ${WHERE}
          GROUP BY e.product_id, e.routing_step ORDER BY e.product_id, e.routing_step`,
        params(q),
      );
      return r.rows.map((row) => ({
        productId: row.product_id,
        operation: row.routing_step,
        ...counts(row),
      }));
    },

    async reworkLoops(q) {
      const r = await db.query<{
        product_id: string;
        routing_step: string;
        rework_operations: number;
        max_loop: number;
        quantity: string;
      }>(
        `SELECT e.product_id, e.routing_step, count(DISTINCT n.rework_operation_pk)::int AS rework_operations,
                COALESCE(max(o.rework_loop), 0)::int AS max_loop, sum(e.quantity)::text AS quantity
           FROM production_events e
           JOIN ncrs n ON n.id = e.ncr_id
           JOIN order_operations o ON o.id = n.rework_operation_pk
          WHERE e.kind = 'rework' AND ${WHERE}
          GROUP BY e.product_id, e.routing_step ORDER BY e.product_id, e.routing_step`,
        params(q),
      );
      return r.rows.map((row) => ({
        productId: row.product_id,
        operation: row.routing_step,
        reworkOperations: row.rework_operations,
        maxLoop: row.max_loop,
        reworkQuantity: quantityFromDb(row.quantity),
      }));
    },
  };
}

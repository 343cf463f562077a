/**
 * Orders, operations, lots and production events made with SQL, for the quality and KPI suites,
 * while the order API is built alongside. Master data comes from examples/plant.yaml through the
 * real import endpoint.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { TestApp } from './app.ts';

const EXAMPLE = readFileSync(fileURLToPath(new URL('../../examples/plant.yaml', import.meta.url)), 'utf8');

export async function importExamplePlant(t: TestApp): Promise<void> {
  const res = await t.app.inject({
    method: 'POST',
    url: '/api/plant/import',
    headers: { cookie: await t.adminCookie(), 'content-type': 'application/yaml' },
    payload: EXAMPLE,
  });
  if (res.statusCode !== 200) throw new Error(`plant import failed: ${res.statusCode} ${res.body}`);
}

export interface FixtureOrder {
  readonly id: string;
  /** Order operation pk by routing step id ('10', '20', …). */
  readonly ops: Readonly<Record<string, number>>;
}

let orderCount = 0;

/**
 * A production order expanded from the product's routing the way release does it: steps at
 * multiples of 100, characteristics snapshotted from routing_operation_characteristics.
 */
export async function createOrder(
  t: TestApp,
  productId: string,
  quantity: string,
  opts: { id?: string; state?: string } = {},
): Promise<FixtureOrder> {
  const id = opts.id ?? `PO-Q-${++orderCount}`;
  const db = t.database.db;
  await db.query(
    `INSERT INTO production_orders (id, product_id, material_id, quantity, unit_id, state, created_by)
     SELECT $1, p.id, p.material_id, $3, m.unit_id, $4, 'fixture'
       FROM products p JOIN material_definitions m ON m.id = p.material_id WHERE p.id = $2`,
    [id, productId, quantity, opts.state ?? 'InProgress'],
  );
  const r = await db.query<{ id: number; operation_id: string }>(
    `INSERT INTO order_operations (order_id, operation_id, sequence, name, work_center_id, allowed_work_units,
                                   standard_cycle_time_s, required_qualifications, parameters, bom, characteristics,
                                   planned_quantity, state)
     SELECT $1, o.operation_id, (row_number() OVER (ORDER BY o.position))::int * 100, o.name, o.work_center_id,
            COALESCE((SELECT array_agg(equipment_id ORDER BY position) FROM routing_operation_work_units w
                       WHERE w.product_id = o.product_id AND w.operation_id = o.operation_id), '{}'),
            o.standard_cycle_time_s,
            COALESCE((SELECT array_agg(qualification_id ORDER BY position) FROM routing_operation_qualifications x
                       WHERE x.product_id = o.product_id AND x.operation_id = o.operation_id), '{}'),
            o.parameters, '[]',
            COALESCE((SELECT jsonb_agg(jsonb_build_object(
                        'id', c.characteristic_id, 'name', c.name, 'kind', c.kind, 'unit', c.unit_id,
                        'lsl', c.lsl, 'usl', c.usl, 'target', c.target) ORDER BY c.position)
                      FROM routing_operation_characteristics c
                      WHERE c.product_id = o.product_id AND c.operation_id = o.operation_id), '[]'),
            $3, 'Pending'
       FROM routing_operations o WHERE o.product_id = $2
     RETURNING id, operation_id`,
    [id, productId, quantity],
  );
  if (r.rowCount === 0) throw new Error(`product ${productId} has no routing`);
  return { id, ops: Object.fromEntries(r.rows.map((x) => [x.operation_id, x.id])) };
}

export async function setOperation(
  t: TestApp,
  pk: number,
  state: string,
  workUnitId: string | null = null,
): Promise<void> {
  await t.database.db.query(
    `UPDATE order_operations SET state = $2::text, work_unit_id = COALESCE($3, work_unit_id),
            started_at = CASE WHEN $2::text IN ('Running', 'Paused') THEN COALESCE(started_at, now()) ELSE started_at END
      WHERE id = $1`,
    [pk, state, workUnitId],
  );
}

export async function createLot(t: TestApp, id: string, materialId: string, quantity: string): Promise<void> {
  await t.database.db.query(
    `INSERT INTO lots (id, kind, material_id, quantity, unit_id, status)
     SELECT $1, 'lot', m.id, $3, m.unit_id, 'Released' FROM material_definitions m WHERE m.id = $2`,
    [id, materialId, quantity],
  );
}

/**
 * A `good` production event as the completion endpoint records it: first pass unless reported by
 * a rework operation, routing step = the step the rework belongs to, shift from its time.
 */
export async function goodEvent(t: TestApp, operationPk: number, quantity: string, at: Date): Promise<void> {
  await t.database.db.query(
    `INSERT INTO production_events (at, kind, quantity, order_id, operation_pk, operation_id, routing_step, product_id,
                                    work_unit_id, shift_id, first_pass)
     SELECT $2, 'good', $3, o.order_id, o.id, o.operation_id, COALESCE(root.operation_id, o.operation_id),
            p.product_id, o.work_unit_id, shift_of($2), NOT o.is_rework
       FROM order_operations o
       JOIN production_orders p ON p.id = o.order_id
       LEFT JOIN order_operations root ON root.id = o.rework_of
      WHERE o.id = $1`,
    [operationPk, at, quantity],
  );
}

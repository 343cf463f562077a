import type { Database } from '../../src/adapters/db/postgres-pool.ts';

/**
 * Production orders and operations written straight into the tables, for suites that need an
 * operation in a given state without going through the order API (which has its own suite).
 * Needs the example plant model (examples/plant.yaml) imported.
 */
export async function insertOrder(
  db: Database,
  o: { id: string; product?: string; material?: string; quantity?: string; unit?: string; state?: string },
): Promise<string> {
  await db.query(
    `INSERT INTO production_orders (id, product_id, material_id, quantity, unit_id, state, created_by)
     VALUES ($1, $2, $3, $4, $5, $6, 'test')`,
    [
      o.id,
      o.product ?? 'compact-sedan',
      o.material ?? 'compact-sedan',
      o.quantity ?? '10',
      o.unit ?? 'pcs',
      o.state ?? 'InProgress',
    ],
  );
  return o.id;
}

export interface BomLine {
  readonly material: string;
  readonly quantity: string;
  readonly unit?: string;
}

/** One operation of `orderId` (Running on its work unit unless told); returns order_operations.id. */
export async function insertOperation(
  db: Database,
  op: {
    orderId: string;
    operationId: string;
    sequence?: number;
    name?: string;
    workCenter?: string;
    workUnit?: string;
    bom?: readonly BomLine[];
    state?: string;
    personId?: string | null;
  },
): Promise<number> {
  const running = (op.state ?? 'Running') === 'Running';
  const r = await db.query<{ id: number }>(
    `INSERT INTO order_operations (order_id, operation_id, sequence, name, work_center_id, allowed_work_units,
                                   work_unit_id, standard_cycle_time_s, bom, planned_quantity, state,
                                   started_at, started_by, person_id)
     VALUES ($1, $2, $3, $4, $5, ARRAY[$6], $6, 60, $7, 1, $8,
             CASE WHEN $9 THEN now() END, CASE WHEN $9 THEN 'test' END, $10)
     RETURNING id`,
    [
      op.orderId,
      op.operationId,
      op.sequence ?? Number(op.operationId) * 10,
      op.name ?? `Operation ${op.operationId}`,
      op.workCenter ?? 'assembly-line-1',
      op.workUnit ?? 'asm-station-10',
      JSON.stringify(op.bom ?? []),
      op.state ?? 'Running',
      running,
      op.personId ?? null,
    ],
  );
  return r.rows[0]!.id;
}

export async function setOperationState(db: Database, pk: number, state: string): Promise<void> {
  await db.query('UPDATE order_operations SET state = $2 WHERE id = $1', [pk, state]);
}

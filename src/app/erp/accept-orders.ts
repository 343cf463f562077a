import { z } from 'zod';
import type { Actor } from '../../domain/auth/roles.ts';
import { parseAt } from '../../domain/shared/field-issues.ts';
import { parsePositiveQuantity } from '../../domain/shared/quantity.ts';
import { fail, ok, type FieldIssue, type Result } from '../../domain/shared/result.ts';
import { createOrder, type OrderWithOperations } from '../execution/create-order.ts';
import type { CommandContext, ExecutionDeps } from '../execution/execution-deps.ts';
import type { Tx } from '../ports.ts';

/** Most orders one request may carry: one transaction, so its size bounds lock time and memory. */
export const MAX_ORDERS_PER_REQUEST = 1000;

/** An order as the ERP sends it; `externalId` is the ERP's own order number. */
export const ErpOrderSchema = z.strictObject({
  externalId: z.string().trim().min(1).max(100),
  product: z.string().min(1).max(64),
  quantity: z.union([z.number(), z.string().max(40)]),
  /** When given, must be the product's unit: Loom does not convert units. */
  unit: z.string().min(1).max(64).optional(),
  dueAt: z.iso.datetime({ offset: true }).optional(),
  priority: z.number().int().min(1).max(999).optional(),
});
export type ErpOrder = z.output<typeof ErpOrderSchema>;

export interface AcceptedOrders {
  readonly created: number;
  readonly updated: number;
  readonly unchanged: number;
  readonly orders: readonly (OrderWithOperations & { readonly index: number })[];
}

/** One item's refusal in a batch, located by its path in the request (`orders[3]`). */
export interface ItemError {
  readonly path: string;
  readonly code: string;
  readonly message: string;
}

const under = (base: string, path: string) =>
  base === '' ? path : path === '' ? base : path.startsWith('[') ? `${base}${path}` : `${base}.${path}`;

/**
 * Creates, updates or confirms a batch of ERP orders in the caller's transaction, all or nothing.
 * Each order goes through `createOrder` (idempotent on its external id). Every bad item is
 * reported with its path (`orders[3].quantity`), not just the first, so the ERP can fix the
 * batch in one round. `pathOf(i)` locates item i in the caller's document.
 */
export async function acceptOrders(
  deps: ExecutionDeps,
  tx: Tx,
  actor: Actor,
  items: readonly unknown[],
  ctx: CommandContext,
  pathOf: (index: number) => string,
): Promise<Result<AcceptedOrders>> {
  const issues: FieldIssue[] = [];
  const valid: { index: number; order: ErpOrder }[] = [];
  const seen = new Map<string, number>();
  items.forEach((item, index) => {
    const at = pathOf(index);
    const parsed = parseAt(ErpOrderSchema, item, at, 'order');
    if (!parsed.ok) return void issues.push(...parsed.issues);
    const qty = parsePositiveQuantity(parsed.value.quantity, 'quantity');
    if (!qty.ok)
      return void issues.push(...(qty.error.issues ?? []).map((i) => ({ ...i, path: under(at, i.path) })));
    const first = seen.get(parsed.value.externalId);
    if (first !== undefined) {
      return void issues.push({
        path: under(at, 'externalId'),
        message: `repeats the externalId '${parsed.value.externalId}' of ${pathOf(first) || 'an earlier order'}; send each order once`,
      });
    }
    seen.set(parsed.value.externalId, index);
    valid.push({ index, order: parsed.value });
  });
  if (issues.length > 0) {
    return fail('LOOM_VALIDATION_FAILED', `Invalid orders: ${summary(issues)}`, { issues });
  }

  // A batch names few products many times: read each routing once for the whole transaction.
  const routings = new Map<string, ReturnType<ExecutionDeps['store']['routing']>>();
  const original = deps.store;
  const store: ExecutionDeps['store'] = {
    ...original,
    routing: (t, productId) => {
      let r = routings.get(productId);
      if (!r) routings.set(productId, (r = original.routing(t, productId)));
      return r;
    },
  };
  deps = { ...deps, store };
  const errors: ItemError[] = [];
  const accepted: (OrderWithOperations & { index: number })[] = [];
  for (const { index, order } of valid) {
    const at = pathOf(index);
    if (order.unit !== undefined) {
      const routing = await deps.store.routing(tx, order.product);
      if (routing && routing.unitId !== order.unit) {
        errors.push({
          path: under(at, 'unit'),
          code: 'LOOM_ORDER_UNIT_MISMATCH',
          message: `product '${order.product}' is made in ${routing.unitId}, not ${order.unit}; Loom does not convert units`,
        });
        continue;
      }
    }
    const r = await createOrder(
      deps,
      tx,
      actor,
      {
        externalId: order.externalId,
        product: order.product,
        quantity: order.quantity,
        dueAt: order.dueAt ?? null,
        ...(order.priority !== undefined ? { priority: order.priority } : {}),
      },
      ctx,
    );
    if (r.ok) {
      accepted.push({ ...r.value, index });
      continue;
    }
    const own = r.error.issues ?? [];
    if (own.length === 0) errors.push({ path: at, code: r.error.code, message: r.error.message });
    for (const i of own) errors.push({ path: under(at, i.path), code: r.error.code, message: i.message });
  }
  if (errors.length > 0) {
    const only = errors.length === 1 && items.length === 1 ? errors[0]! : null;
    return fail(
      only ? only.code : 'LOOM_ERP_ORDERS_REJECTED',
      only
        ? `${only.path ? `${only.path}: ` : ''}${only.message}`
        : `${errors.length} of ${items.length} orders were refused; nothing was created or changed: ${summary(errors)}`,
      {
        issues: errors.map((e) => ({ path: e.path, message: `${e.code}: ${e.message}` })),
        details: { errors },
      },
    );
  }
  const count = (o: OrderWithOperations['outcome']) => accepted.filter((a) => a.outcome === o).length;
  return ok({
    created: count('created'),
    updated: count('updated'),
    unchanged: count('unchanged'),
    orders: accepted,
  });
}

function summary(issues: readonly { path: string; message: string }[]): string {
  const shown = issues.slice(0, 5).map((i) => `${i.path || 'order'} ${i.message}`);
  return issues.length > 5 ? `${shown.join('; ')}; and ${issues.length - 5} more` : shown.join('; ');
}

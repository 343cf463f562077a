import type { Actor } from '../../domain/auth/roles.ts';
import {
  formatQuantity,
  fromWhole,
  parsePositiveQuantity,
  type Quantity,
} from '../../domain/shared/quantity.ts';
import { fail, ok, type Result } from '../../domain/shared/result.ts';
import { contentHash } from '../auth/tokens.ts';
import type { Tx } from '../ports.ts';
import type { CommandContext, ExecutionDeps } from './execution-deps.ts';
import type { NewOperation, OrderOperation, ProductionOrder, ProductRouting } from './execution-ports.ts';
import { operationView, orderView, type OperationView, type OrderView } from './views.ts';

export interface CreateOrderInput {
  readonly externalId?: string | null;
  readonly product: string;
  readonly quantity: unknown;
  readonly dueAt?: string | null;
  readonly priority?: number;
}

export interface OrderWithOperations {
  readonly order: OrderView;
  readonly operations: OperationView[];
  /** `created`, `updated` (a changed repeat of a not-yet-started order) or `unchanged` (a repeat). */
  readonly outcome: 'created' | 'updated' | 'unchanged';
}

/** Routing steps at multiples of 100, so rework can be inserted after a step without renumbering. */
export const STEP_SPACING = 100;

export function expandRouting(routing: ProductRouting, quantity: Quantity): NewOperation[] {
  return routing.steps.map((s, i) => ({
    operationId: s.operationId,
    sequence: (i + 1) * STEP_SPACING,
    name: s.name,
    workCenterId: s.workCenterId,
    allowedWorkUnits: s.workUnits,
    standardCycleTimeS: s.standardCycleTimeS,
    requiredQualifications: s.qualifications,
    parameters: s.parameters,
    bom: s.bom,
    characteristics: s.characteristics,
    plannedQuantity: quantity,
    state: i === 0 ? 'Ready' : 'Pending',
  }));
}

/**
 * Creates a production order and expands it into operations from the product's routing, in one
 * transaction with its audit entry and an `OrderReleased` outbox event. Idempotent on the ERP's
 * external id: the same content again returns the existing order; changed content updates an
 * order that has not started; a change to a started order is refused with the reason.
 */
export async function createOrder(
  deps: ExecutionDeps,
  tx: Tx,
  actor: Actor,
  input: CreateOrderInput,
  ctx: CommandContext,
): Promise<Result<OrderWithOperations>> {
  const { store, audit, outbox } = deps;
  const qty = parsePositiveQuantity(input.quantity, 'quantity');
  if (!qty.ok) return qty;
  const priority = input.priority ?? 500;
  const dueAt = input.dueAt ? new Date(input.dueAt) : null;
  const routing = await store.routing(tx, input.product);
  if (!routing) {
    return fail(
      'LOOM_ORDER_UNKNOWN_PRODUCT',
      `Product '${input.product}' does not exist in the plant model.`,
      {
        issues: [{ path: 'product', message: `no product '${input.product}'; import it or fix the id` }],
      },
    );
  }
  if (routing.serialTracked && qty.value % fromWhole(1) !== 0n) {
    return fail(
      'LOOM_VALIDATION_FAILED',
      `Product '${routing.productId}' is serial-tracked (one serial per unit): order a whole number of units, not ${formatQuantity(qty.value)}.`,
      { issues: [{ path: 'quantity', message: 'must be a whole number for a serial-tracked product' }] },
    );
  }
  if (routing.steps.length === 0) {
    return fail('LOOM_ORDER_UNKNOWN_PRODUCT', `Product '${input.product}' has no routing operations.`, {
      issues: [{ path: 'product', message: 'has no routing' }],
    });
  }
  const requestHash = contentHash({
    product: input.product,
    quantity: formatQuantity(qty.value),
    dueAt: dueAt?.toISOString() ?? null,
    priority,
  });
  const externalId = input.externalId ?? null;

  if (externalId) {
    const existing = await store.orderByExternalId(tx, externalId, true);
    if (existing) {
      if (existing.requestHash === requestHash) {
        return ok({ ...(await present(deps, tx, existing)), outcome: 'unchanged' });
      }
      return updateUnstarted(
        deps,
        tx,
        actor,
        existing,
        { routing, quantity: qty.value, dueAt, priority, requestHash },
        ctx,
      );
    }
  }

  const order = await store.insertOrder(tx, {
    id: await store.nextOrderId(tx),
    externalId,
    productId: routing.productId,
    materialId: routing.materialId,
    quantity: qty.value,
    unitId: routing.unitId,
    dueAt,
    priority,
    createdBy: actor.username,
    requestHash,
  });
  const operations = await store.insertOperations(tx, order.id, expandRouting(routing, qty.value));
  const view = { order: orderView(order), operations: operations.map(operationView) };
  await audit.append(tx, {
    actor,
    action: 'order.created',
    entityType: 'production-order',
    entityId: order.id,
    newValue: view,
    requestId: ctx.requestId,
  });
  await outbox.add(tx, {
    aggregateType: 'production-order',
    aggregateId: order.id,
    eventType: 'OrderReleased',
    payload: {
      order: view.order,
      operations: view.operations.map((o) => ({ id: o.id, operation: o.operation, name: o.name })),
    },
  });
  return ok({ ...view, outcome: 'created' });
}

async function updateUnstarted(
  deps: ExecutionDeps,
  tx: Tx,
  actor: Actor,
  existing: ProductionOrder,
  next: {
    routing: ProductRouting;
    quantity: Quantity;
    dueAt: Date | null;
    priority: number;
    requestHash: string;
  },
  ctx: CommandContext,
): Promise<Result<OrderWithOperations>> {
  const { store, audit } = deps;
  const ops = await store.operations(tx, existing.id);
  const started = existing.state !== 'Released' || ops.some((o) => o.startedAt !== null);
  if (started || existing.productId !== next.routing.productId) {
    return fail(
      'LOOM_ORDER_ALREADY_STARTED',
      existing.productId !== next.routing.productId
        ? `Order ${existing.externalId} (${existing.id}) is for product ${existing.productId}; its product cannot be changed to ${next.routing.productId}.`
        : existing.state === 'Released' || existing.state === 'InProgress'
          ? `Order ${existing.externalId} (${existing.id}) is ${existing.state} and has started work; it can no longer be changed.`
          : `Order ${existing.externalId} (${existing.id}) is ${existing.state}; it can no longer be changed.`,
      { details: { orderId: existing.id, state: existing.state } },
    );
  }
  const before = await present(deps, tx, existing);
  const order = await store.updateOrder(tx, existing.id, {
    quantity: next.quantity,
    dueAt: next.dueAt,
    priority: next.priority,
    requestHash: next.requestHash,
  });
  // The same routing as released (step by step, snapshot and all): the operations stay, with their
  // ids, and plan the new quantity. A routing changed since release is released afresh.
  const fresh = expandRouting(next.routing, next.quantity);
  let operations: OrderOperation[];
  if (sameSteps(ops, fresh)) {
    operations = await store.setPlannedQuantity(tx, order.id, next.quantity);
  } else {
    await store.deleteOperations(tx, order.id);
    operations = await store.insertOperations(tx, order.id, fresh);
  }
  const view = { order: orderView(order), operations: operations.map(operationView) };
  await audit.append(tx, {
    actor,
    action: 'order.updated',
    entityType: 'production-order',
    entityId: order.id,
    oldValue: { order: before.order },
    newValue: { order: view.order },
    reason: 'changed by a repeat of the creating request',
    requestId: ctx.requestId,
  });
  return ok({ ...view, outcome: 'updated' });
}

/** Whether an unstarted order's operations are the steps `fresh` would release, quantity aside. */
function sameSteps(ops: readonly OrderOperation[], fresh: readonly NewOperation[]): boolean {
  const shape = (o: Omit<NewOperation, 'plannedQuantity' | 'state'>) =>
    JSON.stringify([
      o.operationId,
      o.sequence,
      o.name,
      o.workCenterId,
      o.allowedWorkUnits,
      o.standardCycleTimeS,
      o.requiredQualifications,
      o.parameters,
      o.bom,
      o.characteristics,
    ]);
  return ops.length === fresh.length && ops.every((o, i) => !o.isRework && shape(o) === shape(fresh[i]!));
}

export async function present(deps: ExecutionDeps, tx: Tx | null, order: ProductionOrder) {
  return {
    order: orderView(order),
    operations: (await deps.store.operations(tx, order.id)).map(operationView),
  };
}

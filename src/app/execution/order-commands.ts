import type { Actor } from '../../domain/auth/roles.ts';
import type { EquipmentState } from '../../domain/equipment/equipment-state.ts';
import { withArticle } from '../../domain/equipment/equipment.ts';
import { fail, ok, type Result } from '../../domain/shared/result.ts';
import { dispatchList } from '../../domain/work-order/dispatch.ts';
import { transitionOrder, type OrderEvent } from '../../domain/work-order/order-state.ts';
import type { Tx } from '../ports.ts';
import type { CommandContext, ExecutionDeps } from './execution-deps.ts';
import { operationView, orderView, type OperationView, type OrderView } from './views.ts';

/** Hold, release, cancel or close an order; each needs a reason except close. */
export async function changeOrderState(
  deps: ExecutionDeps,
  tx: Tx,
  actor: Actor,
  orderId: string,
  event: Extract<OrderEvent, 'hold' | 'release' | 'cancel' | 'close'>,
  reason: string | null,
  ctx: CommandContext,
): Promise<Result<OrderView>> {
  const order = await deps.store.order(tx, orderId, true);
  if (!order) return fail('LOOM_ORDER_NOT_FOUND', `No production order ${orderId}.`);
  if (event !== 'close' && !reason) {
    return fail('LOOM_VALIDATION_FAILED', `To ${event} an order, give a reason.`, {
      issues: [{ path: 'reason', message: 'is required' }],
    });
  }
  const next = transitionOrder(order.state, event, order.heldFrom);
  if (!next.ok) return next;
  const now = deps.clock.now();
  const updated = await deps.store.updateOrder(tx, order.id, {
    state: next.value,
    heldFrom: event === 'hold' ? order.state : null,
    holdReason: event === 'hold' ? reason : null,
    ...(event === 'close' ? { closedAt: now } : {}),
  });
  const past = { hold: 'held', release: 'released', cancel: 'cancelled', close: 'closed' }[event];
  await deps.audit.append(tx, {
    actor,
    action: `order.${past}`,
    entityType: 'production-order',
    entityId: order.id,
    reason,
    oldValue: { state: order.state },
    newValue: { state: updated.state },
    requestId: ctx.requestId,
  });
  await deps.outbox.add(tx, {
    aggregateType: 'production-order',
    aggregateId: order.id,
    eventType: `Order${past.charAt(0).toUpperCase()}${past.slice(1)}`,
    payload: { order: orderView(updated), reason, at: now.toISOString() },
  });
  return ok(orderView(updated));
}

export interface DispatchEntry extends OperationView {
  readonly priority: number;
  readonly dueAt: string | null;
  readonly product: string;
  readonly externalId: string | null;
}

/**
 * The dispatch list of a work center or a work unit (priority, due date, release time; predecessors
 * respected). An empty list is only answered for equipment that exists at that level: a mistyped
 * machine id is "no such work unit", not "nothing to do".
 */
export async function dispatchFor(
  deps: ExecutionDeps,
  filter: { workCenterId?: string; workUnitId?: string },
): Promise<Result<DispatchEntry[]>> {
  const rows = await deps.store.dispatch(filter);
  if (rows.length === 0) {
    const [id, level, param] = filter.workUnitId
      ? [filter.workUnitId, 'WorkUnit', 'workUnit']
      : [filter.workCenterId!, 'WorkCenter', 'workCenter'];
    const eq = await deps.store.equipment(null, id);
    if (!eq) {
      return fail('LOOM_PLANT_NOT_FOUND', `No equipment '${id}'.`, {
        issues: [{ path: param, message: `names no equipment (GET /api/plant/equipment lists them)` }],
      });
    }
    if (eq.level !== level) {
      const other = eq.level === 'WorkUnit' ? 'workUnit' : eq.level === 'WorkCenter' ? 'workCenter' : null;
      return fail(
        'LOOM_VALIDATION_FAILED',
        `'${id}' is ${withArticle(eq.level)}, not ${withArticle(level)}.`,
        {
          issues: [
            {
              path: param,
              message: other
                ? `is ${withArticle(eq.level)}: ask with ${other}=${id}`
                : `must name ${withArticle(level)}`,
            },
          ],
        },
      );
    }
    return ok([]);
  }
  const sorted = dispatchList(
    rows.map((r) => ({
      row: r,
      operationKey: String(r.operation.pk),
      orderId: r.order.id,
      position: r.operation.sequence,
      state: r.operation.state,
      priority: r.order.priority,
      dueAt: r.order.dueAt?.toISOString() ?? null,
      releasedAt: r.order.releasedAt.toISOString(),
      predecessorsCompleted: r.predecessorsCompleted,
    })),
  );
  return ok(
    sorted.map(({ row }) => ({
      ...operationView(row.operation),
      priority: row.order.priority,
      dueAt: row.order.dueAt?.toISOString() ?? null,
      // The third sort key, so a supervisor can see why two equal entries come in this order.
      releasedAt: row.order.releasedAt.toISOString(),
      product: row.order.productId,
      externalId: row.order.externalId,
    })),
  );
}

/** Sets a work unit's state by hand (until machine data derives it) — with reason, audited. */
export async function setEquipmentState(
  deps: ExecutionDeps,
  tx: Tx,
  actor: Actor,
  equipmentId: string,
  input: { state: EquipmentState; reason: string | null },
  ctx: CommandContext,
): Promise<Result<{ equipment: string; state: EquipmentState; reason: string | null; since: string }>> {
  const eq = await deps.store.equipment(tx, equipmentId);
  if (!eq) return fail('LOOM_PLANT_NOT_FOUND', `No equipment '${equipmentId}'.`);
  if ((input.state === 'Down' || input.state === 'Held') && !input.reason) {
    return fail('LOOM_VALIDATION_FAILED', `Setting ${equipmentId} ${input.state} needs a reason.`, {
      issues: [{ path: 'reason', message: 'is required for Down and Held' }],
    });
  }
  const before = await deps.store.equipmentState(tx, equipmentId);
  const now = deps.clock.now();
  await deps.store.setEquipmentState(tx, equipmentId, {
    ...input,
    source: 'api',
    actor: actor.username,
    at: now,
  });
  await deps.audit.append(tx, {
    actor,
    action: 'equipment.state-changed',
    entityType: 'equipment',
    entityId: equipmentId,
    reason: input.reason,
    oldValue: { state: before.state, reason: before.reason },
    newValue: { state: input.state, reason: input.reason },
    requestId: ctx.requestId,
  });
  return ok({ equipment: equipmentId, state: input.state, reason: input.reason, since: now.toISOString() });
}

import type { Actor } from '../../domain/auth/roles.ts';
import {
  add,
  formatQuantity,
  max,
  sub,
  parseNonNegativeQuantity,
  ZERO,
  type Quantity,
} from '../../domain/shared/quantity.ts';
import { fail, ok, type Result } from '../../domain/shared/result.ts';
import { transitionOperation, type OperationEvent } from '../../domain/work-order/operation-state.ts';
import {
  orderAcceptsProduction,
  orderNotActive,
  transitionOrder,
} from '../../domain/work-order/order-state.ts';
import type { Tx } from '../ports.ts';
import type { CommandContext, ExecutionDeps } from './execution-deps.ts';
import type { OrderOperation, ProductionOrder } from './execution-ports.ts';
import { notFound } from './start-operation.ts';
import { operationView, orderView, type OperationView } from './views.ts';

/**
 * Locks the order and reads its operations: the one lock order every execution use case follows
 * (order first; the operations' rows are locked by their writes).
 */
export async function lockOperation(
  deps: ExecutionDeps,
  tx: Tx,
  pk: number,
): Promise<
  Result<{ order: ProductionOrder; op: OrderOperation; ops: OrderOperation[]; ncrQuantity: Quantity }>
> {
  const locked = await deps.store.lockForOperation(tx, pk);
  const op = locked?.operations.find((o) => o.pk === pk);
  if (!locked || !op) return notFound(pk);
  return ok({ order: locked.order, op, ops: locked.operations, ncrQuantity: locked.ncrQuantity });
}

/** The routing step a (rework) operation belongs to: KPIs count rework against the step it repairs. */
export function routingStepOf(ops: readonly OrderOperation[], op: OrderOperation): string {
  let current = op;
  // Bounded by the number of operations, so a corrupt rework_of cycle cannot loop forever.
  for (let i = 0; i < ops.length && current.reworkOf !== null; i++) {
    const parent = ops.find((o) => o.pk === current.reworkOf);
    if (!parent) break;
    current = parent;
  }
  return current.operationId;
}

/**
 * The good quantity a routing step passed on: its routing operation's and its rework operations'
 * (every rework loop of a step reworks the routing operation: `reworkOf` names it), with `now`, an
 * operation being completed, counted as it will be.
 */
function stepGood(ops: readonly OrderOperation[], step: OrderOperation, now: OrderOperation): Quantity {
  let sum = ZERO;
  for (const o of ops) {
    if (o.pk === step.pk || (o.isRework && o.reworkOf === step.pk)) {
      sum = add(sum, o.pk === now.pk ? now.goodQuantity : o.goodQuantity);
    }
  }
  return sum;
}

/** Pause, resume, hold and release: a state change with its activity, audit entry and outbox event. */
export async function changeOperationState(
  deps: ExecutionDeps,
  tx: Tx,
  actor: Actor,
  pk: number,
  event: Extract<OperationEvent, 'pause' | 'resume' | 'hold' | 'release'>,
  reason: string | null,
  ctx: CommandContext,
): Promise<Result<OperationView>> {
  const locked = await lockOperation(deps, tx, pk);
  if (!locked.ok) return locked;
  const { order, op } = locked.value;
  if (
    (event === 'resume' || event === 'release') &&
    (order.state === 'OnHold' || order.state === 'Cancelled')
  ) {
    return fail(
      'LOOM_ORDER_ILLEGAL_TRANSITION',
      `Order ${order.id} is ${order.state}; release the order first.`,
      {
        details: { currentState: order.state },
      },
    );
  }
  if ((event === 'hold' || event === 'release') && !reason) {
    return fail('LOOM_VALIDATION_FAILED', `A ${event} needs a reason.`, {
      issues: [{ path: 'reason', message: 'is required' }],
    });
  }
  const next = transitionOperation(op.state, event, op.heldFrom);
  if (!next.ok) return next;
  const now = deps.clock.now();
  const updated = deps.store.deferOperationUpdate(tx, op, {
    state: next.value,
    heldFrom: event === 'hold' ? op.state : null,
  });
  await deps.store.addActivity(tx, {
    operationPk: op.pk,
    kind: event,
    actor: actor.username,
    workUnitId: op.workUnitId,
    detail: reason ? { reason } : undefined,
    at: now,
  });
  await deps.audit.append(tx, {
    actor,
    action: `operation.${event === 'hold' ? 'held' : event === 'release' ? 'released' : event === 'pause' ? 'paused' : 'resumed'}`,
    entityType: 'order-operation',
    entityId: String(op.pk),
    reason,
    oldValue: { state: op.state },
    newValue: { state: updated.state },
    requestId: ctx.requestId,
  });
  await deps.outbox.add(tx, {
    aggregateType: 'production-order',
    aggregateId: op.orderId,
    eventType: `Operation${event === 'hold' ? 'Held' : event === 'release' ? 'Released' : event === 'pause' ? 'Paused' : 'Resumed'}`,
    payload: {
      order: op.orderId,
      operation: op.operationId,
      state: updated.state,
      reason,
      at: now.toISOString(),
    },
  });
  return ok(operationView(updated));
}

export interface CompleteOperationInput {
  readonly good: unknown;
  readonly scrap?: unknown;
  readonly scrapCause?: string | null;
}

/**
 * Completes a running operation with its good and scrap quantities (exact), records the production
 * events KPIs are computed from, readies the next routing step with the good quantity as its plan,
 * and completes the order when nothing is left. The row locks make a second, concurrent completion
 * see the operation Completed and fail: nothing is counted twice.
 */
export async function completeOperation(
  deps: ExecutionDeps,
  tx: Tx,
  actor: Actor,
  pk: number,
  input: CompleteOperationInput,
  ctx: CommandContext,
): Promise<Result<{ operation: OperationView; orderState: string; next: OperationView | null }>> {
  const good = parseNonNegativeQuantity(input.good, 'good');
  if (!good.ok) return good;
  const scrap =
    input.scrap === undefined
      ? { ok: true as const, value: ZERO }
      : parseNonNegativeQuantity(input.scrap, 'scrap');
  if (!scrap.ok) return scrap;
  if (scrap.value > ZERO && !input.scrapCause) {
    return fail('LOOM_VALIDATION_FAILED', 'Scrap needs a cause (a reason code).', {
      issues: [{ path: 'scrapCause', message: 'is required when scrap > 0' }],
    });
  }
  if (input.scrapCause && !(await deps.store.reasonCodeExists(tx, input.scrapCause))) {
    return fail('LOOM_VALIDATION_FAILED', `Scrap cause '${input.scrapCause}' is not a reason code.`, {
      issues: [{ path: 'scrapCause', message: 'must be an active reason code (GET /api/reason-codes)' }],
    });
  }
  const locked = await lockOperation(deps, tx, pk);
  if (!locked.ok) return locked;
  const { order, op, ops, ncrQuantity: ncr } = locked.value;
  const next = transitionOperation(op.state, 'complete');
  if (!next.ok) return next;
  if (!orderAcceptsProduction(order.state)) return orderNotActive(op, order.state);
  // Nothing reported is a mistake, unless every unit is under an NCR (a rework operation whose
  // only unit failed again and went on to the next rework loop).
  if (good.value === ZERO && scrap.value === ZERO && ncr === ZERO) {
    return fail('LOOM_VALIDATION_FAILED', 'Report a good or a scrap quantity greater than 0.', {
      issues: [{ path: 'good', message: 'good and scrap are both 0, and no unit is under an NCR' }],
    });
  }

  // A unit is reported once: good, scrap, or under an NCR (whose disposition then accounts for it).
  const reported = add(add(add(op.goodQuantity, op.scrapQuantity), add(good.value, scrap.value)), ncr);
  if (reported > op.plannedQuantity) {
    return fail(
      'LOOM_OPERATION_OVERREPORTED',
      `Operation ${op.operationId} plans ${formatQuantity(op.plannedQuantity)}; good ${formatQuantity(good.value)} + scrap ${formatQuantity(scrap.value)}` +
        ` + ${formatQuantity(ncr)} under NCR` +
        (op.goodQuantity > ZERO || op.scrapQuantity > ZERO
          ? ` + ${formatQuantity(add(op.goodQuantity, op.scrapQuantity))} already counted (good or scrap by NCR disposition)`
          : '') +
        ` would report ${formatQuantity(reported)}. Units under an NCR are not counted as good or scrap.`,
      {
        issues: [
          {
            path: 'good',
            message: `at most ${formatQuantity(max(ZERO, sub(op.plannedQuantity, sub(reported, good.value))))}`,
          },
        ],
      },
    );
  }
  const now = deps.clock.now();
  const step = routingStepOf(ops, op);
  // Both operation writes go out with the transaction's other writes in one statement at commit;
  // the order's lock keeps every other writer away from these rows until then.
  const completed = deps.store.deferOperationUpdate(tx, op, {
    state: next.value,
    completedAt: now,
    completedBy: actor.username,
    goodQuantity: add(op.goodQuantity, good.value),
    scrapQuantity: add(op.scrapQuantity, scrap.value),
  });
  const event = (kind: 'good' | 'scrap', quantity: Quantity, causeCode: string | null) =>
    deps.store.addProductionEvent(tx, {
      kind,
      quantity,
      order,
      operation: op,
      routingStep: step,
      workUnitId: op.workUnitId,
      causeCode,
      firstPass: !op.isRework,
      at: now,
    });
  if (good.value > ZERO) await event('good', good.value, null);
  if (scrap.value > ZERO) await event('scrap', scrap.value, input.scrapCause ?? null);

  // The next routing step plans what its predecessor step passed on: the routing operation's good
  // and the good of its rework operations (a reworked unit rejoins the flow there).
  let readied: OrderOperation | null = null;
  const routingOp = op.isRework ? ops.find((o) => o.pk === op.reworkOf) : op;
  const following = routingOp && ops.find((o) => !o.isRework && o.sequence > routingOp.sequence);
  if (routingOp && following) {
    const passedOn = stepGood(ops, routingOp, completed);
    if (!op.isRework && following.state === 'Pending') {
      readied = deps.store.deferOperationUpdate(tx, following, {
        state: 'Ready',
        ...(passedOn > ZERO ? { plannedQuantity: passedOn } : {}),
      });
    } else if (
      op.isRework &&
      good.value > ZERO &&
      routingOp.state === 'Completed' &&
      following.state !== 'Completed' &&
      following.state !== 'Pending'
    ) {
      readied = deps.store.deferOperationUpdate(tx, following, { plannedQuantity: passedOn });
    }
  }
  await deps.store.addActivity(tx, {
    operationPk: op.pk,
    kind: 'complete',
    actor: actor.username,
    workUnitId: op.workUnitId,
    detail: {
      good: formatQuantity(good.value),
      scrap: formatQuantity(scrap.value),
      scrapCause: input.scrapCause ?? null,
    },
    at: now,
  });
  await deps.audit.append(tx, {
    actor,
    action: 'operation.completed',
    entityType: 'order-operation',
    entityId: String(op.pk),
    oldValue: {
      state: op.state,
      good: formatQuantity(op.goodQuantity),
      scrap: formatQuantity(op.scrapQuantity),
    },
    newValue: {
      state: completed.state,
      good: formatQuantity(completed.goodQuantity),
      scrap: formatQuantity(completed.scrapQuantity),
      scrapCause: input.scrapCause ?? null,
    },
    requestId: ctx.requestId,
  });
  await deps.outbox.add(tx, {
    aggregateType: 'production-order',
    aggregateId: order.id,
    eventType: 'OperationCompleted',
    payload: {
      order: order.id,
      externalId: order.externalId,
      operation: op.operationId,
      isRework: op.isRework,
      workUnit: op.workUnitId,
      good: formatQuantity(good.value),
      scrap: formatQuantity(scrap.value),
      scrapCause: input.scrapCause ?? null,
      unit: order.unitId,
      at: now.toISOString(),
    },
  });
  // The order's completion follows its last operation's completion in the outbox, as it happened.
  let orderState = order.state;
  const allDone = ops.every((o) => (o.pk === op.pk ? true : o.state === 'Completed'));
  if (allDone) {
    const t = transitionOrder(order.state, 'complete');
    if (t.ok) {
      const done = await deps.store.updateOrder(tx, order.id, { state: t.value, completedAt: now });
      orderState = done.state;
      const last = ops.filter((o) => !o.isRework).at(-1);
      const finalGood = last ? stepGood(ops, last, completed) : ZERO;
      await deps.outbox.add(tx, {
        aggregateType: 'production-order',
        aggregateId: order.id,
        eventType: 'OrderCompleted',
        payload: { order: orderView(done), goodQuantity: formatQuantity(finalGood), at: now.toISOString() },
      });
    }
  }
  return ok({
    operation: operationView(completed),
    orderState,
    next: readied ? operationView(readied) : null,
  });
}

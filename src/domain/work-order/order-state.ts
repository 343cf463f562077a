import { fail, ok, type Result } from '../shared/result.ts';

/** ISA-95 production order (job order) states as Loom tracks them. */
export const ORDER_STATES = ['Released', 'InProgress', 'Completed', 'Closed', 'OnHold', 'Cancelled'] as const;
export type OrderState = (typeof ORDER_STATES)[number];

export type OrderEvent = 'start' | 'complete' | 'close' | 'hold' | 'release' | 'cancel';

const NEXT: Readonly<Record<OrderEvent, Partial<Record<OrderState, OrderState>>>> = {
  start: { Released: 'InProgress' },
  complete: { InProgress: 'Completed' },
  close: { Completed: 'Closed' },
  hold: { Released: 'OnHold', InProgress: 'OnHold' },
  release: {},
  cancel: { Released: 'Cancelled', OnHold: 'Cancelled' },
};

/**
 * The state after `event`, or LOOM_ORDER_ILLEGAL_TRANSITION naming the current state.
 * A release returns the order to the state it was held in (`heldFrom`).
 */
export function transitionOrder(
  current: OrderState,
  event: OrderEvent,
  heldFrom?: OrderState | null,
): Result<OrderState> {
  if (event === 'release') {
    if (current === 'OnHold') return ok(heldFrom ?? 'Released');
    return illegal('order', current, event);
  }
  const next = NEXT[event][current];
  return next ? ok(next) : illegal('order', current, event);
}

export function illegal(kind: 'order' | 'operation', current: string, event: string) {
  return fail(
    kind === 'order' ? 'LOOM_ORDER_ILLEGAL_TRANSITION' : 'LOOM_OPERATION_ILLEGAL_TRANSITION',
    `Cannot ${event} the ${kind}: it is ${current}.`,
    { details: { currentState: current, event } },
  );
}

/** Whether production (consumption, output, completion) may be booked on an order's operations. */
export function orderAcceptsProduction(state: string): boolean {
  return state === 'Released' || state === 'InProgress';
}

/**
 * LOOM_ORDER_NOT_ACTIVE: a hold (or cancellation, completion) stops material and output being
 * booked and operations being completed; a Running operation may still be paused, and quality
 * results may still be recorded while a hold is investigated.
 */
export function orderNotActive(op: { readonly pk: number; readonly orderId: string }, orderState: string) {
  return fail(
    'LOOM_ORDER_NOT_ACTIVE',
    `Order ${op.orderId} is ${orderState}; nothing is consumed, produced or completed on its operations until it is ${orderState === 'OnHold' ? 'released' : 'active again'}.`,
    { details: { operation: op.pk, orderId: op.orderId, currentState: orderState } },
  );
}

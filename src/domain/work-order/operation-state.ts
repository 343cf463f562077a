import { ok, type Result } from '../shared/result.ts';
import { illegal } from './order-state.ts';

/** Operation (job) states, DESIGN.md: Pending › Ready › Running ⇄ Paused › Completed, plus OnHold. */
export const OPERATION_STATES = ['Pending', 'Ready', 'Running', 'Paused', 'Completed', 'OnHold'] as const;
export type OperationState = (typeof OPERATION_STATES)[number];

export type OperationEvent = 'ready' | 'start' | 'pause' | 'resume' | 'complete' | 'hold' | 'release';

const NEXT: Readonly<
  Record<Exclude<OperationEvent, 'release'>, Partial<Record<OperationState, OperationState>>>
> = {
  ready: { Pending: 'Ready' },
  start: { Ready: 'Running' },
  pause: { Running: 'Paused' },
  resume: { Paused: 'Running' },
  complete: { Running: 'Completed' },
  hold: { Pending: 'OnHold', Ready: 'OnHold', Running: 'OnHold', Paused: 'OnHold' },
};

/**
 * The state after `event`. A held operation that was running is released as Paused: work stopped
 * when it was held, and an operator must resume it deliberately.
 */
export function transitionOperation(
  current: OperationState,
  event: OperationEvent,
  heldFrom?: OperationState | null,
): Result<OperationState> {
  if (event === 'release') {
    if (current !== 'OnHold') return illegal('operation', current, event);
    const back = heldFrom ?? 'Pending';
    return ok(back === 'Running' ? 'Paused' : back);
  }
  const next = NEXT[event][current];
  return next ? ok(next) : illegal('operation', current, event);
}

/** States that occupy a work unit. */
export const isActive = (s: OperationState): boolean => s === 'Running' || s === 'Paused';

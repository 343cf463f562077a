import type { OperationState } from './operation-state.ts';

export interface Dispatchable {
  readonly operationKey: string;
  readonly orderId: string;
  readonly position: number;
  readonly state: OperationState;
  /** 1 is the most urgent (ERP convention); larger numbers are less urgent. */
  readonly priority: number;
  /** ISO timestamps compare correctly as text. */
  readonly dueAt: string | null;
  readonly releasedAt: string;
  /** Every earlier operation of the same order is Completed. */
  readonly predecessorsCompleted: boolean;
}

/**
 * The dispatch list of a work center or unit: operations that can be worked (Ready, or Running /
 * Paused so the operator sees what is open), whose predecessors are complete, ordered by priority,
 * then due date (none last), then release time, then order and position for a stable order.
 */
export function dispatchList<T extends Dispatchable>(ops: readonly T[]): T[] {
  return ops
    .filter(
      (o) =>
        (o.state === 'Ready' || o.state === 'Running' || o.state === 'Paused') && o.predecessorsCompleted,
    )
    .sort(
      (a, b) =>
        a.priority - b.priority ||
        cmpNullsLast(a.dueAt, b.dueAt) ||
        cmp(a.releasedAt, b.releasedAt) ||
        cmp(a.orderId, b.orderId) ||
        a.position - b.position,
    );
}

const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
const cmpNullsLast = (a: string | null, b: string | null) =>
  a === b ? 0 : a === null ? 1 : b === null ? -1 : cmp(a, b);

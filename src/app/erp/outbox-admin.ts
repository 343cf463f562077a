import type { Actor } from '../../domain/auth/roles.ts';
import { fail, ok, type Result } from '../../domain/shared/result.ts';
import type { AuditTrail, UnitOfWork } from '../ports.ts';
import type { OutboxAdminStore, OutboxEventView, OutboxHealthFacts } from './outbox-ports.ts';

export interface OutboxAdminDeps {
  readonly uow: UnitOfWork;
  readonly store: OutboxAdminStore;
  readonly audit: AuditTrail;
}

/**
 * Puts a dead-lettered event back in the queue (attempts reset, due now), audited with the
 * admin's reason. Its order's later events, held back behind it, follow once it is delivered.
 */
export async function replayOutboxEvent(
  deps: OutboxAdminDeps,
  actor: Actor,
  id: number,
  reason: string,
  ctx: { requestId: string | null },
): Promise<Result<OutboxEventView>> {
  return deps.uow.run(async (tx) => {
    const event = await deps.store.find(tx, id, true);
    if (!event) return fail('LOOM_ERP_OUTBOX_NOT_FOUND', `No outbox event ${id}.`);
    if (event.status !== 'dead') {
      return fail(
        'LOOM_ERP_OUTBOX_NOT_DEAD',
        `Outbox event ${id} is ${event.status}; only a dead event can be replayed.`,
        { details: { status: event.status } },
      );
    }
    const requeued = await deps.store.requeue(tx, id);
    await deps.audit.append(tx, {
      actor,
      action: 'erp.outbox.replayed',
      entityType: 'outbox-event',
      entityId: String(id),
      reason,
      oldValue: { status: event.status, attempts: event.attempts, lastError: event.lastError },
      newValue: { status: requeued.status, attempts: requeued.attempts },
      requestId: ctx.requestId,
    });
    return ok(requeued);
  });
}

export interface ErpDeliveryHealth extends OutboxHealthFacts {
  /** Whether outbound delivery is configured at all (an ERP URL or an outbound folder). */
  readonly configured: boolean;
  /** Whether this instance's delivery loop runs. */
  readonly workerRunning: boolean;
  readonly format: string;
}

import type { DomainError, Result } from '../../domain/shared/result.ts';
import type { Tx, UnitOfWork } from '../ports.ts';
import { Refused } from '../shared/idempotent.ts';
import type { InboundMessage, InboundMessageStore } from './erp-ports.ts';

export type InboundOutcome<T> =
  | { readonly kind: 'done'; readonly value: T }
  /** The message was applied before; `value` is what was answered then. */
  | { readonly kind: 'replayed'; readonly value: T }
  | { readonly kind: 'failed'; readonly error: DomainError };

/**
 * Applies an ERP message at most once: the message id is claimed, the effect runs and the answer
 * is stored, all in one transaction. A repeat gets the stored answer and changes nothing; the same
 * id with other content is refused. A refused message rolls back with its claim, so the ERP can
 * correct and resend it.
 */
export async function applyInboundMessage<T>(
  uow: UnitOfWork,
  store: InboundMessageStore,
  message: InboundMessage | null,
  fn: (tx: Tx) => Promise<Result<T>>,
): Promise<InboundOutcome<T>> {
  try {
    return await uow.run(async (tx): Promise<InboundOutcome<T>> => {
      if (message) {
        const claim = await store.claim(tx, message);
        if (claim.kind === 'conflict') {
          throw new Refused({
            code: 'LOOM_ERP_MESSAGE_ID_REUSED',
            message: `Message id '${message.messageId}' was already applied with other content (${claim.verb}); a new document needs a new id.`,
            details: { messageId: message.messageId },
          });
        }
        if (claim.kind === 'replay') return { kind: 'replayed', value: claim.result as T };
      }
      const r = await fn(tx);
      if (!r.ok) throw new Refused(r.error);
      if (message) await store.complete(tx, message.messageId, r.value);
      return { kind: 'done', value: r.value };
    });
  } catch (e) {
    if (e instanceof Refused) return { kind: 'failed', error: e.error };
    throw e;
  }
}

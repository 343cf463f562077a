import type { DomainError, Result } from '../../domain/shared/result.ts';
import type { IdempotencyStore, Tx, UnitOfWork } from '../ports.ts';

export interface IdempotencyRequest {
  /** Whose key it is (`user:<id>`): keys of different callers never collide. */
  readonly scope: string;
  readonly key: string;
  readonly requestHash: string;
}

export type IdempotentOutcome<T> =
  | { readonly kind: 'done'; readonly value: T; readonly replayed: false }
  | {
      readonly kind: 'replayed';
      readonly status: number;
      readonly response: unknown;
      readonly replayed: true;
    }
  | { readonly kind: 'failed'; readonly error: DomainError };

/** Carries an expected failure out of a transaction so it rolls back; caught by the runner. */
export class Refused extends Error {
  constructor(readonly error: DomainError) {
    super(error.message);
  }
}

/**
 * Runs a state-changing use case at most once per idempotency key (RELIABILITY.md: same key and
 * body → the original result; same key, other body → LOOM_IDEMPOTENCY_KEY_REUSED). The key is
 * stored in the same transaction as the effect. A refused request (an expected failure) rolls
 * back with its key, so the caller can fix the cause and retry with the same key.
 */
export async function runIdempotent<T>(
  uow: UnitOfWork,
  store: IdempotencyStore,
  request: IdempotencyRequest | null,
  status: number,
  fn: (tx: Tx) => Promise<Result<T>>,
): Promise<IdempotentOutcome<T>> {
  try {
    return await uow.run(async (tx): Promise<IdempotentOutcome<T>> => {
      if (request) {
        const claim = await store.claim(tx, request.scope, request.key, request.requestHash);
        if (claim.kind === 'conflict') {
          throw new Refused({
            code: 'LOOM_IDEMPOTENCY_KEY_REUSED',
            message: `Idempotency-Key '${request.key}' was already used for a different request; use a new key for a new request.`,
          });
        }
        if (claim.kind === 'replay') {
          return { kind: 'replayed', status: claim.status, response: claim.response, replayed: true };
        }
      }
      const r = await fn(tx);
      if (!r.ok) throw new Refused(r.error);
      if (request) await store.complete(tx, request.scope, request.key, status, r.value);
      return { kind: 'done', value: r.value, replayed: false };
    });
  } catch (e) {
    if (e instanceof Refused) return { kind: 'failed', error: e.error };
    throw e;
  }
}

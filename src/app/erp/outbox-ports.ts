import type { Result } from '../../domain/shared/result.ts';
import type { Tx } from '../ports.ts';

/** One event of the transactional outbox, as the relay hands it to the ERP. */
export interface OutboxMessage {
  readonly id: number;
  /** The idempotency key the ERP dedupes on (the B2MML `BODID`); the same on every attempt. */
  readonly messageId: string;
  readonly aggregateType: string;
  /** The production order id: delivery is in order per aggregate. */
  readonly aggregateId: string;
  readonly eventType: string;
  readonly payload: unknown;
  readonly createdAt: Date;
  /** Failed attempts so far. */
  readonly attempts: number;
}

export type OutboxStatus = 'pending' | 'delivered' | 'dead';

/** What one attempt came to, as written to `outbox_deliveries`. */
export interface AttemptRecord {
  readonly outcome: 'delivered' | 'failed' | 'dead';
  readonly httpStatus: number | null;
  readonly error: string | null;
  readonly durationMs: number;
  /** For `failed`: when to try again, as a delay from the database's now(). */
  readonly retryInMs?: number;
}

/**
 * The relay's view of the outbox. `claimDue` locks what it returns (`FOR UPDATE SKIP LOCKED`) until
 * `tx` ends, so several Loom instances share the work and never send the same event at once.
 */
export interface OutboxRelayStore {
  /**
   * Up to `limit` due events, at most one per aggregate: the oldest undelivered one, and only if
   * no earlier event of that aggregate is pending or dead (in order per order).
   */
  claimDue(tx: Tx, limit: number): Promise<OutboxMessage[]>;
  /** Writes the attempt to `outbox_deliveries` and moves the event to its new state. */
  recordAttempt(tx: Tx, message: OutboxMessage, attempt: AttemptRecord): Promise<void>;
}

export interface OutboxEventView {
  readonly id: number;
  readonly messageId: string;
  readonly aggregateType: string;
  readonly aggregateId: string;
  readonly eventType: string;
  readonly status: OutboxStatus;
  readonly attempts: number;
  readonly createdAt: string;
  readonly nextAttemptAt: string | null;
  readonly deliveredAt: string | null;
  readonly lastError: string | null;
  readonly payload: unknown;
}

export interface OutboxHealthFacts {
  readonly pending: number;
  readonly oldestPendingAgeSeconds: number | null;
  readonly dead: number;
  readonly lastSuccessAt: string | null;
  readonly lastFailureAt: string | null;
  readonly lastFailureError: string | null;
}

/** Reading and repairing the outbox (the admin and health API). */
export interface OutboxAdminStore {
  list(filter: {
    status?: OutboxStatus;
    aggregateId?: string;
    afterId?: number;
    limit: number;
  }): Promise<OutboxEventView[]>;
  find(tx: Tx, id: number, forUpdate: boolean): Promise<OutboxEventView | null>;
  /** dead → pending, attempts 0, due now. */
  requeue(tx: Tx, id: number): Promise<OutboxEventView>;
  health(): Promise<OutboxHealthFacts>;
}

/** A message in the ERP's format. */
export interface EncodedMessage {
  readonly contentType: string;
  readonly body: string;
}

/**
 * Turns an outbox event into the ERP's format (JSON, B2MML `ProcessProductionPerformance`).
 * `ok(null)` means the format has nothing to say about this event type (it is settled without a
 * request); an error means the event cannot be encoded at all and is dead-lettered at once, since
 * retrying cannot change the outcome.
 */
export interface OutboundEncoder {
  readonly format: string;
  encode(message: OutboxMessage): Result<EncodedMessage | null> | Promise<Result<EncodedMessage | null>>;
}

/** The answer of one delivery request. */
export type EndpointAnswer =
  | { readonly kind: 'accepted'; readonly status: number }
  | { readonly kind: 'refused'; readonly status: number; readonly error: string }
  | { readonly kind: 'unreachable'; readonly error: string };

/** The ERP's receiving endpoint. Implementations time out on their own and never throw. */
export interface ErpEndpoint {
  send(message: OutboxMessage, encoded: EncodedMessage, signal: AbortSignal): Promise<EndpointAnswer>;
}

/**
 * The legacy outbound folder: actuals written as files named by message id, so a retry rewrites
 * the same file and the ERP can dedupe on the name. Throws on an I/O failure (retried).
 */
export interface ActualsFolder {
  /** Whether this event type is an actual the folder receives. */
  accepts(eventType: string): boolean;
  write(message: OutboxMessage): Promise<void>;
}

import type { Clock } from '../../domain/shared/clock.ts';
import type { AuthService } from '../auth/auth-service.ts';
import type { AuditTrail, Outbox, UnitOfWork } from '../ports.ts';
import type { ExecutionStore } from './execution-ports.ts';

export interface ExecutionDeps {
  readonly uow: UnitOfWork;
  readonly store: ExecutionStore;
  readonly audit: AuditTrail;
  readonly outbox: Outbox;
  readonly clock: Clock;
  readonly auth: AuthService;
  /** Plant-local calendar day of an instant, for qualification validity (YYYY-MM-DD). */
  readonly today: (at: Date) => string;
}

/** Where a use case was invoked from, for the audit entry. */
export interface CommandContext {
  readonly requestId: string | null;
}

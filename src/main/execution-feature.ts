import type { FastifyInstance } from 'fastify';
import { postgresExecutionStore } from '../adapters/db/postgres-execution-store.ts';
import { postgresIdempotencyStore, postgresOutbox } from '../adapters/db/postgres-idempotency-store.ts';
import type { Database } from '../adapters/db/postgres-pool.ts';
import { executionRoutes } from '../adapters/http/routes/execution-routes.ts';
import type { AuthService } from '../app/auth/auth-service.ts';
import type { ExecutionDeps } from '../app/execution/execution-deps.ts';
import type { AuditTrail, UnitOfWork } from '../app/ports.ts';
import type { Clock } from '../domain/shared/clock.ts';

/** The plant-local calendar day of an instant (en-CA formats as YYYY-MM-DD). */
export function calendarDay(timeZone: string): (at: Date) => string {
  const fmt = new Intl.DateTimeFormat('en-CA', {
    timeZone,
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
  });
  return (at) => fmt.format(at);
}

export function executionDeps(deps: {
  db: Database;
  uow: UnitOfWork;
  audit: AuditTrail;
  clock: Clock;
  auth: AuthService;
  timeZone: string;
}): ExecutionDeps {
  return {
    uow: deps.uow,
    store: postgresExecutionStore(deps.db),
    audit: deps.audit,
    outbox: postgresOutbox(),
    clock: deps.clock,
    auth: deps.auth,
    today: calendarDay(deps.timeZone),
  };
}

/** Orders, operations, dispatch and equipment state under /api. */
export function executionFeature(
  deps: Parameters<typeof executionDeps>[0],
): (app: FastifyInstance) => Promise<void> {
  return executionRoutes(executionDeps(deps), postgresIdempotencyStore());
}

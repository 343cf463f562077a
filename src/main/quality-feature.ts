import type { FastifyInstance } from 'fastify';
import { postgresIdempotencyStore, postgresOutbox } from '../adapters/db/postgres-idempotency-store.ts';
import { postgresKpiStore } from '../adapters/db/postgres-kpi-store.ts';
import type { Database } from '../adapters/db/postgres-pool.ts';
import { postgresQualityStore } from '../adapters/db/postgres-quality-store.ts';
import { kpiRoutes } from '../adapters/http/routes/kpi-routes.ts';
import { qualityRoutes } from '../adapters/http/routes/quality-routes.ts';
import type { AuthService } from '../app/auth/auth-service.ts';
import type { AuditTrail, UnitOfWork } from '../app/ports.ts';
import { QualityService } from '../app/quality/quality-service.ts';
import type { Clock } from '../domain/shared/clock.ts';

/** Quality results, nonconformances with their dispositions, and the quality KPIs. */
export function qualityFeature(deps: {
  db: Database;
  uow: UnitOfWork;
  audit: AuditTrail;
  clock: Clock;
  auth: AuthService;
}): (app: FastifyInstance) => Promise<void> {
  const service = new QualityService({
    uow: deps.uow,
    store: postgresQualityStore(deps.db),
    audit: deps.audit,
    outbox: postgresOutbox(),
    idempotency: postgresIdempotencyStore(),
    clock: deps.clock,
    sign: (principal, input, record) => deps.auth.sign(principal, input, record),
  });
  const quality = qualityRoutes(service);
  const kpis = kpiRoutes(postgresKpiStore(deps.db));
  return async (app) => {
    await quality(app);
    await kpis(app);
  };
}

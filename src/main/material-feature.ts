import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { postgresGenealogyStore } from '../adapters/db/postgres-genealogy-store.ts';
import { postgresIdempotencyStore, postgresOutbox } from '../adapters/db/postgres-idempotency-store.ts';
import { postgresLotStore } from '../adapters/db/postgres-lot-store.ts';
import type { Database } from '../adapters/db/postgres-pool.ts';
import { traceListsWorker } from '../adapters/db/trace-lists-worker.ts';
import { materialRoutes } from '../adapters/http/routes/material-routes.ts';
import { traceRoutes } from '../adapters/http/routes/trace-routes.ts';
import type { AuthService } from '../app/auth/auth-service.ts';
import { MaterialService } from '../app/material/material-service.ts';
import { GenealogyTrace } from '../app/material/trace-genealogy.ts';
import type { AuditTrail, IdempotencyStore, Outbox, UnitOfWork } from '../app/ports.ts';

/** Genealogy trace on PostgreSQL; the CLI's `loom trace` uses the same one. */
export function genealogyTrace(db: Database): GenealogyTrace {
  return new GenealogyTrace({ genealogy: postgresGenealogyStore(db) });
}

/** Lots and serials (/api/lots, consumption and output at /api/operations/:id) and trace (/api/trace). */
export function materialFeature(deps: {
  db: Database;
  uow: UnitOfWork;
  audit: AuditTrail;
  auth: AuthService;
  outbox?: Outbox;
  idempotency?: IdempotencyStore;
  logger: Logger;
}): (app: FastifyInstance) => Promise<void> {
  const service = new MaterialService({
    uow: deps.uow,
    lots: postgresLotStore(deps.db),
    genealogy: postgresGenealogyStore(deps.db),
    audit: deps.audit,
    outbox: deps.outbox ?? postgresOutbox(),
    idempotency: deps.idempotency ?? postgresIdempotencyStore(),
    sign: (principal, input, record) => deps.auth.sign(principal, input, record),
  });
  const materials = materialRoutes(service);
  // A deep trace's lots and operations are looked up and serialised in a worker thread while the
  // tree is built on this one (ADR 0017); it starts at the first trace and stops with the server.
  const lists = traceListsWorker({ connection: deps.db.connection(), logger: deps.logger });
  const trace = traceRoutes(new GenealogyTrace({ genealogy: postgresGenealogyStore(deps.db), lists }));
  return async (app) => {
    app.addHook('onClose', () => lists.close());
    await app.register(materials);
    await app.register(trace);
  };
}

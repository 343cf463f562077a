import type { FastifyInstance } from 'fastify';
import { postgresBatchRecordStore } from '../adapters/db/postgres-batch-record-store.ts';
import type { Database } from '../adapters/db/postgres-pool.ts';
import { batchRecordRoutes } from '../adapters/http/routes/batch-record-routes.ts';
import type { AuditTrail } from '../app/ports.ts';
import type { Clock } from '../domain/shared/clock.ts';

/** The electronic batch / device history record of an order (/api/orders/:id/record[.html]). */
export function batchRecordFeature(deps: {
  db: Database;
  audit: AuditTrail;
  clock: Clock;
}): (app: FastifyInstance) => Promise<void> {
  return batchRecordRoutes({
    store: postgresBatchRecordStore(deps.db),
    audit: deps.audit,
    clock: deps.clock,
  });
}

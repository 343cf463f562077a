import type { FastifyInstance } from 'fastify';
import type { Database } from '../adapters/db/postgres-pool.ts';
import type { AuditTrail, UnitOfWork } from '../app/ports.ts';
import type { Clock } from '../domain/shared/clock.ts';

/** Placeholder wiring point for the plant model routes (filled in by the plant model change). */
export function plantFeature(_deps: { db: Database; uow: UnitOfWork; audit: AuditTrail; clock: Clock }) {
  return async (_app: FastifyInstance) => {};
}

import type { FastifyInstance } from 'fastify';
import { postgresPlantStore } from '../adapters/db/postgres-plant-store.ts';
import type { Database } from '../adapters/db/postgres-pool.ts';
import { plantRoutes } from '../adapters/http/routes/plant-routes.ts';
import { PlantService } from '../app/plant/plant-service.ts';
import type { AuditTrail, UnitOfWork } from '../app/ports.ts';
import type { Clock } from '../domain/shared/clock.ts';

/** The plant service on PostgreSQL; the CLI's `loom import` uses the same one. */
export function plantService(deps: { db: Database; uow: UnitOfWork; audit: AuditTrail }): PlantService {
  return new PlantService({ uow: deps.uow, store: postgresPlantStore(deps.db), audit: deps.audit });
}

/** The plant model feature: master-data CRUD and whole-file import under /api/plant. */
export function plantFeature(deps: {
  db: Database;
  uow: UnitOfWork;
  audit: AuditTrail;
  clock: Clock;
}): (app: FastifyInstance) => Promise<void> {
  return plantRoutes(plantService(deps));
}

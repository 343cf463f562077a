import type { FastifyInstance } from 'fastify';
import { createXsdValidator, type XsdValidator } from '../adapters/erp/xsd-validator.ts';
import { JsonataMappings } from '../adapters/erp/jsonata-mapping.ts';
import { postgresErpInboundStore } from '../adapters/db/postgres-erp-inbound-store.ts';
import { postgresGenealogyStore } from '../adapters/db/postgres-genealogy-store.ts';
import { postgresIdempotencyStore } from '../adapters/db/postgres-idempotency-store.ts';
import { postgresLotStore } from '../adapters/db/postgres-lot-store.ts';
import { postgresPlantStore } from '../adapters/db/postgres-plant-store.ts';
import { erpInboundRoutes } from '../adapters/http/routes/erp-inbound-routes.ts';
import type { ErpDeps } from '../app/erp/erp-ports.ts';
import { executionDeps } from './execution-feature.ts';

/** The use cases' dependencies for what the ERP sends (the HTTP routes and the file drop). */
export function erpDeps(deps: Parameters<typeof executionDeps>[0]): ErpDeps {
  const execution = executionDeps(deps);
  return {
    execution,
    materials: {
      uow: deps.uow,
      lots: postgresLotStore(deps.db),
      genealogy: postgresGenealogyStore(deps.db),
      audit: deps.audit,
      outbox: execution.outbox,
      idempotency: postgresIdempotencyStore(),
      sign: (principal, input, record) => deps.auth.sign(principal, input, record),
    },
    plant: postgresPlantStore(deps.db),
    inbound: postgresErpInboundStore(),
  };
}

/** The ERP's inbound side: REST orders, master data and goods receipts, B2MML, JSONata mappings. */
export function erpInboundFeature(
  deps: Parameters<typeof executionDeps>[0] & {
    mappingsDir: string;
    /** Defaults to the xmllint binary when installed, else xmllint-wasm. */
    validator?: XsdValidator;
  },
): (app: FastifyInstance) => Promise<void> {
  const erp = erpDeps(deps);
  return async (app) => {
    const validator = deps.validator ?? (await createXsdValidator());
    app.log.info({ engine: validator.engine }, 'B2MML schema validation');
    await app.register(
      erpInboundRoutes({
        erp,
        idempotency: postgresIdempotencyStore(),
        validator,
        mappings: new JsonataMappings(deps.mappingsDir),
        clock: deps.clock,
      }),
    );
  };
}

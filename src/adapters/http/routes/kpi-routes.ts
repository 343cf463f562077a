import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { qualityKpis } from '../../../app/quality/quality-kpis.ts';
import { KPI_GROUPS, type KpiStore } from '../../../app/quality/quality-ports.ts';
import { sendProblem } from '../problem.ts';

const instant = z.iso.datetime({ offset: true }).transform((v) => new Date(v));

export function kpiRoutes(store: KpiStore) {
  return async function (base: FastifyInstance) {
    const app = base.withTypeProvider<ZodTypeProvider>();

    app.get(
      '/api/kpi/quality',
      {
        config: { allow: ['supervisor', 'quality', 'engineer', 'admin'] as const },
        schema: {
          tags: ['kpi'],
          summary:
            'First-pass yield, rework and scrap rates by operation, product, work unit, cause or shift over [from, to); rolled throughput yield per product; rework loops per step (docs/kpi.md).',
          querystring: z.strictObject({
            from: instant.optional(),
            to: instant.optional(),
            groupBy: z.enum(KPI_GROUPS).optional(),
            product: z.string().min(1).max(100).optional(),
          }),
        },
      },
      async (req, reply) => {
        const r = await qualityKpis(
          store,
          { from: req.query.from ?? null, to: req.query.to ?? null, productId: req.query.product ?? null },
          req.query.groupBy ?? 'operation',
        );
        return r.ok ? r.value : sendProblem(reply, r.error);
      },
    );
  };
}

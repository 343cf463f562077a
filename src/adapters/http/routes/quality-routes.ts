import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { QualityService } from '../../../app/quality/quality-service.ts';
import { DISPOSITIONS, NCR_STATES } from '../../../domain/quality/quality.ts';
import { principalOf } from '../auth-guard.ts';
import { idempotencyOf, invalidKey, sendOutcome } from '../idempotency.ts';
import { sendProblem } from '../problem.ts';

const idParam = z.strictObject({
  id: z
    .string()
    .regex(/^\d{1,15}$/, 'must be a numeric id')
    .transform(Number),
});
/** A quantity as a JSON number or a decimal string; the domain parses it exactly (no coercion here). */
const quantity = z.union([z.number(), z.string().max(40)]);
const text = (max: number) => z.string().trim().min(1).max(max);

const recorders = { allow: ['operator', 'supervisor', 'quality'] as const };
const quality = { allow: ['quality'] as const };
const readers = { allow: 'authenticated' } as const;

export function qualityRoutes(service: QualityService) {
  return async function (base: FastifyInstance) {
    const app = base.withTypeProvider<ZodTypeProvider>();

    app.post(
      '/api/operations/:id/results',
      {
        config: recorders,
        schema: {
          tags: ['quality'],
          summary:
            'Record measured results for an operation (Running or Paused); every failing result raises an NCR in the same transaction.',
          params: idParam,
          body: z.strictObject({
            results: z
              .array(
                z.strictObject({
                  characteristic: text(100),
                  value: z.union([z.number(), z.string().max(20), z.boolean()]),
                  lotId: text(100).optional(),
                  quantity: quantity.optional(),
                }),
              )
              .min(1)
              .max(500),
          }),
        },
      },
      async (req, reply) => {
        const idempotency = idempotencyOf(req);
        if (idempotency === 'invalid') return invalidKey(reply);
        const outcome = await service.recordResults(principalOf(req), req.params.id, req.body.results, {
          requestId: req.id,
          idempotency,
        });
        return sendOutcome(reply, outcome, 201);
      },
    );

    app.get(
      '/api/operations/:id/results',
      { config: readers, schema: { tags: ['quality'], params: idParam } },
      async (req, reply) => {
        const r = await service.results(req.params.id);
        return r.ok ? r.value : sendProblem(reply, r.error);
      },
    );

    app.post(
      '/api/ncrs',
      {
        config: recorders,
        schema: {
          tags: ['quality'],
          summary: 'Raise a nonconformance report by hand against an order operation.',
          body: z.strictObject({
            operation: z.number().int().positive(),
            quantity,
            description: text(2000),
            cause: text(100).optional(),
            lotId: text(100).optional(),
            characteristic: text(100).optional(),
          }),
        },
      },
      async (req, reply) => {
        const idempotency = idempotencyOf(req);
        if (idempotency === 'invalid') return invalidKey(reply);
        const outcome = await service.raiseNcr(principalOf(req), req.body, {
          requestId: req.id,
          idempotency,
        });
        return sendOutcome(reply, outcome, 201);
      },
    );

    app.get(
      '/api/ncrs',
      {
        config: readers,
        schema: {
          tags: ['quality'],
          querystring: z.strictObject({
            state: z.enum(NCR_STATES).optional(),
            order: z.string().min(1).max(100).optional(),
            limit: z
              .string()
              .regex(/^\d{1,4}$/, 'must be 1–9999')
              .transform(Number)
              .optional(),
          }),
        },
      },
      async (req) =>
        service.ncrs({ state: req.query.state, orderId: req.query.order, limit: req.query.limit }),
    );

    app.get(
      '/api/ncrs/:id',
      { config: readers, schema: { tags: ['quality'], params: idParam } },
      async (req, reply) => {
        const r = await service.ncr(req.params.id);
        return r.ok ? r.value : sendProblem(reply, r.error);
      },
    );

    app.post(
      '/api/ncrs/:id/disposition',
      {
        config: quality,
        schema: {
          tags: ['quality'],
          summary:
            'Disposition an open NCR: rework (inserts a rework operation), scrap, use-as-is (e-signature; not by whoever raised it), return-to-supplier (blocks the lot).',
          params: idParam,
          body: z.strictObject({
            disposition: z.enum(DISPOSITIONS),
            cause: text(100),
            reason: text(2000),
            signature: z
              .strictObject({ password: z.string().min(1).max(1024), meaning: text(200) })
              .optional(),
          }),
        },
      },
      async (req, reply) => {
        const idempotency = idempotencyOf(req);
        if (idempotency === 'invalid') return invalidKey(reply);
        const outcome = await service.dispositionNcr(principalOf(req), req.params.id, req.body, {
          requestId: req.id,
          idempotency,
        });
        return sendOutcome(reply, outcome, 200);
      },
    );

    app.post(
      '/api/ncrs/:id/close',
      {
        config: quality,
        schema: {
          tags: ['quality'],
          params: idParam,
          body: z.strictObject({ reason: z.string().max(2000).optional() }).optional(),
        },
      },
      async (req, reply) => {
        const idempotency = idempotencyOf(req);
        if (idempotency === 'invalid') return invalidKey(reply);
        const outcome = await service.closeNcr(principalOf(req), req.params.id, req.body?.reason ?? null, {
          requestId: req.id,
          idempotency,
        });
        return sendOutcome(reply, outcome, 200);
      },
    );
  };
}

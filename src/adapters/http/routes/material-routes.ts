import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { MaterialCommand } from '../../../app/material/lot-view.ts';
import type { MaterialService } from '../../../app/material/material-service.ts';
import { LOT_STATUSES } from '../../../app/material/material-ports.ts';
import type { IdempotencyRequest } from '../../../app/shared/idempotent.ts';
import { principalOf } from '../auth-guard.ts';
import { idempotencyOf, invalidKey, sendOutcome } from '../idempotency.ts';
import { sendProblem } from '../problem.ts';

/** The lots.id CHECK of migration 0004, so a bad id is a 400 naming the field, not a 500. */
export const LotId = z
  .string()
  .regex(
    /^[A-Za-z0-9][A-Za-z0-9._:/-]{0,99}$/,
    'must be 1-100 letters, digits, . _ : / - (starting with a letter or digit)',
  );
/**
 * A decimal string ("12.5") or a JSON number; the application parses it exactly (no float
 * rounding, at most 6 decimals) and names the field when it is not a positive quantity.
 */
const QuantityInput = z.union([z.string().max(40), z.number()]);
const Text = z.string().min(1).max(200);

const readers = { allow: 'authenticated' } as const;
const handlers = { allow: ['operator', 'supervisor', 'quality', 'admin', 'integration'] as const };
const shopFloor = { allow: ['operator', 'supervisor'] as const };
const quality = { allow: ['quality'] as const };

const lotParam = z.strictObject({ id: LotId });
const operationParam = z.strictObject({
  id: z
    .string()
    .regex(/^\d{1,15}$/, 'must be a numeric operation id')
    .transform(Number),
});
const signedBody = z.strictObject({
  reason: z.string().min(1).max(1000),
  signature: z.strictObject({ password: z.string().min(1).max(1024), meaning: z.string().min(1).max(200) }),
});

function command(
  req: FastifyRequest,
  idempotency: IdempotencyRequest | null,
  status: number,
): MaterialCommand {
  return { actor: principalOf(req), requestId: req.id, idempotency, status };
}

export function materialRoutes(materials: MaterialService) {
  return async function (base: FastifyInstance) {
    const app = base.withTypeProvider<ZodTypeProvider>();
    const tags = ['materials'];

    app.post(
      '/api/lots',
      {
        config: handlers,
        schema: {
          tags,
          summary: 'Receive a lot or serial (Quarantine unless status Released is asked for by quality)',
          body: z.strictObject({
            id: LotId,
            material: Text,
            quantity: QuantityInput.optional(),
            unit: Text.optional(),
            status: z.enum(['Quarantine', 'Released']).optional(),
            supplierLot: Text.optional(),
            location: Text.optional(),
          }),
        },
      },
      async (req, reply) => {
        const idem = idempotencyOf(req);
        if (idem === 'invalid') return invalidKey(reply);
        return sendOutcome(reply, await materials.receive(command(req, idem, 201), req.body), 201);
      },
    );

    app.get(
      '/api/lots',
      {
        config: readers,
        schema: {
          tags,
          querystring: z.strictObject({
            material: Text.optional(),
            status: z.enum(LOT_STATUSES).optional(),
            limit: z
              .string()
              .regex(/^\d{1,4}$/, 'must be 1-1000')
              .transform(Number)
              .refine((n) => n >= 1 && n <= 1000, 'must be 1-1000')
              .optional(),
          }),
        },
      },
      (req) => materials.list(req.query),
    );

    app.get('/api/lots/:id', { config: readers, schema: { tags, params: lotParam } }, async (req, reply) => {
      const r = await materials.get(req.params.id);
      return r.ok ? r.value : sendProblem(reply, r.error);
    });

    app.post(
      '/api/lots/:id/split',
      {
        config: handlers,
        schema: { tags, params: lotParam, body: z.strictObject({ newId: LotId, quantity: QuantityInput }) },
      },
      async (req, reply) => {
        const idem = idempotencyOf(req);
        if (idem === 'invalid') return invalidKey(reply);
        return sendOutcome(
          reply,
          await materials.split(command(req, idem, 201), req.params.id, req.body),
          201,
        );
      },
    );

    app.post(
      '/api/lots/merge',
      {
        config: handlers,
        schema: {
          tags,
          summary: 'Merge lots of one material and status into one',
          body: z.strictObject({ into: LotId, from: z.array(LotId).min(1).max(100) }),
        },
      },
      async (req, reply) => {
        const idem = idempotencyOf(req);
        if (idem === 'invalid') return invalidKey(reply);
        return sendOutcome(reply, await materials.merge(command(req, idem, 200), req.body), 200);
      },
    );

    app.post(
      '/api/lots/:id/move',
      { config: handlers, schema: { tags, params: lotParam, body: z.strictObject({ location: Text }) } },
      async (req, reply) => {
        const idem = idempotencyOf(req);
        if (idem === 'invalid') return invalidKey(reply);
        return sendOutcome(
          reply,
          await materials.move(command(req, idem, 200), req.params.id, req.body),
          200,
        );
      },
    );

    for (const change of ['hold', 'release'] as const) {
      app.post(
        `/api/lots/:id/${change}`,
        {
          config: quality,
          schema: {
            tags,
            summary:
              change === 'hold'
                ? 'Block a lot (quality, electronic signature)'
                : 'Release a lot from Quarantine or Blocked (quality, electronic signature)',
            params: lotParam,
            body: signedBody,
          },
        },
        async (req, reply) => {
          const idem = idempotencyOf(req);
          if (idem === 'invalid') return invalidKey(reply);
          return sendOutcome(
            reply,
            await materials.changeStatus(command(req, idem, 200), req.params.id, change, req.body),
            200,
          );
        },
      );
    }

    app.post(
      '/api/operations/:id/consumptions',
      {
        config: shopFloor,
        schema: {
          tags,
          summary: 'Consume a quantity of a Released lot at a Running operation',
          params: operationParam,
          body: z.strictObject({ lotId: LotId, quantity: QuantityInput, into: LotId.optional() }),
        },
      },
      async (req, reply) => {
        const idem = idempotencyOf(req);
        if (idem === 'invalid') return invalidKey(reply);
        return sendOutcome(
          reply,
          await materials.consume(command(req, idem, 201), req.params.id, req.body),
          201,
        );
      },
    );

    app.post(
      '/api/operations/:id/outputs',
      {
        config: shopFloor,
        schema: {
          tags,
          summary: 'Produce a lot or serial at a Running operation',
          params: operationParam,
          body: z.strictObject({
            lotId: LotId,
            quantity: QuantityInput.optional(),
            kind: z.enum(['lot', 'serial']).optional(),
            material: Text.optional(),
            location: Text.optional(),
          }),
        },
      },
      async (req, reply) => {
        const idem = idempotencyOf(req);
        if (idem === 'invalid') return invalidKey(reply);
        return sendOutcome(
          reply,
          await materials.produce(command(req, idem, 201), req.params.id, req.body),
          201,
        );
      },
    );
  };
}

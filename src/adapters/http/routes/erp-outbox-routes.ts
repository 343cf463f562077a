import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import {
  replayOutboxEvent,
  type ErpDeliveryHealth,
  type OutboxAdminDeps,
} from '../../../app/erp/outbox-admin.ts';
import type { Role } from '../../../domain/auth/roles.ts';
import { principalOf } from '../auth-guard.ts';
import { sendProblem } from '../problem.ts';

const WATCHERS: Role[] = ['admin', 'integration', 'supervisor'];

/** The outbound ERP queue: list, replay of dead letters, delivery health. */
export function erpOutboxRoutes(deps: OutboxAdminDeps & { health: () => Promise<ErpDeliveryHealth> }) {
  return async function (base: FastifyInstance) {
    const app = base.withTypeProvider<ZodTypeProvider>();

    app.get(
      '/api/erp/outbox',
      {
        config: { allow: WATCHERS },
        schema: {
          tags: ['erp'],
          summary: 'Outbound ERP messages (the outbox), oldest first; filter by status and order',
          querystring: z.strictObject({
            status: z.enum(['pending', 'delivered', 'dead']).optional(),
            order: z.string().min(1).max(100).optional(),
            after: z
              .string()
              .regex(/^\d{1,15}$/, 'must be an event id')
              .transform(Number)
              .optional(),
            limit: z
              .string()
              .regex(/^\d+$/, 'must be a whole number')
              .transform(Number)
              .pipe(z.number().min(1).max(1000))
              .optional(),
          }),
        },
      },
      async (req) => {
        const events = await deps.store.list({
          ...(req.query.status ? { status: req.query.status } : {}),
          ...(req.query.order ? { aggregateId: req.query.order } : {}),
          ...(req.query.after !== undefined ? { afterId: req.query.after } : {}),
          limit: req.query.limit ?? 100,
        });
        return { events };
      },
    );

    app.post(
      '/api/erp/outbox/:id/replay',
      {
        config: { allow: ['admin'] },
        schema: {
          tags: ['erp'],
          summary: 'Put a dead-lettered message back in the queue (audited with the reason)',
          params: z.strictObject({
            id: z
              .string()
              .regex(/^\d{1,15}$/, 'must be an event id')
              .transform(Number),
          }),
          body: z.strictObject({ reason: z.string().trim().min(1).max(1000) }),
        },
      },
      async (req, reply) => {
        const r = await replayOutboxEvent(deps, principalOf(req), req.params.id, req.body.reason, {
          requestId: req.id,
        });
        if (!r.ok) return sendProblem(reply, r.error);
        return r.value;
      },
    );

    app.get(
      '/api/erp/health',
      {
        config: { allow: WATCHERS },
        schema: {
          tags: ['erp'],
          summary: 'Outbound delivery: backlog, dead letters, last success and failure',
        },
      },
      () => deps.health(),
    );
  };
}

import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { CommandGateway } from '../../../app/equipment/command-gateway.ts';
import { COMMAND_ROLES } from '../../../domain/equipment/equipment-command.ts';
import { principalOf } from '../auth-guard.ts';
import { idempotencyOf, invalidKey } from '../idempotency.ts';
import { sendProblem } from '../problem.ts';

const equipmentParams = z.strictObject({ id: z.string().min(1).max(64) });

/**
 * The command gateway's routes. The body is checked by the gateway, not here: its problems are
 * 422 `LOOM_COMMAND_INVALID` with every field named, and who may send it depends on its kind.
 */
export function commandRoutes(gateway: CommandGateway) {
  return async function (base: FastifyInstance) {
    const app = base.withTypeProvider<ZodTypeProvider>();

    app.post(
      '/api/equipment/:id/commands',
      {
        config: { allow: COMMAND_ROLES },
        schema: {
          tags: ['commands'],
          summary:
            'Send a command to a machine: setpoint {signal, value}; recipe {recipe, parameters[{signal, value}], operation?, signature{password, meaning}} (engineer, supervisor, admin); start, stop, hold, unhold, reset, abort, clear (also operator). Every command needs a reason. Written through the signal’s connector and confirmed by read-back; honours Idempotency-Key.',
          params: equipmentParams,
          body: z.record(z.string(), z.unknown()),
        },
      },
      async (req, reply) => {
        const key = idempotencyOf(req);
        if (key === 'invalid') return invalidKey(reply);
        const r = await gateway.send(principalOf(req), req.params.id, req.body, {
          requestId: req.id,
          idempotency: key,
        });
        if (r.replayed) reply.header('idempotent-replayed', 'true');
        if (!r.ok) return sendProblem(reply, r.error);
        return reply.code(201).header('location', `/api/equipment-commands/${r.command.id}`).send(r.command);
      },
    );

    app.get(
      '/api/equipment/:id/commands',
      {
        config: { allow: 'authenticated' },
        schema: {
          tags: ['commands'],
          summary: 'Commands sent to a machine, newest first; page with before=<nextBefore>',
          params: equipmentParams,
          querystring: z.strictObject({
            limit: z
              .string()
              .regex(/^\d+$/, 'must be a whole number')
              .transform(Number)
              .pipe(z.number().min(1).max(500))
              .optional(),
            before: z
              .string()
              .regex(/^\d{1,18}$/, 'must be a whole number')
              .transform(Number)
              .optional(),
          }),
        },
      },
      async (req, reply) => {
        const r = await gateway.list(req.params.id, {
          limit: req.query.limit ?? 50,
          ...(req.query.before !== undefined ? { before: req.query.before } : {}),
        });
        return r.ok ? r.value : sendProblem(reply, r.error);
      },
    );

    app.get(
      '/api/equipment-commands/:commandId',
      {
        config: { allow: 'authenticated' },
        schema: {
          tags: ['commands'],
          summary: 'One equipment command: request, state read, per-value results, outcome',
          params: z.strictObject({ commandId: z.uuid('must be a command id (a UUID)') }),
        },
      },
      async (req, reply) => {
        const r = await gateway.get(req.params.commandId);
        return r.ok ? r.value : sendProblem(reply, r.error);
      },
    );
  };
}

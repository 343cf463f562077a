import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { ExecutionDeps } from '../../../app/execution/execution-deps.ts';
import { createOrder, present } from '../../../app/execution/create-order.ts';
import { changeOperationState, completeOperation } from '../../../app/execution/operation-commands.ts';
import { changeOrderState, dispatchFor, setEquipmentState } from '../../../app/execution/order-commands.ts';
import { startOperation } from '../../../app/execution/start-operation.ts';
import { operationView, orderView } from '../../../app/execution/views.ts';
import type { IdempotencyStore, Tx } from '../../../app/ports.ts';
import { runIdempotent } from '../../../app/shared/idempotent.ts';
import type { Role } from '../../../domain/auth/roles.ts';
import { EQUIPMENT_STATES } from '../../../domain/equipment/equipment-state.ts';
import type { Result } from '../../../domain/shared/result.ts';
import { principalOf } from '../auth-guard.ts';
import { idempotencyOf, invalidKey, sendOutcome } from '../idempotency.ts';
import { sendProblem } from '../problem.ts';

const quantity = z.union([z.number(), z.string().max(40)]);
const reasonBody = z.strictObject({ reason: z.string().trim().min(1).max(1000).optional() });
const opId = z.strictObject({
  id: z
    .string()
    .regex(/^\d{1,15}$/, 'must be a numeric operation id')
    .transform(Number),
});
const orderId = z.strictObject({ id: z.string().min(1).max(100) });

const PLANNERS: Role[] = ['supervisor', 'engineer', 'admin', 'integration'];
const FLOOR: Role[] = ['operator', 'supervisor'];
const HOLDERS: Role[] = ['supervisor', 'quality'];

export function executionRoutes(deps: ExecutionDeps, idempotency: IdempotencyStore) {
  /** Every state change: one transaction, honouring Idempotency-Key. */
  async function command<T>(
    req: FastifyRequest,
    reply: FastifyReply,
    status: number,
    fn: (tx: Tx) => Promise<Result<T>>,
  ): Promise<FastifyReply> {
    const key = idempotencyOf(req);
    if (key === 'invalid') return invalidKey(reply);
    return sendOutcome(reply, await runIdempotent(deps.uow, idempotency, key, status, fn), status);
  }

  return async function (base: FastifyInstance) {
    const app = base.withTypeProvider<ZodTypeProvider>();
    const ctx = (req: FastifyRequest) => ({ requestId: req.id });

    app.post(
      '/api/orders',
      {
        config: { allow: PLANNERS },
        schema: {
          tags: ['orders'],
          summary:
            'Create a production order (idempotent on externalId); expands the routing into operations',
          body: z.strictObject({
            externalId: z.string().min(1).max(100).optional(),
            product: z.string().min(1).max(64),
            quantity,
            dueAt: z.iso.datetime({ offset: true }).optional(),
            priority: z.number().int().min(1).max(999).optional(),
          }),
        },
      },
      async (req, reply) => {
        const key = idempotencyOf(req);
        if (key === 'invalid') return invalidKey(reply);
        const outcome = await runIdempotent(deps.uow, idempotency, key, 201, (tx) =>
          createOrder(deps, tx, principalOf(req), req.body, ctx(req)),
        );
        const status = outcome.kind === 'done' && outcome.value.outcome !== 'created' ? 200 : 201;
        return sendOutcome(reply, outcome, status);
      },
    );

    app.get(
      '/api/orders',
      {
        config: { allow: 'authenticated' },
        schema: {
          tags: ['orders'],
          querystring: z.strictObject({
            state: z
              .enum(['Released', 'InProgress', 'Completed', 'Closed', 'OnHold', 'Cancelled'])
              .optional(),
            product: z.string().max(64).optional(),
            limit: z.string().regex(/^\d+$/).transform(Number).pipe(z.number().min(1).max(1000)).optional(),
          }),
        },
      },
      async (req) => {
        const orders = await deps.store.orders({
          ...(req.query.state ? { state: req.query.state } : {}),
          ...(req.query.product ? { productId: req.query.product } : {}),
          limit: req.query.limit ?? 100,
        });
        return orders.map(orderView);
      },
    );

    app.get(
      '/api/orders/:id',
      { config: { allow: 'authenticated' }, schema: { tags: ['orders'], params: orderId } },
      async (req, reply) => {
        const order = await deps.store.order(null, req.params.id);
        if (!order)
          return sendProblem(reply, {
            code: 'LOOM_ORDER_NOT_FOUND',
            message: `No production order ${req.params.id}.`,
          });
        return present(deps, null, order);
      },
    );

    for (const [event, allow] of [
      ['hold', HOLDERS],
      ['release', HOLDERS],
      ['cancel', ['supervisor', 'admin']],
      ['close', ['supervisor', 'admin']],
    ] as const) {
      app.post(
        `/api/orders/:id/${event}`,
        { config: { allow }, schema: { tags: ['orders'], params: orderId, body: reasonBody } },
        (req, reply) =>
          command(req, reply, 200, (tx) =>
            changeOrderState(
              deps,
              tx,
              principalOf(req),
              req.params.id,
              event,
              req.body.reason ?? null,
              ctx(req),
            ),
          ),
      );
    }

    app.get(
      '/api/operations/:id',
      { config: { allow: 'authenticated' }, schema: { tags: ['operations'], params: opId } },
      async (req, reply) => {
        const op = await deps.store.operation(null, req.params.id);
        if (!op)
          return sendProblem(reply, {
            code: 'LOOM_OPERATION_NOT_FOUND',
            message: `No operation with id ${req.params.id}.`,
          });
        return operationView(op);
      },
    );

    app.post(
      '/api/operations/:id/start',
      {
        config: { allow: FLOOR },
        schema: {
          tags: ['operations'],
          summary: 'Start an operation on a work unit (qualification, equipment, predecessor and lot checks)',
          params: opId,
          body: z.strictObject({
            workUnit: z.string().min(1).max(64),
            lots: z.array(z.string().min(1).max(100)).max(100).optional(),
            trainer: z
              .strictObject({ username: z.string().min(1).max(64), password: z.string().min(1).max(1024) })
              .optional(),
            override: z
              .strictObject({
                username: z.string().min(1).max(64),
                password: z.string().min(1).max(1024),
                reason: z.string().trim().min(3).max(1000),
              })
              .optional(),
          }),
        },
      },
      (req, reply) =>
        command(req, reply, 200, (tx) =>
          startOperation(deps, tx, principalOf(req), req.params.id, req.body, ctx(req)),
        ),
    );

    for (const event of ['pause', 'resume'] as const) {
      app.post(
        `/api/operations/:id/${event}`,
        {
          config: { allow: FLOOR },
          schema: { tags: ['operations'], params: opId, body: reasonBody.optional() },
        },
        (req, reply) =>
          command(req, reply, 200, (tx) =>
            changeOperationState(
              deps,
              tx,
              principalOf(req),
              req.params.id,
              event,
              req.body?.reason ?? null,
              ctx(req),
            ),
          ),
      );
    }
    for (const event of ['hold', 'release'] as const) {
      app.post(
        `/api/operations/:id/${event}`,
        { config: { allow: HOLDERS }, schema: { tags: ['operations'], params: opId, body: reasonBody } },
        (req, reply) =>
          command(req, reply, 200, (tx) =>
            changeOperationState(
              deps,
              tx,
              principalOf(req),
              req.params.id,
              event,
              req.body.reason ?? null,
              ctx(req),
            ),
          ),
      );
    }

    app.post(
      '/api/operations/:id/complete',
      {
        config: { allow: FLOOR },
        schema: {
          tags: ['operations'],
          params: opId,
          body: z.strictObject({
            good: quantity,
            scrap: quantity.optional(),
            scrapCause: z.string().min(1).max(64).optional(),
          }),
        },
      },
      (req, reply) =>
        command(req, reply, 200, (tx) =>
          completeOperation(deps, tx, principalOf(req), req.params.id, req.body, ctx(req)),
        ),
    );

    app.get(
      '/api/dispatch',
      {
        config: { allow: 'authenticated' },
        schema: {
          tags: ['operations'],
          summary: 'Dispatch list of a work center or work unit',
          querystring: z
            .strictObject({
              workCenter: z.string().min(1).max(64).optional(),
              workUnit: z.string().min(1).max(64).optional(),
            })
            .refine(
              (q) => Boolean(q.workCenter) !== Boolean(q.workUnit),
              'give exactly one of workCenter or workUnit',
            ),
        },
      },
      async (req, reply) => {
        const r = await dispatchFor(
          deps,
          req.query.workUnit ? { workUnitId: req.query.workUnit } : { workCenterId: req.query.workCenter! },
        );
        return r.ok ? r.value : sendProblem(reply, r.error);
      },
    );

    const equipmentId = z.strictObject({ id: z.string().min(1).max(64) });
    app.get(
      '/api/equipment/:id/state',
      { config: { allow: 'authenticated' }, schema: { tags: ['equipment'], params: equipmentId } },
      async (req, reply) => {
        const eq = await deps.store.equipment(null, req.params.id);
        if (!eq)
          return sendProblem(reply, {
            code: 'LOOM_PLANT_NOT_FOUND',
            message: `No equipment '${req.params.id}'.`,
          });
        const s = await deps.store.equipmentState(null, req.params.id);
        return { equipment: eq.id, state: s.state, reason: s.reason, since: s.since?.toISOString() ?? null };
      },
    );
    app.put(
      '/api/equipment/:id/state',
      {
        config: { allow: ['supervisor', 'engineer', 'admin'] },
        schema: {
          tags: ['equipment'],
          params: equipmentId,
          body: z.strictObject({
            state: z.enum(EQUIPMENT_STATES),
            reason: z.string().trim().min(1).max(1000).optional(),
          }),
        },
      },
      (req, reply) =>
        command(req, reply, 200, (tx) =>
          setEquipmentState(
            deps,
            tx,
            principalOf(req),
            req.params.id,
            { state: req.body.state, reason: req.body.reason ?? null },
            ctx(req),
          ),
        ),
    );

    app.get('/api/reason-codes', { config: { allow: 'authenticated' }, schema: { tags: ['quality'] } }, () =>
      deps.store.reasonCodes(),
    );
  };
}

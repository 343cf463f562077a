import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { AuthService } from '../../../app/auth/auth-service.ts';
import { ROLES } from '../../../domain/auth/roles.ts';
import { principalOf } from '../auth-guard.ts';
import { sendProblem } from '../problem.ts';

const role = z.enum(ROLES);
const idParam = z.strictObject({
  id: z
    .string()
    .regex(/^\d{1,15}$/, 'must be a numeric id')
    .transform(Number),
});

export function userRoutes(auth: AuthService) {
  return async function (base: FastifyInstance) {
    const app = base.withTypeProvider<ZodTypeProvider>();
    const admin = { allow: ['admin'] as const };

    app.get('/api/users', { config: admin, schema: { tags: ['users'] } }, () => auth.listUsers());

    app.get(
      '/api/users/:id',
      { config: admin, schema: { tags: ['users'], params: idParam } },
      async (req, reply) => {
        const r = await auth.getUser(req.params.id);
        return r.ok ? r.value : sendProblem(reply, r.error);
      },
    );

    app.post(
      '/api/users',
      {
        config: admin,
        schema: {
          tags: ['users'],
          body: z.strictObject({
            username: z.string().regex(/^[a-z0-9][a-z0-9._-]{1,63}$/i, 'must be 2-64 letters, digits, . _ -'),
            displayName: z.string().min(1).max(200),
            password: z.string().min(1).max(1024),
            roles: z.array(role).min(1),
            mustChangePassword: z.boolean().optional(),
          }),
        },
      },
      async (req, reply) => {
        const r = await auth.createUser(principalOf(req), req.body, req.id);
        return r.ok ? reply.code(201).send(r.value) : sendProblem(reply, r.error);
      },
    );

    app.patch(
      '/api/users/:id',
      {
        config: admin,
        schema: {
          tags: ['users'],
          params: idParam,
          body: z.strictObject({
            displayName: z.string().min(1).max(200).optional(),
            roles: z.array(role).min(1).optional(),
            disabled: z.boolean().optional(),
            unlock: z.literal(true).optional(),
            password: z.string().min(1).max(1024).optional(),
            reason: z.string().max(1000).optional(),
          }),
        },
      },
      async (req, reply) => {
        const { reason, ...patch } = req.body;
        const r = await auth.updateUser(principalOf(req), req.params.id, patch, reason ?? null, req.id);
        return r.ok ? r.value : sendProblem(reply, r.error);
      },
    );

    app.get('/api/tokens', { config: admin, schema: { tags: ['users'] } }, () => auth.listApiTokens());

    app.post(
      '/api/tokens',
      {
        config: admin,
        schema: {
          tags: ['users'],
          summary: 'Create an API token for a user (shown once)',
          body: z.strictObject({
            userId: z.number().int().positive(),
            name: z.string().min(1).max(100),
            expiresAt: z.iso.datetime({ offset: true }).optional(),
          }),
        },
      },
      async (req, reply) => {
        const r = await auth.createApiToken(
          principalOf(req),
          { ...req.body, expiresAt: req.body.expiresAt ? new Date(req.body.expiresAt) : null },
          req.id,
        );
        return r.ok
          ? reply.code(201).send({ token: r.value.token, ...r.value.record })
          : sendProblem(reply, r.error);
      },
    );

    app.delete(
      '/api/tokens/:id',
      {
        config: admin,
        schema: {
          tags: ['users'],
          params: idParam,
          querystring: z.strictObject({ reason: z.string().max(1000).optional() }),
        },
      },
      async (req, reply) => {
        const r = await auth.revokeApiToken(
          principalOf(req),
          req.params.id,
          req.query.reason ?? null,
          req.id,
        );
        return r.ok ? r.value : sendProblem(reply, r.error);
      },
    );
  };
}

import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { AuditTrail } from '../../../app/ports.ts';

const AUDITORS = ['admin', 'quality', 'supervisor'] as const;

export function auditRoutes(audit: AuditTrail) {
  return async function (base: FastifyInstance) {
    const app = base.withTypeProvider<ZodTypeProvider>();
    app.get(
      '/api/audit',
      {
        config: { allow: AUDITORS },
        schema: {
          tags: ['audit'],
          summary: 'Audit entries, oldest first; page with afterId',
          querystring: z.strictObject({
            entityType: z.string().max(100).optional(),
            entityId: z.string().max(200).optional(),
            user: z.string().max(64).optional(),
            from: z.iso.datetime({ offset: true }).optional(),
            to: z.iso.datetime({ offset: true }).optional(),
            afterId: z.string().regex(/^\d+$/, 'must be a whole number').transform(Number).optional(),
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
        const q = req.query;
        const entries = await audit.list({
          ...(q.entityType ? { entityType: q.entityType } : {}),
          ...(q.entityId ? { entityId: q.entityId } : {}),
          ...(q.user ? { actor: q.user } : {}),
          ...(q.from ? { from: new Date(q.from) } : {}),
          ...(q.to ? { to: new Date(q.to) } : {}),
          ...(q.afterId !== undefined ? { afterId: q.afterId } : {}),
          limit: q.limit ?? 100,
        });
        return { entries, nextAfterId: entries.at(-1)?.id ?? null };
      },
    );
    app.get('/api/audit/verify', { config: { allow: AUDITORS }, schema: { tags: ['audit'] } }, () =>
      audit.verify(),
    );
  };
}

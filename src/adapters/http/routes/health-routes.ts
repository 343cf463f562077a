import type { FastifyInstance } from 'fastify';

export interface Readiness {
  readonly ready: boolean;
  readonly checks: Record<string, { readonly ok: boolean; readonly detail?: string }>;
}

export function healthRoutes(readiness: () => Promise<Readiness>) {
  return async function (app: FastifyInstance) {
    app.get('/health', { config: { allow: 'public' }, schema: { tags: ['health'] } }, () => ({
      status: 'ok',
    }));
    app.get('/ready', { config: { allow: 'public' }, schema: { tags: ['health'] } }, async (_req, reply) => {
      const r = await readiness();
      return reply
        .code(r.ready ? 200 : 503)
        .send({ status: r.ready ? 'ready' : 'not-ready', checks: r.checks });
    });
  };
}

import type { FastifyInstance, FastifyReply } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { AuthService } from '../../../app/auth/auth-service.ts';
import { principalOf, SESSION_COOKIE } from '../auth-guard.ts';
import { sendProblem } from '../problem.ts';

const credentials = z.strictObject({
  username: z.string().min(1).max(64),
  password: z.string().min(1).max(1024),
});

export function authRoutes(auth: AuthService, cookieSecure: boolean) {
  const setCookie = (reply: FastifyReply, token: string, expires: Date) =>
    reply.setCookie(SESSION_COOKIE, token, {
      path: '/',
      httpOnly: true,
      sameSite: 'strict',
      secure: cookieSecure,
      expires,
    });

  return async function (base: FastifyInstance) {
    const app = base.withTypeProvider<ZodTypeProvider>();
    app.post(
      '/api/auth/login',
      {
        config: {
          allow: 'public',
          // Per client address and username, after the body is parsed: one noisy user at a shared
          // shop-floor terminal does not lock out the whole line. Account lockout covers guessing.
          rateLimit: {
            max: 10,
            timeWindow: '1 minute',
            hook: 'preHandler',
            keyGenerator: (req) => {
              const name = (req.body as { username?: unknown } | undefined)?.username;
              return `${req.ip}|${typeof name === 'string' ? name.toLowerCase() : ''}`;
            },
          },
        },
        schema: { tags: ['auth'], body: credentials, summary: 'Log in; sets the session cookie' },
      },
      async (req, reply) => {
        const r = await auth.login({
          username: req.body.username,
          password: req.body.password,
          clientIp: req.ip,
          userAgent: req.headers['user-agent'] ?? null,
        });
        if (!r.ok) return sendProblem(reply, r.error);
        setCookie(reply, r.value.sessionToken, r.value.expiresAt);
        return { user: r.value.user, expiresAt: r.value.expiresAt.toISOString() };
      },
    );

    app.post(
      '/api/auth/logout',
      { config: { allow: 'authenticated', allowDuringPasswordChange: true }, schema: { tags: ['auth'] } },
      async (req, reply) => {
        await auth.logout(principalOf(req));
        reply.clearCookie(SESSION_COOKIE, { path: '/' });
        return reply.code(204).send();
      },
    );

    app.get(
      '/api/auth/me',
      { config: { allow: 'authenticated', allowDuringPasswordChange: true }, schema: { tags: ['auth'] } },
      async (req, reply) => {
        const p = principalOf(req);
        const r = await auth.getUser(p.userId);
        if (!r.ok) return sendProblem(reply, r.error);
        return { ...r.value, via: p.via };
      },
    );

    app.post(
      '/api/auth/password',
      {
        config: {
          allow: 'authenticated',
          allowDuringPasswordChange: true,
          rateLimit: { max: 10, timeWindow: '1 minute' },
        },
        schema: {
          tags: ['auth'],
          body: z.strictObject({
            currentPassword: z.string().min(1).max(1024),
            newPassword: z.string().min(1).max(1024),
          }),
        },
      },
      async (req, reply) => {
        const r = await auth.changePassword(principalOf(req), req.body, req.id);
        if (!r.ok) return sendProblem(reply, r.error);
        if (r.value.sessionToken) {
          setCookie(reply, r.value.sessionToken, new Date(Date.now() + 12 * 3_600_000));
        }
        return reply.code(204).send();
      },
    );
  };
}

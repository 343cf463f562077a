import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { AuthService, Principal } from '../../app/auth/auth-service.ts';
import type { Role } from '../../domain/auth/roles.ts';
import { sendProblem } from './problem.ts';

export const SESSION_COOKIE = 'loom_session';

/**
 * Who may call a route. Every route must declare it (checked at registration): deny by default.
 * `public` — anyone; `authenticated` — any logged-in user or token; a role list — any of them.
 */
export type Allow = 'public' | 'authenticated' | readonly Role[];

declare module 'fastify' {
  interface FastifyContextConfig {
    allow?: Allow;
    /** Reachable while the user must still change their password. */
    allowDuringPasswordChange?: boolean;
  }
  interface FastifyRequest {
    principal: Principal | null;
  }
}

export function registerAuthGuard(app: FastifyInstance, auth: AuthService): void {
  app.decorateRequest('principal', null);

  app.addHook('onRoute', (route) => {
    const allow = route.config?.allow;
    if (allow === undefined && !route.url.startsWith('/api/docs')) {
      throw new Error(
        `route ${String(route.method)} ${route.url} declares no access rule (config.allow): deny by default`,
      );
    }
  });

  app.addHook('onRequest', async (req: FastifyRequest, reply: FastifyReply) => {
    const allow: Allow = req.routeOptions.config.allow ?? (req.url.startsWith('/api/docs') ? 'public' : []);
    if (allow === 'public') return;

    const header = req.headers.authorization;
    let principal: Principal | null = null;
    if (header !== undefined) {
      const m = /^Bearer\s+(\S+)$/i.exec(header);
      if (!m) {
        return sendProblem(reply, {
          code: 'LOOM_AUTH_UNAUTHENTICATED',
          message: 'The Authorization header must be "Bearer <token>".',
        });
      }
      principal = await auth.authenticateToken(m[1]!);
    } else {
      const cookie = req.cookies[SESSION_COOKIE];
      if (cookie) principal = await auth.authenticateSession(cookie);
    }
    if (!principal) {
      return sendProblem(reply, {
        code: 'LOOM_AUTH_UNAUTHENTICATED',
        message:
          'Log in (POST /api/auth/login) or send a valid API token; the session or token is missing, expired or revoked.',
      });
    }
    req.principal = principal;
    if (principal.mustChangePassword && !req.routeOptions.config.allowDuringPasswordChange) {
      return sendProblem(reply, {
        code: 'LOOM_AUTH_PASSWORD_CHANGE_REQUIRED',
        message: 'Change your password first: POST /api/auth/password.',
      });
    }
    if (allow !== 'authenticated' && !principal.roles.some((r) => allow.includes(r))) {
      return sendProblem(reply, {
        code: 'LOOM_AUTH_FORBIDDEN',
        message: `This needs one of the roles ${allow.join(', ')}; you have ${principal.roles.join(', ')}.`,
      });
    }
  });
}

/** The authenticated principal of a guarded route (the guard guarantees it). */
export function principalOf(req: FastifyRequest): Principal {
  if (!req.principal) throw new Error('principalOf() used on a public route');
  return req.principal;
}

import cookie from '@fastify/cookie';
import rateLimit from '@fastify/rate-limit';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { randomUUID } from 'node:crypto';
import Fastify, {
  LogController,
  type FastifyBaseLogger,
  type FastifyError,
  type FastifyInstance,
  type FastifyRequest,
} from 'fastify';
import {
  hasZodFastifySchemaValidationErrors,
  jsonSchemaTransform,
  serializerCompiler,
  validatorCompiler,
  type ZodTypeProvider,
} from 'fastify-type-provider-zod';
import type { AuthService } from '../../app/auth/auth-service.ts';
import type { AuditTrail } from '../../app/ports.ts';
import type { FieldIssue } from '../../domain/shared/result.ts';
import { registerAuthGuard } from './auth-guard.ts';
import { sendProblem } from './problem.ts';
import { auditRoutes } from './routes/audit-routes.ts';
import { authRoutes } from './routes/auth-routes.ts';
import { healthRoutes, type Readiness } from './routes/health-routes.ts';
import { userRoutes } from './routes/user-routes.ts';

export interface HttpDeps {
  readonly logger: FastifyBaseLogger;
  readonly auth: AuthService;
  readonly audit: AuditTrail;
  readonly readiness: () => Promise<Readiness>;
  readonly bodyLimitBytes: number;
  readonly cookieSecure: boolean;
  /** Feature route plugins added by the composition root (plant model, and later execution, ERP…). */
  readonly features?: readonly ((app: FastifyInstance) => Promise<void>)[];
}

export type LoomApp = FastifyInstance;

/** fastify's validation context and the zod path → `body.routing.operations[2].workCenter`. */
function issuesOf(err: FastifyError): FieldIssue[] {
  if (!hasZodFastifySchemaValidationErrors(err)) return [];
  const where = (err as FastifyError & { validationContext?: string }).validationContext ?? 'body';
  return err.validation.map((v) => {
    // fastify-type-provider-zod reports the zod issue's path as a JSON pointer (`/routing/operations/2`);
    // older versions passed the zod issue itself in `params.issue`.
    const params = v.params as {
      issue?: { path?: PropertyKey[]; code?: string; keys?: string[] };
      keys?: string[];
    };
    const pathParts: PropertyKey[] =
      params.issue?.path ??
      (v.instancePath ?? '')
        .split('/')
        .filter((x) => x !== '')
        .map((x) => x.replace(/~1/g, '/').replace(/~0/g, '~'))
        .map((x) => (/^\d+$/.test(x) ? Number(x) : x));
    let p = where;
    for (const part of pathParts) p += typeof part === 'number' ? `[${part}]` : `.${String(part)}`;
    const unknownKeys =
      params.issue?.code === 'unrecognized_keys'
        ? params.issue.keys
        : v.keyword === 'unrecognized_keys'
          ? params.keys
          : undefined;
    if (unknownKeys) {
      return {
        path: p,
        message: `unknown field(s) ${unknownKeys.map((k) => `'${k}'`).join(', ')}; remove them`,
      };
    }
    return { path: p, message: v.message ?? 'is invalid' };
  });
}

/** Fastify's request logging with the "incoming request" line at debug instead of info. */
class QuietArrivals extends LogController {
  override incomingRequest(request: FastifyRequest): void {
    request.log.debug({ req: request }, 'incoming request');
  }
}

export async function buildHttpServer(deps: HttpDeps): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: deps.logger,
    // One line per request at info, written when it ends (with status and time): the arrival line
    // goes to debug. Two lines per request were a tenth of an operation completion's CPU.
    logController: new QuietArrivals(),
    bodyLimit: deps.bodyLimitBytes,
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && /^[\w.-]{1,64}$/.test(given) ? given : randomUUID();
    },
    requestIdHeader: false,
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false } },
  }).withTypeProvider<ZodTypeProvider>();

  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  app.addHook('onSend', async (req, reply) => {
    reply.header('x-request-id', req.id);
    reply.header('x-content-type-options', 'nosniff');
    reply.header('referrer-policy', 'no-referrer');
  });

  // Plant models and B2MML arrive as text; they are parsed by the feature that owns them.
  app.addContentTypeParser(
    ['application/yaml', 'application/x-yaml', 'text/yaml', 'application/xml', 'text/xml', 'text/csv'],
    { parseAs: 'string' },
    (_req, body, done) => done(null, body),
  );

  app.setErrorHandler((err: FastifyError, req, reply) => {
    if (err.validation) {
      const issues = issuesOf(err);
      return sendProblem(reply, {
        code: 'LOOM_VALIDATION_FAILED',
        message: issues.length
          ? `Invalid request: ${issues.map((i) => `${i.path} ${i.message}`).join('; ')}`
          : `Invalid request: ${err.message}`,
        issues: issues.length ? issues : [{ path: err.validationContext ?? 'body', message: err.message }],
      });
    }
    if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      return sendProblem(reply, {
        code: 'LOOM_HTTP_BODY_TOO_LARGE',
        message: `The request body is larger than the limit of ${deps.bodyLimitBytes} bytes.`,
      });
    }
    if (err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
      return sendProblem(reply, {
        code: 'LOOM_HTTP_UNSUPPORTED_MEDIA_TYPE',
        message: `Unsupported content-type '${req.headers['content-type'] ?? ''}'; send application/json.`,
      });
    }
    if (err.statusCode === 400 && (err instanceof SyntaxError || err.code?.startsWith('FST_ERR_CTP'))) {
      return sendProblem(reply, {
        code: 'LOOM_HTTP_MALFORMED_BODY',
        message: `The request body is not valid: ${err.message}`,
        issues: [{ path: 'body', message: err.message }],
      });
    }
    if (err.statusCode === 429) {
      return sendProblem(reply, { code: 'LOOM_HTTP_RATE_LIMITED', message: err.message });
    }
    if (err.statusCode && err.statusCode >= 400 && err.statusCode < 500) {
      return sendProblem(reply, { code: 'LOOM_VALIDATION_FAILED', message: err.message });
    }
    req.log.error({ err }, 'unhandled error');
    return sendProblem(reply, {
      code: 'LOOM_INTERNAL',
      message: `An internal error occurred; quote request id ${req.id} when reporting it.`,
    });
  });
  app.setNotFoundHandler((req, reply) =>
    sendProblem(reply, {
      code: 'LOOM_HTTP_NOT_FOUND',
      message: `No route ${req.method} ${req.url.split('?')[0]}.`,
    }),
  );

  await app.register(cookie);
  await app.register(rateLimit, {
    global: false,
    errorResponseBuilder: (_req, ctx) => ({
      statusCode: 429,
      code: 'LOOM_HTTP_RATE_LIMITED',
      message: `Too many requests; retry in ${Math.ceil(ctx.ttl / 1000)} s.`,
    }),
  });
  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: { title: 'Loom MES API', version: '0.1.0', description: 'Manufacturing Execution System' },
      components: {
        securitySchemes: {
          session: { type: 'apiKey', in: 'cookie', name: 'loom_session' },
          token: { type: 'http', scheme: 'bearer' },
        },
      },
      security: [{ session: [] }, { token: [] }],
    },
    transform: jsonSchemaTransform,
  });
  await app.register(swaggerUi, { routePrefix: '/api/docs' });

  registerAuthGuard(app, deps.auth);
  await app.register(healthRoutes(deps.readiness));
  await app.register(authRoutes(deps.auth, deps.cookieSecure));
  await app.register(userRoutes(deps.auth));
  await app.register(auditRoutes(deps.audit));
  for (const feature of deps.features ?? []) await app.register(feature);

  app.get('/api/openapi.json', { config: { allow: 'public' }, schema: { hide: true } }, () => app.swagger());
  return app;
}

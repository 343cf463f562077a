import type { FastifyReply, FastifyRequest } from 'fastify';
import { canonicalJson, contentHash } from '../../app/auth/tokens.ts';
import type { IdempotencyRequest, IdempotentOutcome } from '../../app/shared/idempotent.ts';
import { principalOf } from './auth-guard.ts';
import { sendProblem } from './problem.ts';

const KEY = /^[\x21-\x7e]{1,200}$/;

/**
 * The `Idempotency-Key` of a state-changing request (IETF draft-ietf-httpapi-idempotency-key),
 * scoped to the caller and bound to the method, route, path parameters and body. `null` without
 * a header: the request is then simply not protected against a retry.
 */
export function idempotencyOf(req: FastifyRequest): IdempotencyRequest | null | 'invalid' {
  const raw = req.headers['idempotency-key'];
  if (raw === undefined) return null;
  if (typeof raw !== 'string' || !KEY.test(raw)) return 'invalid';
  return {
    scope: `user:${principalOf(req).userId}`,
    key: raw,
    requestHash: contentHash(
      canonicalJson([req.method, req.routeOptions.url, req.params, withoutSecrets(req.body ?? null)]),
    ),
  };
}

/**
 * The body as hashed for idempotency, without passwords (signatures, co-signs, overrides): the
 * stored SHA-256 must not become a fast oracle for a password that is only stored as argon2id.
 * A retry differing only in the password is the same request.
 */
export function withoutSecrets(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutSecrets);
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(
    Object.entries(value as Record<string, unknown>)
      .filter(([k]) => !/password/i.test(k))
      .map(([k, v]) => [k, withoutSecrets(v)]),
  );
}

export async function sendOutcome<T>(
  reply: FastifyReply,
  outcome: IdempotentOutcome<T>,
  status: number,
  present: (value: T) => unknown = (v) => v,
): Promise<FastifyReply> {
  switch (outcome.kind) {
    case 'done':
      return reply.code(status).send(present(outcome.value));
    case 'replayed':
      return reply
        .code(outcome.status)
        .header('idempotent-replayed', 'true')
        .send(present(outcome.response as T));
    case 'failed':
      return sendProblem(reply, outcome.error);
  }
}

export function invalidKey(reply: FastifyReply): FastifyReply {
  return sendProblem(reply, {
    code: 'LOOM_VALIDATION_FAILED',
    message: 'Idempotency-Key must be 1–200 visible ASCII characters (a UUID is a good choice).',
    issues: [{ path: 'headers.idempotency-key', message: 'must be 1–200 visible ASCII characters' }],
  });
}

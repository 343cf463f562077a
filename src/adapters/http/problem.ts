import type { FastifyReply, FastifyRequest } from 'fastify';
import type { DomainError, FieldIssue } from '../../domain/shared/result.ts';

/**
 * The one table from Loom error codes to HTTP statuses (STYLE.md: no HTTP status below adapters/).
 * Every code is documented in docs/errors.md. A code missing here is a 500 — add it.
 */
const STATUS: Record<string, number> = {
  LOOM_VALIDATION_FAILED: 400,
  LOOM_HTTP_MALFORMED_BODY: 400,
  LOOM_HTTP_UNSUPPORTED_MEDIA_TYPE: 415,
  LOOM_HTTP_BODY_TOO_LARGE: 413,
  LOOM_HTTP_NOT_FOUND: 404,
  LOOM_HTTP_RATE_LIMITED: 429,
  LOOM_AUTH_UNAUTHENTICATED: 401,
  LOOM_AUTH_INVALID_CREDENTIALS: 401,
  LOOM_AUTH_LOCKED: 423,
  LOOM_AUTH_FORBIDDEN: 403,
  LOOM_AUTH_PASSWORD_CHANGE_REQUIRED: 403,
  LOOM_SIGNATURE_INVALID: 401,
  LOOM_SIGNATURE_REQUIRES_PERSON: 403,
  LOOM_USER_EXISTS: 409,
  LOOM_USER_NOT_FOUND: 404,
  LOOM_USER_SELF_LOCKOUT: 409,
  LOOM_TOKEN_NOT_FOUND: 404,
  LOOM_PLANT_INVALID: 422,
  LOOM_PLANT_NOT_FOUND: 404,
  LOOM_PLANT_EXISTS: 409,
  LOOM_PLANT_IN_USE: 409,
  LOOM_PLANT_FILE_MALFORMED: 400,
  LOOM_IDEMPOTENCY_KEY_REUSED: 422,
  LOOM_ORDER_NOT_FOUND: 404,
  LOOM_ORDER_UNKNOWN_PRODUCT: 422,
  LOOM_ORDER_ALREADY_STARTED: 409,
  LOOM_ORDER_ILLEGAL_TRANSITION: 409,
  LOOM_OPERATION_NOT_FOUND: 404,
  LOOM_OPERATION_ILLEGAL_TRANSITION: 409,
  LOOM_START_REFUSED: 409,
  LOOM_OPERATION_OVERREPORTED: 422,
  LOOM_START_WRONG_WORK_UNIT: 422,
  LOOM_START_NO_PERSON: 409,
  LOOM_LOT_NOT_FOUND: 404,
  LOOM_LOT_EXISTS: 409,
  LOOM_LOT_INSUFFICIENT: 409,
  LOOM_LOT_NOT_RELEASED: 409,
  LOOM_LOT_CONSUMED: 409,
  LOOM_LOT_TRANSITION_REFUSED: 409,
  LOOM_LOT_CHANGED: 409,
  LOOM_LOT_SERIAL_INDIVISIBLE: 409,
  LOOM_LOT_STATUS_MISMATCH: 409,
  LOOM_LOT_MATERIAL_MISMATCH: 422,
  LOOM_LOT_UNIT_MISMATCH: 422,
  LOOM_MATERIAL_NOT_IN_BOM: 422,
  LOOM_OPERATION_NOT_RUNNING: 409,
  LOOM_QUALITY_OPERATION_NOT_FOUND: 404,
  LOOM_QUALITY_OPERATION_NOT_ACTIVE: 409,
  LOOM_QUALITY_UNKNOWN_CHARACTERISTIC: 422,
  LOOM_NCR_NOT_FOUND: 404,
  LOOM_NCR_ILLEGAL_TRANSITION: 409,
  LOOM_NCR_UNKNOWN_CAUSE: 422,
  LOOM_NCR_SAME_PERSON: 409,
  LOOM_NCR_SIGNATURE_REQUIRED: 422,
  LOOM_NCR_NO_LOT: 422,
  LOOM_NCR_REWORK_LIMIT: 409,
  LOOM_ERP_ORDERS_REJECTED: 422,
  LOOM_ERP_LOTS_REJECTED: 422,
  LOOM_ORDER_UNIT_MISMATCH: 422,
  LOOM_ERP_DOCUMENT_ID_REQUIRED: 400,
  LOOM_ERP_MESSAGE_ID_REUSED: 422,
  LOOM_ERP_MAPPING_NOT_FOUND: 404,
  LOOM_ERP_MAPPING_INVALID: 500,
  LOOM_ERP_MAPPING_FAILED: 422,
  LOOM_B2MML_DOCTYPE_REFUSED: 400,
  LOOM_B2MML_MALFORMED: 400,
  LOOM_B2MML_UNSUPPORTED_MESSAGE: 422,
  LOOM_B2MML_SCHEMA_INVALID: 422,
  LOOM_B2MML_BODID_REQUIRED: 422,
  LOOM_B2MML_CONTENT_INVALID: 422,
  LOOM_B2MML_UNSUPPORTED_EVENT: 422,
  LOOM_B2MML_INVALID_DOCUMENT: 500,
  LOOM_ERP_OUTBOX_NOT_FOUND: 404,
  LOOM_ERP_OUTBOX_NOT_DEAD: 409,
  LOOM_SIGNAL_NOT_FOUND: 404,
  LOOM_SIGNAL_RANGE_INVALID: 400,
  LOOM_SPARKPLUG_BROKER_DISCONNECTED: 503,
  LOOM_SPARKPLUG_INVALID_TARGET: 400,
  LOOM_SPARKPLUG_NODE_OFFLINE: 409,
  LOOM_SPARKPLUG_NODE_STALE: 409,
  LOOM_SPARKPLUG_DEVICE_OFFLINE: 409,
  LOOM_SPARKPLUG_UNKNOWN_METRIC: 422,
  LOOM_SPARKPLUG_TYPE_MISMATCH: 422,
  LOOM_INTERNAL: 500,
};

export function statusOf(code: string): number {
  return STATUS[code] ?? 500;
}

/** RFC 9457 problem details. `issues` names every bad field with its path. */
export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: string;
  instance?: string;
  requestId?: string;
  issues?: readonly FieldIssue[];
  [extra: string]: unknown;
}

export function problemOf(error: DomainError, req?: FastifyRequest): Problem {
  const status = statusOf(error.code);
  return {
    // Details first: the fixed members below must win over a detail that happens to share a name.
    ...(error.details ?? {}),
    type: `https://loom-mes.org/errors#${error.code}`,
    title: error.code,
    status,
    detail: error.message,
    code: error.code,
    ...(req ? { instance: req.url, requestId: req.id } : {}),
    ...(error.issues ? { issues: error.issues } : {}),
  };
}

export function sendProblem(reply: FastifyReply, error: DomainError): FastifyReply {
  const p = problemOf(error, reply.request);
  return reply.code(p.status).type('application/problem+json').send(p);
}

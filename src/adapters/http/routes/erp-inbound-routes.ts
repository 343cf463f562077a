import { randomUUID } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { contentHash } from '../../../app/auth/tokens.ts';
import { acceptOrders, MAX_ORDERS_PER_REQUEST } from '../../../app/erp/accept-orders.ts';
import type { ErpDeps } from '../../../app/erp/erp-ports.ts';
import { applyInboundMessage, type InboundOutcome } from '../../../app/erp/inbound-message.ts';
import { receiveLots } from '../../../app/erp/receive-lots.ts';
import { syncMaterialDefinitions } from '../../../app/erp/sync-material-definitions.ts';
import type { IdempotencyStore } from '../../../app/ports.ts';
import { runIdempotent } from '../../../app/shared/idempotent.ts';
import type { Role } from '../../../domain/auth/roles.ts';
import type { Clock } from '../../../domain/shared/clock.ts';
import { issuesFromZod } from '../../../domain/shared/field-issues.ts';
import { ok, type DomainError } from '../../../domain/shared/result.ts';
import type { ApplicationArea } from '../../erp/b2mml-inbound.ts';
import { batchView, intakeB2mml } from '../../erp/b2mml-intake.ts';
import { confirmBod } from '../../erp/b2mml-reply.ts';
import type { JsonataMappings } from '../../erp/jsonata-mapping.ts';
import type { XsdValidator } from '../../erp/xsd-validator.ts';
import { principalOf } from '../auth-guard.ts';
import { idempotencyOf, invalidKey, sendOutcome } from '../idempotency.ts';
import { sendProblem, statusOf } from '../problem.ts';

const ERP: Role[] = ['integration', 'admin'];
const tags = ['erp'];

/** B2MML schedules can be large; still far below what would hurt (the 60 MB body is refused). */
export const B2MML_BODY_LIMIT_BYTES = 16 * 1024 * 1024;

export interface ErpInboundRouteDeps {
  readonly erp: ErpDeps;
  readonly idempotency: IdempotencyStore;
  readonly validator: XsdValidator;
  readonly mappings: JsonataMappings;
  readonly clock: Clock;
}

const DocumentId = z.string().trim().min(1).max(150);
const items = z.array(z.unknown()).min(1).max(MAX_ORDERS_PER_REQUEST);

export function erpInboundRoutes(deps: ErpInboundRouteDeps) {
  const { erp } = deps;
  const uow = erp.execution.uow;
  const masterData = { plant: erp.plant, audit: erp.execution.audit };
  const ctx = (req: FastifyRequest) => ({ requestId: req.id });

  /** The ERP's document id: the body's `documentId`, else the Idempotency-Key header. */
  function documentIdOf(req: FastifyRequest, given: string | undefined): { id: string } | null | 'invalid' {
    if (given !== undefined) return { id: given };
    const key = idempotencyOf(req);
    if (key === 'invalid') return 'invalid';
    return key ? { id: key.key } : null;
  }

  function sendInbound<T>(
    reply: FastifyReply,
    outcome: InboundOutcome<T>,
    status: number,
    present: (v: T) => unknown = (v) => v,
  ): FastifyReply {
    switch (outcome.kind) {
      case 'done':
        return reply.code(status).send(present(outcome.value));
      case 'replayed':
        return reply.code(200).header('idempotent-replayed', 'true').send(present(outcome.value));
      case 'failed':
        return sendProblem(reply, outcome.error);
    }
  }

  const documentIdRequired = (reply: FastifyReply) =>
    sendProblem(reply, {
      code: 'LOOM_ERP_DOCUMENT_ID_REQUIRED',
      message:
        'Send the ERP document id as "documentId" or as the Idempotency-Key header: Loom applies each document once by it.',
      issues: [{ path: 'body.documentId', message: 'is required (or the Idempotency-Key header)' }],
    });

  /** Refusal of a B2MML message: ConfirmBOD (Rejected) unless the caller asked for JSON. */
  function refuseB2mml(
    req: FastifyRequest,
    reply: FastifyReply,
    error: DomainError,
    area: ApplicationArea | null,
  ) {
    if (/json/i.test(req.headers.accept ?? '')) return sendProblem(reply, error);
    const notes = (error.issues ?? []).map((i) => `${i.path}: ${i.message}`);
    return reply
      .code(statusOf(error.code))
      .type('application/xml; charset=utf-8')
      .header('loom-error-code', error.code)
      .send(
        confirmBod(
          area,
          { accepted: false, code: error.code, description: error.message, notes },
          { bodId: randomUUID(), at: deps.clock.now() },
        ),
      );
  }

  return async function (base: FastifyInstance) {
    const app = base.withTypeProvider<ZodTypeProvider>();

    app.post(
      '/api/erp/orders',
      {
        config: { allow: ERP },
        schema: {
          tags,
          summary:
            'Orders from the ERP: one order, or { orders: [...] } (up to 1000), all or nothing; idempotent on externalId',
          body: z.record(z.string(), z.unknown()),
        },
      },
      async (req, reply) => {
        const key = idempotencyOf(req);
        if (key === 'invalid') return invalidKey(reply);
        const body = req.body;
        const batch = Object.hasOwn(body, 'orders');
        if (batch) {
          const shape = z.strictObject({ orders: items }).safeParse(body);
          if (!shape.success) {
            const issues = issuesFromZod(shape.error, 'body', 'body');
            return sendProblem(reply, {
              code: 'LOOM_VALIDATION_FAILED',
              message: `Invalid request: ${issues.map((i) => `${i.path} ${i.message}`).join('; ')}`,
              issues,
            });
          }
        }
        const list = batch ? (body.orders as unknown[]) : [body];
        const outcome = await runIdempotent(uow, deps.idempotency, key, 201, (tx) =>
          acceptOrders(erp.execution, tx, principalOf(req), list, ctx(req), (i) =>
            batch ? `orders[${i}]` : '',
          ),
        );
        const status = outcome.kind === 'done' && outcome.value.created === 0 ? 200 : 201;
        return sendOutcome(reply, outcome, status, (v) => {
          if (batch) return batchView(v);
          const { index: _index, ...single } = v.orders[0]!;
          return single;
        });
      },
    );

    app.post(
      '/api/erp/orders/mapped/:mapping',
      {
        config: { allow: ERP },
        schema: {
          tags,
          summary:
            "Orders in an ERP's own JSON shape, turned into Loom orders by <erpMappingsDir>/<mapping>.jsonata",
          params: z.strictObject({ mapping: z.string().min(1).max(64) }),
          body: z.union([
            z.record(z.string(), z.unknown()),
            z.array(z.unknown()).max(MAX_ORDERS_PER_REQUEST),
          ]),
        },
      },
      async (req, reply) => {
        const key = idempotencyOf(req);
        if (key === 'invalid') return invalidKey(reply);
        const mapped = await deps.mappings.transform(req.params.mapping, req.body);
        if (!mapped.ok) return sendProblem(reply, mapped.error);
        if (mapped.value.length === 0 || mapped.value.length > MAX_ORDERS_PER_REQUEST) {
          return sendProblem(reply, {
            code: 'LOOM_ERP_MAPPING_FAILED',
            message: `ERP mapping '${req.params.mapping}' gave ${mapped.value.length} orders; 1 to ${MAX_ORDERS_PER_REQUEST} are accepted per request.`,
          });
        }
        const outcome = await runIdempotent(uow, deps.idempotency, key, 201, (tx) =>
          acceptOrders(erp.execution, tx, principalOf(req), mapped.value, ctx(req), (i) => `orders[${i}]`),
        );
        const status = outcome.kind === 'done' && outcome.value.created === 0 ? 200 : 201;
        return sendOutcome(reply, outcome, status, batchView);
      },
    );

    app.post(
      '/api/erp/material-definitions',
      {
        config: { allow: ERP },
        schema: {
          tags,
          summary: 'Material definitions from the ERP (create or replace), applied once per ERP document id',
          body: z.strictObject({ documentId: DocumentId.optional(), materialDefinitions: items }),
        },
      },
      async (req, reply) => {
        const document = documentIdOf(req, req.body.documentId);
        if (document === 'invalid') return invalidKey(reply);
        if (document === null) return documentIdRequired(reply);
        const documentId = document.id;
        const definitions = req.body.materialDefinitions;
        const outcome = await applyInboundMessage(
          uow,
          erp.inbound,
          {
            messageId: `material-definitions:${documentId}`,
            source: 'rest',
            verb: 'SyncMaterialDefinition',
            requestHash: contentHash(definitions),
          },
          async (tx) => {
            const r = await syncMaterialDefinitions(
              masterData,
              tx,
              principalOf(req),
              definitions,
              ctx(req),
              (i) => `materialDefinitions[${i}]`,
            );
            return r.ok ? ok({ documentId, materialDefinitions: r.value }) : r;
          },
        );
        return sendInbound(reply, outcome, 200);
      },
    );

    app.post(
      '/api/erp/lot-receipts',
      {
        config: { allow: ERP },
        schema: {
          tags,
          summary: 'Goods receipt from the ERP: lots received at once, applied once per ERP document id',
          body: z.strictObject({ documentId: DocumentId.optional(), lots: items }),
        },
      },
      async (req, reply) => {
        const document = documentIdOf(req, req.body.documentId);
        if (document === 'invalid') return invalidKey(reply);
        if (document === null) return documentIdRequired(reply);
        const documentId = document.id;
        const lots = req.body.lots;
        const outcome = await applyInboundMessage(
          uow,
          erp.inbound,
          {
            messageId: `lot-receipts:${documentId}`,
            source: 'rest',
            verb: 'ReceiveMaterialLot',
            requestHash: contentHash(lots),
          },
          async (tx) => {
            const r = await receiveLots(
              erp.materials,
              tx,
              principalOf(req),
              lots,
              ctx(req),
              (i) => `lots[${i}]`,
            );
            return r.ok ? ok({ documentId, lots: r.value }) : r;
          },
        );
        return sendInbound(reply, outcome, 201);
      },
    );

    app.post(
      '/api/erp/b2mml',
      {
        config: { allow: ERP },
        bodyLimit: B2MML_BODY_LIMIT_BYTES,
        schema: {
          tags,
          summary:
            'B2MML V0600 from the ERP (ProcessProductionSchedule, SyncMaterialDefinition, SyncMaterialLot); applied once per BODID',
        },
      },
      async (req, reply) => {
        if (typeof req.body !== 'string') {
          return sendProblem(reply, {
            code: 'LOOM_HTTP_UNSUPPORTED_MEDIA_TYPE',
            message: 'Send B2MML as application/xml.',
          });
        }
        const outcome = await intakeB2mml(deps, req.body, principalOf(req), ctx(req));
        if (!outcome.ok) return refuseB2mml(req, reply, outcome.error, outcome.area);
        if (outcome.replayed) reply.header('idempotent-replayed', 'true');
        return reply.code(200).type('application/xml; charset=utf-8').send(outcome.reply);
      },
    );
  };
}

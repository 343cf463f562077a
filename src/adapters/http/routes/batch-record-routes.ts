import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { batchRecord, type BatchRecordDeps } from '../../../app/execution/batch-record.ts';
import type { Role } from '../../../domain/auth/roles.ts';
import { principalOf } from '../auth-guard.ts';
import { renderBatchRecordHtml } from '../batch-record-html.ts';
import { sendProblem } from '../problem.ts';

/** Who reviews and releases records; operators see their own work through dispatch, not records. */
const REVIEWERS: readonly Role[] = ['supervisor', 'quality', 'engineer', 'admin'];
const orderParam = z.strictObject({ id: z.string().min(1).max(100) });

/**
 * A printed record must not be able to run anything even if a value escaped escaping: no script,
 * no external fetch, only the page's own inline style.
 */
const HTML_CSP = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'";

/**
 * The electronic batch / device history record of a production order: JSON at
 * `/api/orders/:id/record`, the printable page at `/api/orders/:id/record.html`. Two paths rather
 * than content negotiation, so a browser link, a bookmark and `curl` each get what they name.
 */
export function batchRecordRoutes(deps: BatchRecordDeps) {
  return async function (base: FastifyInstance) {
    const app = base.withTypeProvider<ZodTypeProvider>();
    const tags = ['orders'];

    app.get(
      '/api/orders/:id/record',
      {
        config: { allow: REVIEWERS },
        schema: {
          tags,
          summary:
            'Electronic batch record of an order: operations with timeline, parameters, lots, quality results, NCRs, signatures, audit trail; recordHash and audit chain status',
          params: orderParam,
        },
      },
      async (req, reply) => {
        const r = await batchRecord(deps, req.params.id, principalOf(req).username);
        return r.ok ? r.value : sendProblem(reply, r.error);
      },
    );

    app.get(
      '/api/orders/:id/record.html',
      {
        config: { allow: REVIEWERS },
        schema: {
          tags,
          summary: 'The batch record as a printable, self-contained HTML page (A4, one operation per page)',
          params: orderParam,
        },
      },
      async (req, reply) => {
        const r = await batchRecord(deps, req.params.id, principalOf(req).username);
        if (!r.ok) return sendProblem(reply, r.error);
        return reply
          .type('text/html; charset=utf-8')
          .header('content-security-policy', HTML_CSP)
          .header('cache-control', 'no-store')
          .send(renderBatchRecordHtml(r.value));
      },
    );
  };
}

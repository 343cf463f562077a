import type { OutboundEncoder } from '../../app/erp/outbox-ports.ts';
import { ok } from '../../domain/shared/result.ts';
import { PERFORMANCE_EVENTS, productionPerformanceDocument } from './b2mml-performance.ts';
import type { XsdValidator } from './xsd-validator.ts';

/**
 * The deliverer's B2MML format: `ProcessProductionPerformance` (BODID = the outbox message id),
 * validated against the XSD before it is sent. Events without a performance form (order
 * released, operation started, holds…) have nothing to tell a B2MML ERP: `ok(null)`, settled
 * without a request. A document that does not validate is dead-lettered at once by the deliverer.
 */
export function b2mmlPerformanceEncoder(validator: () => Promise<XsdValidator>): OutboundEncoder {
  const performance: ReadonlySet<string> = new Set(PERFORMANCE_EVENTS);
  return {
    format: 'b2mml',
    async encode(m) {
      if (!performance.has(m.eventType)) return ok(null);
      const doc = await productionPerformanceDocument(
        {
          messageId: m.messageId,
          eventType: m.eventType,
          aggregateId: m.aggregateId,
          payload: m.payload,
          createdAt: m.createdAt,
        },
        await validator(),
      );
      return doc.ok ? ok({ contentType: 'application/xml', body: doc.value }) : doc;
    },
  };
}

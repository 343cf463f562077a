import type { OutboundEncoder } from '../../app/erp/outbox-ports.ts';
import { ok } from '../../domain/shared/result.ts';

/**
 * Loom's JSON message to the ERP: `{messageId, type, aggregateId, createdAt, payload}`, one per
 * outbox event of every type. `messageId` repeats the `Idempotency-Key` header.
 */
export const jsonPerformanceEncoder: OutboundEncoder = {
  format: 'json',
  encode(m) {
    return ok({
      contentType: 'application/json',
      body: JSON.stringify({
        messageId: m.messageId,
        type: m.eventType,
        aggregateId: m.aggregateId,
        createdAt: m.createdAt.toISOString(),
        payload: m.payload,
      }),
    });
  },
};

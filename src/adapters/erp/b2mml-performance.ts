import { fail, ok, type Result } from '../../domain/shared/result.ts';
import { ownApplicationArea } from './b2mml-reply.ts';
import { B2MML_V0600_NS, el, textEl } from './b2mml-xml.ts';
import type { XsdValidator } from './xsd-validator.ts';

/** The schema file declaring `ProcessProductionPerformance` (B2MML V0600). */
export const PERFORMANCE_SCHEMA = 'B2MML-V0600-ProductionPerformance.xsd';

/** The outbox events that carry actuals for the ERP. */
export const PERFORMANCE_EVENTS = [
  'OperationCompleted',
  'MaterialConsumed',
  'MaterialProduced',
  'OrderCompleted',
] as const;
export type PerformanceEventType = (typeof PERFORMANCE_EVENTS)[number];

/** An `outbox_events` row, as the deliverer reads it. */
export interface OutboxEventRecord {
  /** `outbox_events.message_id` (a uuid): becomes the BODID, the ERP's dedupe key. */
  readonly messageId: string;
  readonly eventType: string;
  /** The production order id (`outbox_events.aggregate_id`). */
  readonly aggregateId: string;
  readonly payload: unknown;
  readonly createdAt?: Date;
}

type Json = Record<string, unknown>;
const str = (v: unknown): string | undefined =>
  typeof v === 'string' && v !== '' ? v : typeof v === 'number' ? String(v) : undefined;
const obj = (v: unknown): Json =>
  typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Json) : {};

function quantity(value: string | undefined, unit: string | undefined): string | null {
  if (value === undefined) return null;
  return el('Quantity', null, textEl('QuantityString', value), textEl('UnitOfMeasure', unit));
}

function productionData(id: string, value: string | undefined, unit: string | undefined): string | null {
  if (value === undefined) return null;
  return el(
    'ProductionData',
    null,
    textEl('ID', id),
    el('Value', null, textEl('ValueString', value), textEl('UnitOfMeasure', unit)),
  );
}

const equipmentActual = (id: string | undefined) =>
  id === undefined ? null : el('EquipmentActual', null, textEl('EquipmentID', id));
const personnelActual = (id: string | undefined) =>
  id === undefined ? null : el('PersonnelActual', null, textEl('PersonID', id));

interface Response {
  readonly orderId: string;
  readonly externalId: string | undefined;
  readonly product?: string | undefined;
  readonly endTime?: string | undefined;
  readonly state?: string | undefined;
  readonly segment: string | null;
}

/**
 * Outbox event → B2MML V0600 `ProcessProductionPerformance` (docs/b2mml.md "Actuals out"): one
 * ProductionPerformance with one ProductionResponse for the order (ID = Loom order id,
 * ProductionRequestID = the ERP's order number) and a SegmentResponse per operation reported.
 * Pure: the same event always gives the same document, so a redelivery is byte-identical and
 * carries the same BODID. `externalId` supplies the ERP order number for events whose payload
 * lacks it (material consumption and output).
 */
export function encodeProductionPerformance(
  event: OutboxEventRecord,
  opts: { externalId?: string } = {},
): Result<string> {
  if (!(PERFORMANCE_EVENTS as readonly string[]).includes(event.eventType)) {
    return fail(
      'LOOM_B2MML_UNSUPPORTED_EVENT',
      `Outbox event ${event.eventType} has no B2MML production performance form; only ${PERFORMANCE_EVENTS.join(', ')} do.`,
    );
  }
  if (!/^[0-9a-f-]{36}$/i.test(event.messageId)) {
    return fail('LOOM_B2MML_INVALID_DOCUMENT', `message id '${event.messageId}' is not a uuid.`);
  }
  const p = obj(event.payload);
  const at = str(p.at) ?? event.createdAt?.toISOString() ?? new Date(0).toISOString();
  let response: Response;
  switch (event.eventType as PerformanceEventType) {
    case 'OperationCompleted': {
      const order = str(p.order) ?? event.aggregateId;
      const unit = str(p.unit);
      response = {
        orderId: order,
        externalId: str(p.externalId) ?? opts.externalId,
        segment: el(
          'SegmentResponse',
          null,
          textEl('ID', `${order}/${str(p.operation) ?? ''}`),
          textEl('ProcessSegmentID', str(p.operation)),
          p.isRework === true ? textEl('Description', 'rework') : null,
          textEl('ActualEndTime', at),
          productionData('GoodQuantity', str(p.good), unit),
          productionData('ScrapQuantity', str(p.scrap), unit),
          productionData('ScrapCause', str(p.scrapCause), undefined),
          equipmentActual(str(p.workUnit)),
          el('MaterialProducedActual', null, quantity(str(p.good), unit)),
          textEl('SegmentState', 'Completed'),
        ),
      };
      break;
    }
    case 'MaterialConsumed':
    case 'MaterialProduced': {
      const order = str(p.orderId) ?? event.aggregateId;
      const op = obj(p.operation);
      const consumed = event.eventType === 'MaterialConsumed';
      response = {
        orderId: order,
        externalId: str(p.externalId) ?? opts.externalId,
        segment: el(
          'SegmentResponse',
          null,
          textEl('ID', `${order}/${str(op.operationId) ?? ''}`),
          textEl('ProcessSegmentID', str(op.operationId)),
          textEl('Description', str(op.name)),
          textEl('ActualEndTime', at),
          personnelActual(str(p.person)),
          equipmentActual(str(p.equipment)),
          el(
            consumed ? 'MaterialConsumedActual' : 'MaterialProducedActual',
            null,
            textEl('MaterialDefinitionID', str(p.material)),
            textEl('MaterialLotID', str(p.lot)),
            quantity(str(p.quantity), str(p.unit)),
          ),
        ),
      };
      break;
    }
    case 'OrderCompleted': {
      const order = obj(p.order);
      const id = str(order.id) ?? event.aggregateId;
      response = {
        orderId: id,
        externalId: str(order.externalId) ?? opts.externalId,
        product: str(order.product),
        endTime: at,
        state: 'Completed',
        segment: el(
          'SegmentResponse',
          null,
          textEl('ID', id),
          textEl('ActualEndTime', at),
          el(
            'MaterialProducedActual',
            null,
            textEl('MaterialDefinitionID', str(order.material)),
            quantity(str(p.goodQuantity), str(order.unit)),
          ),
          textEl('SegmentState', 'Completed'),
        ),
      };
      break;
    }
  }
  const created = new Date(at);
  return ok(
    '<?xml version="1.0" encoding="UTF-8"?>\n' +
      el(
        'ProcessProductionPerformance',
        { xmlns: B2MML_V0600_NS, releaseID: '6.0' },
        ownApplicationArea(event.messageId, Number.isNaN(created.getTime()) ? new Date(0) : created),
        el(
          'DataArea',
          null,
          el('Process', null),
          el(
            'ProductionPerformance',
            null,
            textEl('ID', event.messageId),
            textEl('Description', event.eventType),
            el(
              'ProductionResponse',
              null,
              textEl('ID', response.orderId),
              textEl('ProductionRequestID', response.externalId),
              textEl('ProductProductionRuleID', response.product),
              textEl('EndTime', response.endTime),
              response.segment,
              textEl('ResponseState', response.state),
            ),
          ),
        ),
      ),
  );
}

/** Validates a B2MML document Loom is about to send against its schema; the reasons on failure. */
export async function validateOutbound(
  xml: string,
  validator: XsdValidator,
  schemaFile: string = PERFORMANCE_SCHEMA,
): Promise<Result<string>> {
  const verdict = await validator.validate(xml, schemaFile);
  if (verdict.valid) return ok(xml);
  return fail(
    'LOOM_B2MML_INVALID_DOCUMENT',
    `The B2MML document does not validate against ${schemaFile}: ${verdict.issues
      .map((i) => `line ${i.line ?? '?'}: ${i.message}`)
      .join('; ')}`,
    {
      issues: verdict.issues.map((i) => ({
        path: `line ${i.line ?? '?'}${i.element ? ` ${i.element}` : ''}`,
        message: i.message,
      })),
    },
  );
}

/** `encodeProductionPerformance`, then validated against the XSD: what the deliverer sends. */
export async function productionPerformanceDocument(
  event: OutboxEventRecord,
  validator: XsdValidator,
  opts: { externalId?: string } = {},
): Promise<Result<string>> {
  const encoded = encodeProductionPerformance(event, opts);
  return encoded.ok ? validateOutbound(encoded.value, validator) : encoded;
}

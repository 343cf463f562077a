import { formatQuantity } from '../../domain/shared/quantity.ts';
import type { Clock } from '../../domain/shared/clock.ts';
import { fail, ok, type Result } from '../../domain/shared/result.ts';
import { contentHash } from '../auth/tokens.ts';
import { lotView, type LotView } from '../material/lot-view.ts';
import type { AuditTrail, AuditVerification } from '../ports.ts';
import { ncrView, type NcrView } from '../quality/quality-views.ts';
import type { BatchRecordData, BatchRecordStore } from './batch-record-ports.ts';
import { operationView, orderView, type OperationView, type OrderView } from './views.ts';

/** Names the shape of the record; a reader (or an archive) can tell versions apart. */
export const BATCH_RECORD_FORMAT = 'loom.batch-record/1';

export interface ActivityEntry {
  readonly kind: string;
  readonly at: string;
  readonly actor: string;
  readonly person: string | null;
  readonly workUnit: string | null;
  readonly detail: unknown;
}

export interface ConsumedLotEntry {
  readonly consumption: number;
  readonly lot: string;
  readonly material: string;
  readonly quantity: string;
  readonly unit: string;
  readonly into: string | null;
  readonly actor: string;
  readonly person: string | null;
  readonly equipment: string | null;
  readonly at: string;
}

export interface QualityResultEntry {
  readonly id: number;
  readonly characteristic: string;
  readonly kind: 'numeric' | 'attribute';
  readonly value: number | string;
  readonly lsl: number | null;
  readonly usl: number | null;
  readonly verdict: 'pass' | 'fail';
  readonly lot: string | null;
  readonly actor: string;
  readonly person: string | null;
  readonly at: string;
  /** The NCR number this result raised. */
  readonly ncr: string | null;
}

/** One operation with everything that happened at it. Quantities are in the order's unit. */
export interface OperationRecord extends OperationView {
  readonly unit: string;
  /** For a rework operation: the routing step it reworks and the NCR whose disposition inserted it. */
  readonly rework: { readonly loop: number; readonly of: string; readonly ncr: string | null } | null;
  readonly timeline: readonly ActivityEntry[];
  readonly consumed: readonly ConsumedLotEntry[];
  /** Lots and serials made here, as they are now (quantity on hand, status). */
  readonly produced: readonly LotView[];
  readonly qualityResults: readonly QualityResultEntry[];
  readonly ncrs: readonly NcrView[];
}

/** An electronic signature found in the audit trail, with what it signed. */
export interface SignatureEntry {
  readonly signerId: number;
  readonly signerName: string;
  readonly meaning: string;
  /** UTC, ISO 8601. */
  readonly signedAt: string;
  /** SHA-256 of the content the signer signed (21 CFR 11.70: signature bound to its record). */
  readonly signedRecordHash: string;
  readonly action: string;
  readonly entityType: string;
  readonly entityId: string;
  readonly reason: string | null;
}

export interface AuditTrailEntry {
  readonly at: string;
  readonly action: string;
  readonly entityType: string;
  readonly entityId: string;
  readonly actor: string;
  readonly reason: string | null;
}

/** What the record hash covers: everything recorded about the order, nothing about the print. */
export interface BatchRecordContent {
  readonly format: typeof BATCH_RECORD_FORMAT;
  readonly order: OrderView & { readonly createdBy: string };
  /** In sequence order; rework operations follow the step they rework. */
  readonly operations: readonly OperationRecord[];
  readonly signatures: readonly SignatureEntry[];
  /** Audit entries of the order and its operations. */
  readonly auditTrail: readonly AuditTrailEntry[];
  /** Plant persons mentioned in the record: person id → name. */
  readonly people: Readonly<Record<string, string>>;
}

/** The electronic batch / device history record of one production order. */
export interface BatchRecord extends BatchRecordContent {
  /** SHA-256 (hex) of the canonical JSON of the content: matches a printed copy to the data. */
  readonly recordHash: string;
  readonly footer: {
    readonly generatedAt: string;
    readonly generatedBy: string;
    /** The audit trail's hash chain as verified right after the record was read. */
    readonly auditChain: AuditVerification;
  };
}

export interface BatchRecordDeps {
  readonly store: BatchRecordStore;
  readonly audit: Pick<AuditTrail, 'verify'>;
  readonly clock: Clock;
}

/** Assembles the batch record of `orderId` for `requestedBy`; unknown order → LOOM_ORDER_NOT_FOUND. */
export async function batchRecord(
  deps: BatchRecordDeps,
  orderId: string,
  requestedBy: string,
): Promise<Result<BatchRecord>> {
  const data = await deps.store.load(orderId);
  if (!data) {
    return fail('LOOM_ORDER_NOT_FOUND', `No production order ${orderId}.`, { details: { orderId } });
  }
  const content = recordContent(data);
  // Verified after the read, so an intact chain vouches for every entry the record shows.
  const auditChain = await deps.audit.verify();
  return ok({
    ...content,
    recordHash: contentHash(content),
    footer: { generatedAt: deps.clock.now().toISOString(), generatedBy: requestedBy, auditChain },
  });
}

/** The record content from the stored data: pure, so the same data always gives the same hash. */
export function recordContent(data: BatchRecordData): BatchRecordContent {
  const { order } = data;
  const byPk = new Map(data.operations.map((op) => [op.pk, op]));
  const of = <T extends { operationPk: number }>(rows: readonly T[], pk: number) =>
    rows.filter((r) => r.operationPk === pk);
  const iso = (d: Date) => d.toISOString();

  const operations = data.operations.map((op): OperationRecord => {
    const reworkNcr = data.ncrs.find((n) => n.reworkOperationPk === op.pk);
    return {
      ...operationView(op),
      unit: order.unitId,
      rework:
        op.reworkOf === null
          ? null
          : {
              loop: op.reworkLoop,
              of: byPk.get(op.reworkOf)?.operationId ?? String(op.reworkOf),
              ncr: reworkNcr?.number ?? null,
            },
      timeline: of(data.activities, op.pk).map((a) => ({
        kind: a.kind,
        at: iso(a.at),
        actor: a.actor,
        person: a.personId,
        workUnit: a.workUnitId,
        detail: a.detail ?? null,
      })),
      consumed: of(data.consumptions, op.pk).map((c) => ({
        consumption: c.id,
        lot: c.lotId,
        material: c.materialId,
        quantity: formatQuantity(c.quantity),
        unit: c.unitId,
        into: c.intoLotId,
        actor: c.actor,
        person: c.personId,
        equipment: c.equipmentId,
        at: iso(c.at),
      })),
      produced: data.producedLots.filter((l) => l.producedBy === op.pk).map(lotView),
      qualityResults: of(data.results, op.pk).map((r) => ({
        id: r.id,
        characteristic: r.characteristic,
        kind: r.kind,
        value: r.value,
        lsl: r.lsl,
        usl: r.usl,
        verdict: r.verdict,
        lot: r.lotId,
        actor: r.actor,
        person: r.personId,
        at: r.at,
        ncr: r.ncr?.number ?? null,
      })),
      ncrs: of(data.ncrs, op.pk).map(ncrView),
    };
  });

  const signatures = data.audit.flatMap((e): SignatureEntry[] =>
    e.signature
      ? [
          {
            signerId: e.signature.signerId,
            signerName: e.signature.signerName,
            meaning: e.signature.meaning,
            signedAt: e.signature.signedAt,
            signedRecordHash: e.signature.recordHash,
            action: e.action,
            entityType: e.entityType,
            entityId: e.entityId,
            reason: e.reason,
          },
        ]
      : [],
  );

  const auditTrail = data.audit
    .filter((e) => e.entityType === 'production-order' || e.entityType === 'order-operation')
    .map((e) => ({
      at: e.at,
      action: e.action,
      entityType: e.entityType,
      entityId: e.entityId,
      actor: e.actorName,
      reason: e.reason,
    }));

  return {
    format: BATCH_RECORD_FORMAT,
    order: { ...orderView(order), createdBy: order.createdBy },
    operations,
    signatures,
    auditTrail,
    people: Object.fromEntries(data.people),
  };
}

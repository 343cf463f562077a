import type { Actor } from '../../domain/auth/roles.ts';
import { formatQuantity } from '../../domain/shared/quantity.ts';
import { fail, type Result } from '../../domain/shared/result.ts';
import type { IdempotencyRequest } from '../shared/idempotent.ts';
import type { Principal } from '../auth/auth-service.ts';
import type { AuditTrail, ElectronicSignature, IdempotencyStore, Outbox, UnitOfWork } from '../ports.ts';
import type { GenealogyStore, Lot, LotStore } from './material-ports.ts';

/** A lot as the API shows it: quantities as exact decimal strings, times as ISO strings. */
export interface LotView {
  readonly id: string;
  readonly kind: Lot['kind'];
  readonly material: string;
  readonly quantity: string;
  readonly unit: string;
  readonly status: Lot['status'];
  readonly location: string | null;
  readonly supplierLot: string | null;
  readonly producedBy: number | null;
  readonly orderId: string | null;
  readonly createdAt: string;
  readonly updatedAt: string;
}

export const lotView = (l: Lot): LotView => ({
  id: l.id,
  kind: l.kind,
  material: l.materialId,
  quantity: formatQuantity(l.quantity),
  unit: l.unitId,
  status: l.status,
  location: l.location,
  supplierLot: l.supplierLot,
  producedBy: l.producedBy,
  orderId: l.orderId,
  createdAt: l.createdAt.toISOString(),
  updatedAt: l.updatedAt.toISOString(),
});

export type Sign = (
  principal: Principal,
  input: { password: string; meaning: string },
  record: unknown,
) => Promise<Result<ElectronicSignature>>;

export interface MaterialDeps {
  readonly uow: UnitOfWork;
  readonly lots: LotStore;
  readonly genealogy: GenealogyStore;
  readonly audit: AuditTrail;
  readonly outbox: Outbox;
  readonly idempotency: IdempotencyStore;
  readonly sign: Sign;
}

/**
 * Who asks, under which request id, and with which Idempotency-Key; `status` is what a replay
 * of this request answers with.
 */
export interface MaterialCommand {
  readonly actor: Principal;
  readonly requestId: string | null;
  readonly idempotency: IdempotencyRequest | null;
  readonly status: number;
}

/** The actor as stored in audit entries (without session details). */
export const auditActor = (p: Principal): Actor => ({
  userId: p.userId,
  username: p.username,
  roles: p.roles,
});

export const lotNotFound = (id: string, path?: string) =>
  fail('LOOM_LOT_NOT_FOUND', `Lot or serial '${id}' does not exist.`, {
    details: { lotId: id },
    ...(path ? { issues: [{ path, message: `lot '${id}' does not exist` }] } : {}),
  });

export const lotConsumed = (l: Lot) =>
  fail('LOOM_LOT_CONSUMED', `Lot '${l.id}' is Consumed: nothing is left on hand.`, {
    details: { lotId: l.id, lotStatus: l.status },
  });

export const lotInsufficient = (l: Lot, wanted: bigint) =>
  fail(
    'LOOM_LOT_INSUFFICIENT',
    `Lot '${l.id}' has ${formatQuantity(l.quantity)} ${l.unitId} on hand; ${formatQuantity(wanted)} ${l.unitId} were asked for.`,
    {
      details: {
        lotId: l.id,
        onHand: formatQuantity(l.quantity),
        requested: formatQuantity(wanted),
        unit: l.unitId,
      },
    },
  );

export const serialIndivisible = (l: Lot, verb: string) =>
  fail('LOOM_LOT_SERIAL_INDIVISIBLE', `'${l.id}' is a serial (one unit); a serial cannot be ${verb}.`, {
    details: { lotId: l.id },
  });

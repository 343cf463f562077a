import { hasAnyRole } from '../../domain/auth/roles.ts';
import { fromWhole, parsePositiveQuantity, type Quantity } from '../../domain/shared/quantity.ts';
import { fail, ok, type Result } from '../../domain/shared/result.ts';
import type { Tx } from '../ports.ts';
import { auditActor, lotView, type LotView, type MaterialCommand, type MaterialDeps } from './lot-view.ts';
import type { LotKind } from './material-ports.ts';

export interface ReceiveLotInput {
  readonly id: string;
  readonly material: string;
  readonly quantity?: unknown;
  readonly unit?: string;
  readonly status?: 'Quarantine' | 'Released';
  readonly supplierLot?: string;
  readonly location?: string;
}

/**
 * Incoming material waits in Quarantine until quality releases it; receiving it straight as
 * Released skips that check, so only quality (or an admin, or the ERP after its own incoming
 * inspection) may ask for it.
 */
const MAY_RECEIVE_RELEASED = ['quality', 'admin', 'integration'] as const;

/** Quantity of a new lot or serial: a serial is exactly one unit, so its quantity may be left out. */
export function quantityForKind(kind: LotKind, input: unknown): Result<Quantity> {
  const one = fromWhole(1);
  if (kind === 'serial') {
    if (input === undefined) return ok(one);
    const q = parsePositiveQuantity(input);
    if (!q.ok) return q;
    if (q.value !== one) {
      return fail('LOOM_VALIDATION_FAILED', 'quantity of a serial must be 1 (a serial is one unit).', {
        issues: [{ path: 'quantity', message: 'must be 1 for a serial' }],
      });
    }
    return q;
  }
  if (input === undefined) {
    return fail('LOOM_VALIDATION_FAILED', 'quantity is required for a lot.', {
      issues: [{ path: 'quantity', message: 'is required' }],
    });
  }
  return parsePositiveQuantity(input);
}

export async function receiveLot(
  deps: MaterialDeps,
  tx: Tx,
  cmd: MaterialCommand,
  input: ReceiveLotInput,
): Promise<Result<LotView>> {
  const status = input.status ?? 'Quarantine';
  if (status === 'Released' && !hasAnyRole(cmd.actor, MAY_RECEIVE_RELEASED)) {
    return fail(
      'LOOM_AUTH_FORBIDDEN',
      `Receiving a lot as Released needs one of the roles ${MAY_RECEIVE_RELEASED.join(', ')}; receive it into Quarantine and have quality release it.`,
    );
  }
  const material = await deps.lots.material(tx, input.material);
  if (!material) {
    return fail('LOOM_PLANT_NOT_FOUND', `Material '${input.material}' does not exist.`, {
      details: { entityType: 'material', id: input.material },
      issues: [{ path: 'material', message: `material '${input.material}' does not exist` }],
    });
  }
  if (input.unit !== undefined && input.unit !== material.unitId) {
    return fail(
      'LOOM_LOT_UNIT_MISMATCH',
      `Material '${material.id}' is kept in ${material.unitId}, not ${input.unit}; Loom does not convert units.`,
      { issues: [{ path: 'unit', message: `must be '${material.unitId}', the material's unit` }] },
    );
  }
  const kind: LotKind = material.tracking === 'serial' ? 'serial' : 'lot';
  const quantity = quantityForKind(kind, input.quantity);
  if (!quantity.ok) return quantity;

  const lot = await deps.lots.insert(tx, {
    id: input.id,
    kind,
    materialId: material.id,
    quantity: quantity.value,
    unitId: material.unitId,
    status,
    location: input.location ?? null,
    supplierLot: input.supplierLot ?? null,
    producedBy: null,
    orderId: null,
  });
  if (!lot) {
    return fail(
      'LOOM_LOT_EXISTS',
      `A lot or serial '${input.id}' already exists; lot ids are unique in Loom.`,
      {
        details: { lotId: input.id },
      },
    );
  }
  const view = lotView(lot);
  await deps.audit.append(tx, {
    actor: auditActor(cmd.actor),
    action: 'lot.received',
    entityType: 'lot',
    entityId: lot.id,
    oldValue: null,
    newValue: view,
    requestId: cmd.requestId,
  });
  return ok(view);
}

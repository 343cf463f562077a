import { formatQuantity, parsePositiveQuantity } from '../../domain/shared/quantity.ts';
import { fail, ok, type Result } from '../../domain/shared/result.ts';
import { bomMaterials } from '../../domain/production/product.ts';
import { orderAcceptsProduction, orderNotActive } from '../../domain/work-order/order-state.ts';
import type { Tx } from '../ports.ts';
import {
  auditActor,
  lotConsumed,
  lotInsufficient,
  lotNotFound,
  lotView,
  type LotView,
  type MaterialCommand,
  type MaterialDeps,
} from './lot-view.ts';
import type { OperationForMaterial } from './material-ports.ts';

export interface ConsumeMaterialInput {
  readonly lotId: string;
  readonly quantity: unknown;
  readonly into?: string;
}

export interface ConsumptionView {
  readonly id: number;
  readonly operation: number;
  readonly orderId: string;
  readonly lotId: string;
  readonly material: string;
  readonly quantity: string;
  readonly unit: string;
  readonly into: string | null;
  /** The lots a genealogy edge was drawn to now (`into`, or what the operation already produced). */
  readonly edgesTo: string[];
  readonly person: string | null;
  readonly equipment: string | null;
  readonly at: string;
  readonly lot: LotView;
}

export const operationNotFound = (pk: number) =>
  fail('LOOM_OPERATION_NOT_FOUND', `Operation ${pk} does not exist.`, { details: { operation: pk } });

export const operationNotRunning = (op: OperationForMaterial) =>
  fail(
    'LOOM_OPERATION_NOT_RUNNING',
    `Operation ${op.pk} ('${op.operationId} ${op.name}' of order ${op.orderId}) is ${op.state}; material is consumed and produced only while it is Running.`,
    { details: { operation: op.pk, orderId: op.orderId, state: op.state } },
  );

/**
 * Takes a quantity of a Released lot at a Running operation. The operation row is locked first,
 * then the lot (the fixed order: order → operation → lots by id); the lot's row lock serialises
 * concurrent consumers and the CHECK (quantity >= 0) backs it, so a lot is never overdrawn.
 */
export async function consumeMaterial(
  deps: MaterialDeps,
  tx: Tx,
  cmd: MaterialCommand,
  operationPk: number,
  input: ConsumeMaterialInput,
): Promise<Result<ConsumptionView>> {
  const quantity = parsePositiveQuantity(input.quantity);
  if (!quantity.ok) return quantity;
  if (input.into !== undefined && input.into === input.lotId) {
    return fail('LOOM_VALIDATION_FAILED', 'into must differ from lotId: a lot is not built into itself.', {
      issues: [{ path: 'into', message: 'must differ from lotId' }],
    });
  }

  const op = await deps.lots.lockOperation(tx, operationPk);
  if (!op) return operationNotFound(operationPk);
  if (op.state !== 'Running') return operationNotRunning(op);
  if (!orderAcceptsProduction(op.orderState)) return orderNotActive(op, op.orderState);

  const locked = await deps.lots.lockMany(
    tx,
    input.into === undefined ? [input.lotId] : [input.lotId, input.into],
  );
  const lot = locked.find((l) => l.id === input.lotId);
  if (!lot) return lotNotFound(input.lotId, 'lotId');
  const into = input.into === undefined ? undefined : locked.find((l) => l.id === input.into);
  if (input.into !== undefined && !into) return lotNotFound(input.into, 'into');
  // What a consumption is built into is a unit this order makes: never another order's unit or a
  // received lot, whose genealogy (and every recall through it) would then be wrong.
  if (into && into.orderId !== op.orderId) {
    return fail(
      'LOOM_LOT_NOT_OF_ORDER',
      `Lot '${into.id}' ${into.orderId === null ? 'was not produced by any order' : `belongs to order ${into.orderId}`}; ` +
        `material is built only into a lot or serial that order ${op.orderId} produced (POST /api/operations/:id/outputs).`,
      {
        issues: [{ path: 'into', message: `must be a lot or serial produced by order ${op.orderId}` }],
        details: { lotId: into.id, lotOrderId: into.orderId, orderId: op.orderId },
      },
    );
  }
  if (lot.status === 'Consumed') return lotConsumed(lot);
  if (lot.status !== 'Released') {
    return fail(
      'LOOM_LOT_NOT_RELEASED',
      `Lot '${lot.id}' is ${lot.status}; only a Released lot can be consumed.`,
      { details: { lotId: lot.id, lotStatus: lot.status } },
    );
  }
  const bom = bomMaterials(op.bom);
  if (!bom.includes(lot.materialId)) {
    return fail(
      'LOOM_MATERIAL_NOT_IN_BOM',
      `Lot '${lot.id}' is ${lot.materialId}, which is not in the bill of materials of operation ${op.pk} ('${op.operationId} ${op.name}'): ${bom.length ? bom.join(', ') : 'it consumes no material'}.`,
      { details: { lotId: lot.id, material: lot.materialId, bom } },
    );
  }
  if (quantity.value > lot.quantity) return lotInsufficient(lot, quantity.value);
  const after = await deps.lots.take(tx, lot.id, quantity.value);
  if (!after) return lotInsufficient(lot, quantity.value);

  const personId = op.personId ?? (await deps.lots.personOf(tx, cmd.actor.username));
  const consumption = await deps.lots.insertConsumption(tx, {
    operationPk: op.pk,
    lotId: lot.id,
    intoLotId: input.into ?? null,
    quantity: quantity.value,
    actor: cmd.actor.username,
    personId,
    equipmentId: op.workUnitId,
  });
  const targets =
    input.into !== undefined
      ? [input.into]
      : (await deps.lots.producedBy(tx, op.pk)).map((l) => l.id).filter((id) => id !== lot.id);
  await deps.genealogy.addEdges(
    tx,
    targets.map((to) => ({
      fromLot: lot.id,
      toLot: to,
      kind: 'consume' as const,
      quantity: quantity.value,
      operationPk: op.pk,
      actor: cmd.actor.username,
      personId,
      equipmentId: op.workUnitId,
    })),
  );

  const view: ConsumptionView = {
    id: consumption.id,
    operation: op.pk,
    orderId: op.orderId,
    lotId: lot.id,
    material: lot.materialId,
    quantity: formatQuantity(quantity.value),
    unit: lot.unitId,
    into: input.into ?? null,
    edgesTo: targets,
    person: personId,
    equipment: op.workUnitId,
    at: consumption.at.toISOString(),
    lot: lotView(after),
  };
  await deps.audit.append(tx, {
    actor: auditActor(cmd.actor),
    action: 'lot.consumed',
    entityType: 'lot',
    entityId: lot.id,
    oldValue: lotView(lot),
    newValue: { ...lotView(after), consumption: { ...view, lot: undefined } },
    requestId: cmd.requestId,
  });
  await deps.outbox.add(tx, {
    aggregateType: 'production-order',
    aggregateId: op.orderId,
    eventType: 'MaterialConsumed',
    payload: {
      orderId: op.orderId,
      externalId: op.orderExternalId,
      operation: { id: op.pk, operationId: op.operationId, name: op.name },
      consumptionId: consumption.id,
      lot: lot.id,
      material: lot.materialId,
      quantity: view.quantity,
      unit: lot.unitId,
      into: view.into,
      person: personId,
      equipment: op.workUnitId,
      at: view.at,
    },
  });
  return ok(view);
}

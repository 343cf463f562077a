import { formatQuantity } from '../../domain/shared/quantity.ts';
import { fail, ok, type Result } from '../../domain/shared/result.ts';
import type { Tx } from '../ports.ts';
import { orderAcceptsProduction, orderNotActive } from '../../domain/work-order/order-state.ts';
import { operationNotFound, operationNotRunning } from './consume-material.ts';
import { auditActor, lotView, type LotView, type MaterialCommand, type MaterialDeps } from './lot-view.ts';
import type { LotKind } from './material-ports.ts';
import { quantityForKind } from './receive-lot.ts';

export interface ProduceOutputInput {
  readonly lotId: string;
  readonly quantity?: unknown;
  readonly kind?: LotKind;
  readonly material?: string;
  readonly location?: string;
}

export interface OutputView {
  readonly lot: LotView;
  readonly operation: number;
  readonly orderId: string;
  /** Consumptions of this operation without `into` now linked to the new lot. */
  readonly consumedFrom: { lotId: string; quantity: string; consumption: number }[];
}

/**
 * Creates a lot or serial produced by a Running operation (Released: it is made under the order's
 * control) and links every consumption of this operation that named no `into` to it.
 */
export async function produceOutput(
  deps: MaterialDeps,
  tx: Tx,
  cmd: MaterialCommand,
  operationPk: number,
  input: ProduceOutputInput,
): Promise<Result<OutputView>> {
  const op = await deps.lots.lockOperation(tx, operationPk);
  if (!op) return operationNotFound(operationPk);
  if (op.state !== 'Running') return operationNotRunning(op);
  if (!orderAcceptsProduction(op.orderState)) return orderNotActive(op, op.orderState);

  const materialId = input.material ?? op.orderMaterialId;
  const material = await deps.lots.material(tx, materialId);
  if (!material) {
    return fail('LOOM_PLANT_NOT_FOUND', `Material '${materialId}' does not exist.`, {
      details: { entityType: 'material', id: materialId },
      issues: [{ path: 'material', message: `material '${materialId}' does not exist` }],
    });
  }
  const kind: LotKind = material.tracking === 'serial' ? 'serial' : 'lot';
  if (input.kind !== undefined && input.kind !== kind) {
    return fail(
      'LOOM_VALIDATION_FAILED',
      `kind must be '${kind}': material '${material.id}' is tracked by ${material.tracking}.`,
      { issues: [{ path: 'kind', message: `must be '${kind}' for material '${material.id}'` }] },
    );
  }
  const quantity = quantityForKind(kind, input.quantity);
  if (!quantity.ok) return quantity;

  const lot = await deps.lots.insert(tx, {
    id: input.lotId,
    kind,
    materialId: material.id,
    quantity: quantity.value,
    unitId: material.unitId,
    status: 'Released',
    location: input.location ?? null,
    supplierLot: null,
    producedBy: op.pk,
    orderId: op.orderId,
  });
  if (!lot) {
    return fail(
      'LOOM_LOT_EXISTS',
      `A lot or serial '${input.lotId}' already exists; lot ids are unique in Loom.`,
      {
        details: { lotId: input.lotId },
      },
    );
  }
  const personId = op.personId ?? (await deps.lots.personOf(tx, cmd.actor.username));
  const consumptions = await deps.lots.consumptionsWithoutInto(tx, op.pk);
  await deps.genealogy.addEdges(
    tx,
    consumptions.map((c) => ({
      fromLot: c.lotId,
      toLot: lot.id,
      kind: 'consume' as const,
      quantity: c.quantity,
      operationPk: op.pk,
      actor: cmd.actor.username,
      personId,
      equipmentId: op.workUnitId,
    })),
  );
  const view: OutputView = {
    lot: lotView(lot),
    operation: op.pk,
    orderId: op.orderId,
    consumedFrom: consumptions.map((c) => ({
      lotId: c.lotId,
      quantity: formatQuantity(c.quantity),
      consumption: c.id,
    })),
  };
  await deps.audit.append(tx, {
    actor: auditActor(cmd.actor),
    action: 'lot.produced',
    entityType: 'lot',
    entityId: lot.id,
    oldValue: null,
    newValue: { ...view.lot, consumedFrom: view.consumedFrom },
    requestId: cmd.requestId,
  });
  await deps.outbox.add(tx, {
    aggregateType: 'production-order',
    aggregateId: op.orderId,
    eventType: 'MaterialProduced',
    payload: {
      orderId: op.orderId,
      externalId: op.orderExternalId,
      operation: { id: op.pk, operationId: op.operationId, name: op.name },
      lot: lot.id,
      kind,
      material: material.id,
      quantity: view.lot.quantity,
      unit: material.unitId,
      person: personId,
      equipment: op.workUnitId,
      consumedFrom: view.consumedFrom,
      at: view.lot.createdAt,
    },
  });
  return ok(view);
}

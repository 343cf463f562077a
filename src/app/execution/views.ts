import { formatQuantity } from '../../domain/shared/quantity.ts';
import type { OrderOperation, ProductionOrder } from './execution-ports.ts';

/** JSON-safe views: quantities as exact decimal strings, times as ISO-8601 UTC. */
export function orderView(o: ProductionOrder) {
  return {
    id: o.id,
    externalId: o.externalId,
    product: o.productId,
    material: o.materialId,
    quantity: formatQuantity(o.quantity),
    unit: o.unitId,
    dueAt: o.dueAt?.toISOString() ?? null,
    priority: o.priority,
    state: o.state,
    holdReason: o.holdReason,
    releasedAt: o.releasedAt.toISOString(),
    startedAt: o.startedAt?.toISOString() ?? null,
    completedAt: o.completedAt?.toISOString() ?? null,
    closedAt: o.closedAt?.toISOString() ?? null,
  };
}
export type OrderView = ReturnType<typeof orderView>;

export function operationView(op: OrderOperation) {
  return {
    id: op.pk,
    order: op.orderId,
    operation: op.operationId,
    sequence: op.sequence,
    name: op.name,
    workCenter: op.workCenterId,
    allowedWorkUnits: op.allowedWorkUnits,
    workUnit: op.workUnitId,
    standardCycleTimeSeconds: op.standardCycleTimeS,
    requiredQualifications: op.requiredQualifications,
    parameters: op.parameters,
    bom: op.bom,
    characteristics: op.characteristics,
    plannedQuantity: formatQuantity(op.plannedQuantity),
    goodQuantity: formatQuantity(op.goodQuantity),
    scrapQuantity: formatQuantity(op.scrapQuantity),
    reworkQuantity: formatQuantity(op.reworkQuantity),
    state: op.state,
    isRework: op.isRework,
    reworkOf: op.reworkOf,
    reworkLoop: op.reworkLoop,
    startedAt: op.startedAt?.toISOString() ?? null,
    startedBy: op.startedBy,
    person: op.personId,
    completedAt: op.completedAt?.toISOString() ?? null,
    completedBy: op.completedBy,
  };
}
export type OperationView = ReturnType<typeof operationView>;

import { parsePositiveQuantity } from '../../domain/shared/quantity.ts';
import { fail, ok, type Result } from '../../domain/shared/result.ts';
import type { Tx } from '../ports.ts';
import {
  auditActor,
  lotConsumed,
  lotInsufficient,
  lotNotFound,
  lotView,
  serialIndivisible,
  type LotView,
  type MaterialCommand,
  type MaterialDeps,
} from './lot-view.ts';

export interface SplitLotInput {
  readonly newId: string;
  readonly quantity: unknown;
}

/**
 * Moves `quantity` of a lot into a new lot of the same material, status and location, with a
 * genealogy edge (kind split) so a trace follows the material through the split.
 */
export async function splitLot(
  deps: MaterialDeps,
  tx: Tx,
  cmd: MaterialCommand,
  id: string,
  input: SplitLotInput,
): Promise<Result<{ source: LotView; created: LotView }>> {
  const quantity = parsePositiveQuantity(input.quantity);
  if (!quantity.ok) return quantity;
  if (input.newId === id) {
    return fail('LOOM_VALIDATION_FAILED', 'newId must differ from the lot being split.', {
      issues: [{ path: 'newId', message: 'must differ from the lot being split' }],
    });
  }
  const [source] = await deps.lots.lockMany(tx, [id]);
  if (!source) return lotNotFound(id);
  if (source.kind === 'serial') return serialIndivisible(source, 'split');
  if (source.status === 'Consumed') return lotConsumed(source);
  if (quantity.value > source.quantity) return lotInsufficient(source, quantity.value);

  const created = await deps.lots.insert(tx, {
    id: input.newId,
    kind: 'lot',
    materialId: source.materialId,
    quantity: quantity.value,
    unitId: source.unitId,
    status: source.status,
    location: source.location,
    supplierLot: source.supplierLot,
    producedBy: null,
    orderId: source.orderId,
  });
  if (!created) {
    return fail('LOOM_LOT_EXISTS', `A lot or serial '${input.newId}' already exists; choose another newId.`, {
      details: { lotId: input.newId },
    });
  }
  const after = await deps.lots.take(tx, source.id, quantity.value);
  if (!after) return lotInsufficient(source, quantity.value);
  await deps.genealogy.addEdges(tx, [
    {
      fromLot: source.id,
      toLot: created.id,
      kind: 'split',
      quantity: quantity.value,
      operationPk: null,
      actor: cmd.actor.username,
      personId: await deps.lots.personOf(tx, cmd.actor.username),
      equipmentId: null,
    },
  ]);
  const result = { source: lotView(after), created: lotView(created) };
  const actor = auditActor(cmd.actor);
  await deps.audit.append(tx, {
    actor,
    action: 'lot.split',
    entityType: 'lot',
    entityId: source.id,
    oldValue: lotView(source),
    newValue: { ...result.source, splitInto: created.id },
    requestId: cmd.requestId,
  });
  await deps.audit.append(tx, {
    actor,
    action: 'lot.created-by-split',
    entityType: 'lot',
    entityId: created.id,
    oldValue: null,
    newValue: { ...result.created, splitFrom: source.id },
    requestId: cmd.requestId,
  });
  return ok(result);
}

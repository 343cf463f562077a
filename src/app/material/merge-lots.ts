import { formatQuantity, sum, ZERO } from '../../domain/shared/quantity.ts';
import { fail, ok, type Result } from '../../domain/shared/result.ts';
import type { Tx } from '../ports.ts';
import {
  auditActor,
  lotConsumed,
  lotNotFound,
  lotView,
  serialIndivisible,
  type LotView,
  type MaterialCommand,
  type MaterialDeps,
} from './lot-view.ts';
import type { Lot } from './material-ports.ts';

export interface MergeLotsInput {
  readonly into: string;
  readonly from: readonly string[];
}

/**
 * Pours lots of one material into `into`. The sources end Consumed (quantity 0) with a genealogy
 * edge (kind merge) each, so a trace of the merged lot reaches every source. Lots of different
 * materials, or of different status (merging would launder a Blocked or Quarantine lot), are refused.
 */
export async function mergeLots(
  deps: MaterialDeps,
  tx: Tx,
  cmd: MaterialCommand,
  input: MergeLotsInput,
): Promise<Result<{ into: LotView; from: LotView[] }>> {
  const sources = [...new Set(input.from)];
  if (sources.length !== input.from.length || sources.includes(input.into)) {
    return fail('LOOM_VALIDATION_FAILED', 'from must list distinct lots, none of them the lot merged into.', {
      issues: [{ path: 'from', message: 'must be distinct lots other than into' }],
    });
  }
  const locked = await deps.lots.lockMany(tx, [input.into, ...sources]);
  const byId = new Map(locked.map((l) => [l.id, l]));
  const into = byId.get(input.into);
  if (!into) return lotNotFound(input.into, 'into');
  const from: Lot[] = [];
  for (const [i, id] of sources.entries()) {
    const l = byId.get(id);
    if (!l) return lotNotFound(id, `from[${i}]`);
    from.push(l);
  }
  for (const l of [into, ...from]) {
    if (l.kind === 'serial') return serialIndivisible(l, 'merged');
    if (l.status === 'Consumed') return lotConsumed(l);
  }
  const otherMaterial = from.find((l) => l.materialId !== into.materialId);
  if (otherMaterial) {
    return fail(
      'LOOM_LOT_MATERIAL_MISMATCH',
      `Lot '${otherMaterial.id}' is ${otherMaterial.materialId}, lot '${into.id}' is ${into.materialId}: only lots of one material can be merged.`,
      {
        details: {
          into: into.id,
          intoMaterial: into.materialId,
          lotId: otherMaterial.id,
          material: otherMaterial.materialId,
        },
      },
    );
  }
  const otherStatus = from.find((l) => l.status !== into.status);
  if (otherStatus) {
    return fail(
      'LOOM_LOT_STATUS_MISMATCH',
      `Lot '${otherStatus.id}' is ${otherStatus.status}, lot '${into.id}' is ${into.status}: release or hold them to one status before merging.`,
      {
        details: {
          into: into.id,
          intoStatus: into.status,
          lotId: otherStatus.id,
          lotStatus: otherStatus.status,
        },
      },
    );
  }

  const total = sum(from.map((l) => l.quantity));
  const merged = await deps.lots.update(tx, into.id, { quantity: (into.quantity + total) as typeof total });
  const emptied: Lot[] = [];
  for (const l of from)
    emptied.push(await deps.lots.update(tx, l.id, { quantity: ZERO, status: 'Consumed' }));
  const personId = await deps.lots.personOf(tx, cmd.actor.username);
  await deps.genealogy.addEdges(
    tx,
    from
      .filter((l) => l.quantity > 0n)
      .map((l) => ({
        fromLot: l.id,
        toLot: into.id,
        kind: 'merge' as const,
        quantity: l.quantity,
        operationPk: null,
        actor: cmd.actor.username,
        personId,
        equipmentId: null,
      })),
  );
  await deps.audit.append(tx, {
    actor: auditActor(cmd.actor),
    action: 'lot.merged',
    entityType: 'lot',
    entityId: into.id,
    oldValue: { into: lotView(into), from: from.map(lotView) },
    newValue: { into: lotView(merged), from: emptied.map(lotView), added: formatQuantity(total) },
    requestId: cmd.requestId,
  });
  return ok({ into: lotView(merged), from: emptied.map(lotView) });
}

import { ok, type Result } from '../../domain/shared/result.ts';
import type { Tx } from '../ports.ts';
import {
  auditActor,
  lotConsumed,
  lotNotFound,
  lotView,
  type LotView,
  type MaterialCommand,
  type MaterialDeps,
} from './lot-view.ts';

/** Records where a lot now is. A move to where it already is changes nothing and is not audited. */
export async function moveLot(
  deps: MaterialDeps,
  tx: Tx,
  cmd: MaterialCommand,
  id: string,
  input: { readonly location: string },
): Promise<Result<LotView>> {
  const [lot] = await deps.lots.lockMany(tx, [id]);
  if (!lot) return lotNotFound(id);
  if (lot.status === 'Consumed') return lotConsumed(lot);
  if (lot.location === input.location) return ok(lotView(lot));
  const moved = await deps.lots.update(tx, id, { location: input.location });
  await deps.audit.append(tx, {
    actor: auditActor(cmd.actor),
    action: 'lot.moved',
    entityType: 'lot',
    entityId: id,
    oldValue: lotView(lot),
    newValue: lotView(moved),
    requestId: cmd.requestId,
  });
  return ok(lotView(moved));
}

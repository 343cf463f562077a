import { fail, ok, type Result } from '../../domain/shared/result.ts';
import type { Tx } from '../ports.ts';
import {
  auditActor,
  lotNotFound,
  lotView,
  type LotView,
  type MaterialCommand,
  type MaterialDeps,
} from './lot-view.ts';
import type { Lot, LotStatus } from './material-ports.ts';

export type LotStatusChange = 'hold' | 'release';

export interface LotStatusInput {
  readonly reason: string;
  readonly signature: { readonly password: string; readonly meaning: string };
}

const RULES: Record<LotStatusChange, { from: readonly LotStatus[]; to: LotStatus; action: string }> = {
  hold: { from: ['Released', 'Quarantine'], to: 'Blocked', action: 'lot.held' },
  release: { from: ['Quarantine', 'Blocked'], to: 'Released', action: 'lot.released' },
};

function refused(lot: Lot, change: LotStatusChange): Result<never> {
  const rule = RULES[change];
  return fail(
    'LOOM_LOT_TRANSITION_REFUSED',
    `Lot '${lot.id}' is ${lot.status}; ${change} applies only to a lot that is ${rule.from.join(' or ')}.`,
    { details: { lotId: lot.id, lotStatus: lot.status, allowedFrom: rule.from } },
  );
}

/** What the signer signs: the change and the lot as it stood, hashed into the signature. */
const signedRecord = (change: LotStatusChange, lot: Lot, reason: string) => ({
  action: RULES[change].action,
  lot: lotView(lot),
  to: RULES[change].to,
  reason,
});

/**
 * Hold (→ Blocked) or release (→ Released) with an electronic signature. The password is verified
 * before the row lock is taken (it is slow), then the lot is locked and re-checked: if it changed
 * in between, the signature would not match what is changed, so the request is refused.
 */
export async function changeLotStatus(
  deps: MaterialDeps,
  tx: Tx,
  cmd: MaterialCommand,
  id: string,
  change: LotStatusChange,
  input: LotStatusInput,
): Promise<Result<LotView>> {
  const rule = RULES[change];
  const seen = await deps.lots.get(tx, id);
  if (!seen) return lotNotFound(id);
  if (!rule.from.includes(seen.status)) return refused(seen, change);
  const signature = await deps.sign(cmd.actor, input.signature, signedRecord(change, seen, input.reason));
  if (!signature.ok) return signature;

  const [lot] = await deps.lots.lockMany(tx, [id]);
  if (!lot) return lotNotFound(id);
  if (lot.updatedAt.getTime() !== seen.updatedAt.getTime() || lot.status !== seen.status) {
    return fail(
      'LOOM_LOT_CHANGED',
      `Lot '${lot.id}' changed while it was being signed; review it and sign again.`,
      {
        details: { lotId: lot.id },
      },
    );
  }
  const changed = await deps.lots.update(tx, lot.id, { status: rule.to });
  await deps.audit.append(tx, {
    actor: auditActor(cmd.actor),
    action: rule.action,
    entityType: 'lot',
    entityId: lot.id,
    reason: input.reason,
    oldValue: lotView(lot),
    newValue: lotView(changed),
    signature: signature.value,
    requestId: cmd.requestId,
  });
  return ok(lotView(changed));
}

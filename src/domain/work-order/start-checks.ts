import { isAbleToStart, type EquipmentState } from '../equipment/equipment-state.ts';
import { qualificationStatus, type QualificationHolding } from '../personnel/person.ts';
import type { CalendarDate } from '../shared/fields.ts';
import { formatQuantity, type Quantity } from '../shared/quantity.ts';

export interface StartFacts {
  readonly today: CalendarDate;
  readonly requiredQualifications: readonly string[];
  readonly operator: { readonly personId: string; readonly qualifications: readonly QualificationHolding[] };
  /** A qualified trainer co-signing for a trainee (already authenticated by the caller). */
  readonly trainer?: {
    readonly personId: string;
    readonly qualifications: readonly QualificationHolding[];
  } | null;
  readonly workUnit: {
    readonly id: string;
    readonly state: EquipmentState;
    readonly stateReason?: string | null;
  };
  /** Good quantity the previous operation reported, and what this operation will process. */
  readonly predecessor?: {
    readonly operationId: string;
    readonly goodQuantity: Quantity;
    readonly needed: Quantity;
  } | null;
  /** The lots to be consumed; `material` null when the lot does not exist. */
  readonly lots: readonly {
    readonly id: string;
    readonly status: string;
    readonly material?: string | null;
  }[];
  /** The operation's bill of materials, when known: a lot to be consumed must be of one of them. */
  readonly bomMaterials?: readonly string[];
}

export type StartRefusalCode =
  | 'LOOM_START_NOT_QUALIFIED'
  | 'LOOM_START_EQUIPMENT_UNAVAILABLE'
  | 'LOOM_START_PREDECESSOR_SHORT'
  | 'LOOM_START_LOT_NOT_RELEASED'
  | 'LOOM_START_LOT_NOT_IN_BOM';

export interface StartRefusal {
  readonly code: StartRefusalCode;
  readonly message: string;
  readonly subject: string;
}

function holds(holdings: readonly QualificationHolding[], qualification: string, today: CalendarDate) {
  const mine = holdings.filter((h) => h.qualification === qualification);
  const valid = mine.find((h) => qualificationStatus(h, today) === 'valid');
  if (valid) return { valid: true as const };
  // The most recent expiry of a holding that has expired is the one a supervisor needs to see; a
  // renewal not valid yet is named beside it, never taken for the expired one.
  const expiredOn = mine
    .filter((h) => qualificationStatus(h, today) === 'expired')
    .map((h) => h.expires!)
    .sort()
    .at(-1);
  const validFrom = mine
    .filter((h) => qualificationStatus(h, today) === 'not-yet-valid')
    .map((h) => h.issued)
    .sort()
    .at(0);
  return { valid: false as const, expiredOn, validFrom };
}

/**
 * Every reason an operator may not start an operation now (issue #3, start checks a–d). An empty
 * list means go. A trainee without a qualification may start only when a trainer who holds it,
 * valid today, co-signs.
 */
export function checkStart(f: StartFacts): StartRefusal[] {
  const refusals: StartRefusal[] = [];
  for (const q of f.requiredQualifications) {
    const own = holds(f.operator.qualifications, q, f.today);
    if (own.valid) continue;
    if (f.trainer && holds(f.trainer.qualifications, q, f.today).valid) continue;
    const why =
      own.expiredOn && own.validFrom
        ? `expired on ${own.expiredOn}, and its renewal is valid only from ${own.validFrom}`
        : own.expiredOn
          ? `expired on ${own.expiredOn}`
          : own.validFrom
            ? `is valid only from ${own.validFrom}`
            : 'is not held';
    const trainerNote = f.trainer ? `, and trainer ${f.trainer.personId} does not hold it valid either` : '';
    refusals.push({
      code: 'LOOM_START_NOT_QUALIFIED',
      subject: q,
      message: `${f.operator.personId}'s qualification '${q}' ${why}${trainerNote}.`,
    });
  }
  if (!isAbleToStart(f.workUnit.state)) {
    refusals.push({
      code: 'LOOM_START_EQUIPMENT_UNAVAILABLE',
      subject: f.workUnit.id,
      message: `Work unit ${f.workUnit.id} is ${f.workUnit.state}${f.workUnit.stateReason ? ` (${f.workUnit.stateReason})` : ''}.`,
    });
  }
  if (f.predecessor && f.predecessor.goodQuantity < f.predecessor.needed) {
    refusals.push({
      code: 'LOOM_START_PREDECESSOR_SHORT',
      subject: f.predecessor.operationId,
      message: `The previous operation ${f.predecessor.operationId} produced ${formatQuantity(f.predecessor.goodQuantity)} good, ${formatQuantity(f.predecessor.needed)} needed.`,
    });
  }
  for (const lot of f.lots) {
    if (lot.status !== 'Released') {
      refusals.push({
        code: 'LOOM_START_LOT_NOT_RELEASED',
        subject: lot.id,
        message: `Lot ${lot.id} is ${lot.status}, not Released.`,
      });
    }
    if (f.bomMaterials && lot.material && !f.bomMaterials.includes(lot.material)) {
      refusals.push({
        code: 'LOOM_START_LOT_NOT_IN_BOM',
        subject: lot.id,
        message: `Lot ${lot.id} is ${lot.material}, which is not in the operation's bill of materials (${f.bomMaterials.join(', ') || 'none'}).`,
      });
    }
  }
  return refusals;
}

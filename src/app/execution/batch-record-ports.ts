import type { Quantity } from '../../domain/shared/quantity.ts';
import type { Lot } from '../material/material-ports.ts';
import type { ElectronicSignature } from '../ports.ts';
import type { NcrRecord, QualityResultRecord } from '../quality/quality-ports.ts';
import type { OrderOperation, ProductionOrder } from './execution-ports.ts';

/** One row of an operation's timeline (`operation_activities`): start, pause, resume, hold, … */
export interface OperationActivity {
  readonly operationPk: number;
  readonly kind: string;
  readonly at: Date;
  readonly actor: string;
  readonly personId: string | null;
  readonly workUnitId: string | null;
  /** What the activity carried: the override reason and signer, the NCR that inserted a rework, … */
  readonly detail: unknown;
}

/** A quantity taken from a lot at one of the order's operations, with the lot's material and unit. */
export interface LotConsumption {
  readonly id: number;
  readonly operationPk: number;
  readonly lotId: string;
  readonly materialId: string;
  readonly unitId: string;
  readonly quantity: Quantity;
  readonly intoLotId: string | null;
  readonly actor: string;
  readonly personId: string | null;
  readonly equipmentId: string | null;
  readonly at: Date;
}

/**
 * An audit entry about the order or something of it, reduced to what the record shows. It carries
 * no chain position on purpose: the record's content hash must not change when the chainer links
 * a just-committed entry a second later.
 */
export interface RecordAuditEntry {
  readonly at: string;
  readonly actorName: string;
  readonly action: string;
  readonly entityType: string;
  readonly entityId: string;
  readonly reason: string | null;
  readonly signature: ElectronicSignature | null;
}

/**
 * Everything recorded about one production order, read from one consistent snapshot so that a
 * record (and its hash) never mixes states from before and after a concurrent change.
 */
export interface BatchRecordData {
  readonly order: ProductionOrder;
  /** In sequence order: rework operations sit right after the step they rework. */
  readonly operations: readonly OrderOperation[];
  readonly activities: readonly OperationActivity[];
  readonly consumptions: readonly LotConsumption[];
  /** Lots and serials produced by the order's operations (`lots.produced_by`). */
  readonly producedLots: readonly Lot[];
  readonly results: readonly QualityResultRecord[];
  readonly ncrs: readonly NcrRecord[];
  /**
   * Audit entries whose entity is the order (`production-order`), one of its operations
   * (`order-operation`), one of its NCRs (`ncr`, by number) or a lot it consumed, produced or
   * named in a result or NCR (`lot`); ordered by time.
   */
  readonly audit: readonly RecordAuditEntry[];
  /** Names of the plant persons the record mentions, by person id. */
  readonly people: ReadonlyMap<string, string>;
}

export interface BatchRecordStore {
  /** The order's record data, or null when there is no such order. */
  load(orderId: string): Promise<BatchRecordData | null>;
}

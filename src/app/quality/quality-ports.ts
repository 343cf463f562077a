import type { CharacteristicSpec, Disposition, NcrState, Verdict } from '../../domain/quality/quality.ts';
import type { Quantity } from '../../domain/shared/quantity.ts';
import type { OperationState } from '../../domain/work-order/operation-state.ts';
import type { ElectronicSignature, Tx } from '../ports.ts';

/** A characteristic as snapshotted into an order operation at release (with its name and unit). */
export interface OperationCharacteristic extends CharacteristicSpec {
  readonly name: string;
  readonly unit: string | null;
  readonly target: number | null;
}

/** What quality needs to know about one order operation. */
export interface QualityOperation {
  readonly pk: number;
  readonly orderId: string;
  readonly productId: string;
  readonly operationId: string;
  readonly sequence: number;
  readonly name: string;
  readonly state: OperationState;
  readonly workUnitId: string | null;
  readonly characteristics: readonly OperationCharacteristic[];
  readonly isRework: boolean;
  readonly reworkOf: number | null;
  readonly reworkLoop: number;
}

export interface NewQualityResult {
  readonly operationPk: number;
  readonly characteristic: OperationCharacteristic;
  readonly numeric: number | null;
  readonly attribute: Verdict | null;
  readonly verdict: Verdict;
  readonly lotId: string | null;
  readonly actor: string;
  readonly personId: string | null;
  readonly at: Date;
}

export interface QualityResultRecord {
  readonly id: number;
  readonly operationPk: number;
  readonly characteristic: string;
  readonly kind: 'numeric' | 'attribute';
  /** A number for a numeric characteristic, "pass"/"fail" for an attribute. */
  readonly value: number | Verdict;
  readonly lsl: number | null;
  readonly usl: number | null;
  readonly verdict: Verdict;
  readonly lotId: string | null;
  readonly actor: string;
  readonly personId: string | null;
  readonly at: string;
  readonly ncr: { readonly id: number; readonly number: string } | null;
}

export interface NewNcr {
  readonly orderId: string;
  readonly operationPk: number;
  readonly resultId: number | null;
  readonly characteristicId: string | null;
  readonly lotId: string | null;
  readonly quantity: Quantity;
  readonly description: string;
  readonly causeCode: string | null;
  readonly createdBy: string;
  readonly at: Date;
}

export interface NcrRecord {
  readonly id: number;
  readonly number: string;
  readonly orderId: string;
  readonly operationPk: number;
  readonly operationId: string;
  readonly resultId: number | null;
  readonly characteristicId: string | null;
  readonly lotId: string | null;
  readonly quantity: Quantity;
  readonly description: string;
  readonly causeCode: string | null;
  readonly state: NcrState;
  readonly disposition: Disposition | null;
  readonly dispositionReason: string | null;
  readonly dispositionedBy: string | null;
  readonly dispositionedAt: string | null;
  readonly signature: ElectronicSignature | null;
  readonly reworkOperationPk: number | null;
  readonly createdBy: string;
  readonly createdAt: string;
}

export interface NcrFilter {
  readonly state?: NcrState | undefined;
  readonly orderId?: string | undefined;
  readonly limit: number;
}

export interface NcrDispositionPatch {
  readonly disposition: Disposition;
  readonly causeCode: string;
  readonly reason: string;
  readonly by: string;
  readonly at: Date;
  readonly signature: ElectronicSignature | null;
  readonly reworkOperationPk: number | null;
}

export interface QualityEventInput {
  readonly kind: 'good' | 'scrap' | 'rework';
  readonly quantity: Quantity;
  readonly orderId: string;
  readonly productId: string;
  readonly operationPk: number;
  readonly operationId: string;
  readonly routingStep: string;
  readonly workUnitId: string | null;
  readonly causeCode: string | null;
  readonly firstPass: boolean;
  readonly ncrId: number;
  readonly at: Date;
}

/** Storage for results, NCRs and their effects. Every method takes the caller's transaction. */
export interface QualityStore {
  operation(tx: Tx | null, pk: number, lock?: 'share' | 'update'): Promise<QualityOperation | null>;
  lockOrder(tx: Tx, orderId: string): Promise<void>;
  personIdOf(tx: Tx, username: string): Promise<string | null>;
  lot(
    tx: Tx,
    id: string,
    forUpdate?: boolean,
  ): Promise<{ id: string; kind: string; status: string; orderId: string | null } | null>;
  /**
   * What an operation plans and how much of it is accounted for: reported good and scrap (by
   * completion or NCR disposition), and units under NCRs not yet counted in either (open, or sent
   * to rework) on the operation's own units (no lot, or a lot of its order). The completion's
   * accounting, in one place for NCRs.
   */
  ncrCoverage(
    tx: Tx,
    operationPk: number,
  ): Promise<{ planned: Quantity; reported: Quantity; underNcr: Quantity }>;
  setLotStatus(tx: Tx, id: string, status: string, at: Date): Promise<void>;
  reasonCode(tx: Tx, code: string): Promise<{ category: string; active: boolean } | null>;
  insertResult(tx: Tx, r: NewQualityResult): Promise<QualityResultRecord>;
  results(operationPk: number): Promise<QualityResultRecord[]>;
  insertNcr(tx: Tx, n: NewNcr): Promise<NcrRecord>;
  ncr(tx: Tx | null, id: number, forUpdate?: boolean): Promise<NcrRecord | null>;
  ncrs(filter: NcrFilter): Promise<NcrRecord[]>;
  dispositionNcr(tx: Tx, id: number, patch: NcrDispositionPatch): Promise<NcrRecord>;
  closeNcr(tx: Tx, id: number): Promise<NcrRecord>;
  /** The highest rework loop inserted so far for the routing step operation `rootPk` (0 when none). */
  lastReworkLoop(tx: Tx, rootPk: number): Promise<number>;
  /** Inserts a Ready rework copy of `root` at `root.sequence + loop`; returns the new operation's pk and id. */
  insertReworkOperation(
    tx: Tx,
    root: QualityOperation,
    loop: number,
    quantity: Quantity,
  ): Promise<{ pk: number; operationId: string; sequence: number; name: string }>;
  addOperationQuantity(
    tx: Tx,
    pk: number,
    field: 'good' | 'scrap' | 'rework',
    quantity: Quantity,
  ): Promise<void>;
  addActivity(
    tx: Tx,
    a: { operationPk: number; kind: string; actor: string; detail: unknown; at: Date },
  ): Promise<void>;
  addProductionEvent(tx: Tx, e: QualityEventInput): Promise<void>;
}

/** Query of the quality KPIs; `null` bounds are open. */
export interface KpiQuery {
  readonly from: Date | null;
  readonly to: Date | null;
  readonly productId: string | null;
}

export const KPI_GROUPS = ['operation', 'product', 'workUnit', 'cause', 'shift'] as const;
export type KpiGroupBy = (typeof KPI_GROUPS)[number];

/** Sums of production-event quantities for one group (definitions in docs/kpi.md). */
export interface KpiCounts {
  readonly processed: Quantity;
  readonly firstPassGood: Quantity;
  readonly good: Quantity;
  readonly rework: Quantity;
  readonly scrap: Quantity;
}

export interface KpiGroupRow extends KpiCounts {
  readonly key: Readonly<Record<string, string | null>>;
}

export interface ReworkLoopRow {
  readonly productId: string;
  readonly operation: string;
  readonly reworkOperations: number;
  readonly maxLoop: number;
  readonly reworkQuantity: Quantity;
}

export interface KpiStore {
  groups(q: KpiQuery, groupBy: KpiGroupBy): Promise<KpiGroupRow[]>;
  /** Totals over the whole selection (the denominator of rates by cause). */
  totals(q: KpiQuery): Promise<KpiCounts>;
  /** Per product and routing step: what rolled throughput yield multiplies. */
  steps(q: KpiQuery): Promise<(KpiCounts & { productId: string; operation: string })[]>;
  reworkLoops(q: KpiQuery): Promise<ReworkLoopRow[]>;
  /** Whether the plant model has this product, or production events were recorded for it. */
  productKnown(productId: string): Promise<boolean>;
}

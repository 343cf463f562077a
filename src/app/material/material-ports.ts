import type { Quantity } from '../../domain/shared/quantity.ts';
import type { Tx } from '../ports.ts';

export const LOT_STATUSES = ['Released', 'Quarantine', 'Blocked', 'Consumed'] as const;
export type LotStatus = (typeof LOT_STATUSES)[number];
export type LotKind = 'lot' | 'serial';
export type GenealogyKind = 'consume' | 'split' | 'merge';

/** A lot (a quantity of one material) or a serial (one unit of it). */
export interface Lot {
  readonly id: string;
  readonly kind: LotKind;
  readonly materialId: string;
  readonly quantity: Quantity;
  readonly unitId: string;
  readonly status: LotStatus;
  readonly location: string | null;
  readonly supplierLot: string | null;
  readonly producedBy: number | null;
  readonly orderId: string | null;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

export interface MaterialInfo {
  readonly id: string;
  readonly unitId: string;
  readonly class: string;
  readonly tracking: 'lot' | 'serial' | 'none';
}

/** What consuming and producing need to know about an order operation (a snapshot, locked). */
export interface OperationForMaterial {
  readonly pk: number;
  readonly orderId: string;
  /** The ERP's order number, carried on events so the ERP can file them. */
  readonly orderExternalId: string | null;
  readonly operationId: string;
  readonly name: string;
  readonly state: string;
  readonly workUnitId: string | null;
  readonly personId: string | null;
  readonly orderMaterialId: string;
  /** The order's state when the operation was locked (Released or InProgress to record production). */
  readonly orderState: string;
  /** The BOM snapshot: `[{material, quantity, unit?}]`. */
  readonly bom: readonly unknown[];
}

/** A lot as it is created; the store stamps the times. */
export type NewLot = Omit<Lot, 'createdAt' | 'updatedAt'>;

export interface NewEdge {
  readonly fromLot: string;
  readonly toLot: string;
  readonly kind: GenealogyKind;
  readonly quantity: Quantity;
  readonly operationPk: number | null;
  readonly actor: string;
  readonly personId: string | null;
  readonly equipmentId: string | null;
}

export interface Consumption {
  readonly id: number;
  readonly operationPk: number;
  readonly lotId: string;
  readonly intoLotId: string | null;
  readonly quantity: Quantity;
  readonly actor: string;
  readonly personId: string | null;
  readonly equipmentId: string | null;
  readonly at: Date;
}

export interface LotFilter {
  readonly materialId?: string;
  readonly status?: LotStatus;
  readonly limit: number;
}

/** Lots, consumptions and the operation rows they hang off. Every write takes the caller's Tx. */
export interface LotStore {
  get(tx: Tx | null, id: string): Promise<Lot | null>;
  /** Locks the rows `FOR UPDATE` in id order (the fixed lock order: order → operation → lots by id). */
  lockMany(tx: Tx, ids: readonly string[]): Promise<Lot[]>;
  list(filter: LotFilter): Promise<Lot[]>;
  /** `false` when the id is taken. */
  insert(tx: Tx, lot: NewLot): Promise<Lot | false>;
  update(tx: Tx, id: string, patch: Partial<Pick<Lot, 'quantity' | 'status' | 'location'>>): Promise<Lot>;
  /**
   * Takes `quantity` off a locked lot; a lot taken to 0 becomes Consumed. `false` when the CHECK
   * (quantity >= 0) refused it: the row lock should make that impossible, the constraint makes sure.
   */
  take(tx: Tx, id: string, quantity: Quantity): Promise<Lot | false>;
  material(tx: Tx | null, id: string): Promise<MaterialInfo | null>;
  personOf(tx: Tx, username: string): Promise<string | null>;
  /** The operation `FOR UPDATE`, so consumptions and outputs of one operation see each other. */
  lockOperation(tx: Tx, pk: number): Promise<OperationForMaterial | null>;
  insertConsumption(tx: Tx, c: Omit<Consumption, 'id' | 'at'>): Promise<Consumption>;
  consumptionsWithoutInto(tx: Tx, operationPk: number): Promise<Consumption[]>;
  producedBy(tx: Tx, operationPk: number): Promise<Lot[]>;
}

/**
 * One genealogy edge as a trace returns it: already in the API's shape (ADR 0012), so the trace
 * passes it through instead of copying it.
 */
export interface GenealogyEdgeRecord {
  readonly id: number;
  readonly kind: GenealogyKind;
  readonly from: string;
  readonly to: string;
  /** Shortest exact decimal text (12.5, 3), as formatQuantity writes it. */
  readonly quantity: string;
  /** When the edge was written: ISO 8601 in UTC with milliseconds. */
  readonly at: string;
  readonly actor: string;
  /** The person behind `actor`; one object per person, shared by every edge of one trace. */
  readonly person: { readonly id: string; readonly name: string | null } | null;
  readonly equipment: string | null;
  /** The pk of the operation that wrote the edge (a key of the trace's operations), or null (split, merge, move). */
  readonly operation: number | null;
}

export interface QualityResultRecord {
  readonly characteristicId: string;
  readonly kind: string;
  readonly value: string;
  readonly lsl: string | null;
  readonly usl: string | null;
  readonly verdict: string;
  readonly lotId: string | null;
  readonly actor: string;
  readonly at: string;
}

/** An operation on a trace's edges, with its quality results for the operation itself or for lots in the trace. */
export interface TraceOperation {
  readonly id: number;
  readonly orderId: string;
  readonly operationId: string;
  readonly name: string;
  readonly workUnit: string | null;
  readonly qualityResults: readonly QualityResultRecord[];
}

export interface TraceLot {
  readonly id: string;
  readonly kind: LotKind;
  readonly material: string;
  readonly materialName: string;
  readonly materialClass: string;
  /** Shortest exact decimal text (12.5, 3), as formatQuantity writes it. */
  readonly quantity: string;
  readonly unit: string;
  readonly status: LotStatus;
  readonly orderId: string | null;
  readonly supplierLot: string | null;
  /** Whether anything was made from the lot; only present when asked for (`outgoing`), for recalls. */
  readonly hasOutgoing?: boolean;
}

export interface OrderSummary {
  readonly id: string;
  readonly productId: string;
  readonly externalId: string | null;
  readonly state: string;
}

/** What a walk reached, by key: the lots at both ends of its edges and its root, and the operations on its edges. */
export interface ReachedKeys {
  readonly lots: readonly string[];
  readonly operations: readonly number[];
}

/** A trace's `lots` and `operations` as the JSON text of TraceView's two maps, and what the use case needs besides. */
export interface TraceListsJson {
  readonly lots: string;
  readonly operations: string;
  readonly lotCount: number;
  /** Whether the trace's root lot exists. */
  readonly found: boolean;
}

/**
 * Looks up and serialises a trace's lots and operations away from the event loop that builds the
 * tree (a worker thread, ADR 0017). `null`: not available now (starting, or restarting after a
 * failure); a promise of `null`: it went away before answering. Either way the caller does the
 * same work itself. A database error rejects, as the caller's own lookups would.
 */
export interface TraceListsSource {
  listsJson(lotId: string, keys: ReachedKeys): Promise<TraceListsJson | null> | null;
}

export interface GenealogyStore {
  addEdges(tx: Tx, edges: readonly NewEdge[]): Promise<void>;
  /**
   * Every edge reachable from `lotId` (backward: towards what it was made from; forward: towards
   * what it went into), each once, ordered by its smallest depth, then id; walks at most
   * `maxDepth` levels. `truncated`: edges beyond `maxDepth` were left out.
   */
  walk(
    lotId: string,
    direction: 'backward' | 'forward',
    maxDepth: number,
  ): Promise<{ edges: GenealogyEdgeRecord[]; truncated: boolean }>;
  /**
   * What a walk reached (`keys`, from reachedKeys): the lots `keys.lots` names that exist (the
   * walk's root among them, unless it does not exist), and the operations `keys.operations` names
   * with their quality results for themselves or for those lots. `outgoing` also fills each
   * lot's `hasOutgoing`. A separate call, so the caller can work on the edges while PostgreSQL
   * looks these up.
   */
  reached(
    keys: ReachedKeys,
    opts?: { outgoing?: boolean },
  ): Promise<{ lots: TraceLot[]; operations: TraceOperation[] }>;
  orders(ids: readonly string[]): Promise<OrderSummary[]>;
}

import type { EquipmentState } from '../../domain/equipment/equipment-state.ts';
import type { QualificationHolding } from '../../domain/personnel/person.ts';
import type { Quantity } from '../../domain/shared/quantity.ts';
import type { OperationState } from '../../domain/work-order/operation-state.ts';
import type { OrderState } from '../../domain/work-order/order-state.ts';
import type { Tx } from '../ports.ts';

export interface ProductionOrder {
  readonly id: string;
  readonly externalId: string | null;
  readonly productId: string;
  readonly materialId: string;
  readonly quantity: Quantity;
  readonly unitId: string;
  readonly dueAt: Date | null;
  readonly priority: number;
  readonly state: OrderState;
  readonly heldFrom: OrderState | null;
  readonly holdReason: string | null;
  readonly releasedAt: Date;
  readonly startedAt: Date | null;
  readonly completedAt: Date | null;
  readonly closedAt: Date | null;
  readonly createdBy: string;
  readonly requestHash: string | null;
}

export interface OrderOperation {
  readonly pk: number;
  readonly orderId: string;
  readonly operationId: string;
  readonly sequence: number;
  readonly name: string;
  readonly workCenterId: string;
  readonly allowedWorkUnits: string[];
  readonly workUnitId: string | null;
  readonly standardCycleTimeS: number;
  readonly requiredQualifications: string[];
  readonly parameters: unknown[];
  readonly bom: unknown[];
  readonly characteristics: unknown[];
  readonly plannedQuantity: Quantity;
  readonly goodQuantity: Quantity;
  readonly scrapQuantity: Quantity;
  readonly reworkQuantity: Quantity;
  readonly state: OperationState;
  readonly heldFrom: OperationState | null;
  readonly isRework: boolean;
  readonly reworkOf: number | null;
  readonly reworkLoop: number;
  readonly startedAt: Date | null;
  readonly startedBy: string | null;
  readonly personId: string | null;
  readonly completedAt: Date | null;
  readonly completedBy: string | null;
}

export interface RoutingStep {
  readonly operationId: string;
  readonly name: string;
  readonly workCenterId: string;
  readonly workUnits: string[];
  readonly standardCycleTimeS: number;
  readonly qualifications: string[];
  readonly parameters: unknown[];
  readonly bom: unknown[];
  readonly characteristics: unknown[];
}

export interface ProductRouting {
  readonly productId: string;
  readonly materialId: string;
  readonly unitId: string;
  /** One serial per unit: an order of it is for whole units. */
  readonly serialTracked: boolean;
  readonly steps: RoutingStep[];
}

export interface PersonWithQualifications {
  readonly id: string;
  readonly name: string;
  readonly username: string | null;
  readonly qualifications: QualificationHolding[];
}

export interface NewOrder {
  readonly id: string;
  readonly externalId: string | null;
  readonly productId: string;
  readonly materialId: string;
  readonly quantity: Quantity;
  readonly unitId: string;
  readonly dueAt: Date | null;
  readonly priority: number;
  readonly createdBy: string;
  readonly requestHash: string | null;
}

export interface NewOperation {
  readonly operationId: string;
  readonly sequence: number;
  readonly name: string;
  readonly workCenterId: string;
  readonly allowedWorkUnits: string[];
  readonly standardCycleTimeS: number;
  readonly requiredQualifications: string[];
  readonly parameters: unknown[];
  readonly bom: unknown[];
  readonly characteristics: unknown[];
  readonly plannedQuantity: Quantity;
  readonly state: OperationState;
}

export interface DispatchRow {
  readonly operation: OrderOperation;
  readonly order: Pick<
    ProductionOrder,
    'id' | 'priority' | 'dueAt' | 'releasedAt' | 'productId' | 'externalId'
  >;
  readonly predecessorsCompleted: boolean;
}

export interface OrderFilter {
  readonly state?: string;
  readonly productId?: string;
  readonly limit: number;
}

export type OrderPatch = Partial<
  Pick<
    ProductionOrder,
    | 'state'
    | 'heldFrom'
    | 'holdReason'
    | 'startedAt'
    | 'completedAt'
    | 'closedAt'
    | 'quantity'
    | 'dueAt'
    | 'priority'
    | 'requestHash'
  >
>;

export type OperationPatch = Partial<
  Pick<
    OrderOperation,
    | 'state'
    | 'heldFrom'
    | 'workUnitId'
    | 'startedAt'
    | 'startedBy'
    | 'personId'
    | 'completedAt'
    | 'completedBy'
    | 'goodQuantity'
    | 'scrapQuantity'
    | 'plannedQuantity'
  >
>;

export interface ProductionEventInput {
  readonly kind: 'good' | 'scrap' | 'rework';
  readonly quantity: Quantity;
  readonly order: ProductionOrder;
  readonly operation: OrderOperation;
  readonly routingStep: string;
  readonly workUnitId: string | null;
  readonly causeCode: string | null;
  readonly firstPass: boolean;
  readonly at: Date;
}

export interface ExecutionStore {
  routing(tx: Tx, productId: string): Promise<ProductRouting | null>;
  nextOrderId(tx: Tx): Promise<string>;
  insertOrder(tx: Tx, order: NewOrder): Promise<ProductionOrder>;
  order(tx: Tx | null, id: string, forUpdate?: boolean): Promise<ProductionOrder | null>;
  orderByExternalId(tx: Tx, externalId: string, forUpdate?: boolean): Promise<ProductionOrder | null>;
  orders(filter: OrderFilter): Promise<ProductionOrder[]>;
  updateOrder(tx: Tx, id: string, patch: OrderPatch): Promise<ProductionOrder>;
  insertOperations(tx: Tx, orderId: string, ops: readonly NewOperation[]): Promise<OrderOperation[]>;
  deleteOperations(tx: Tx, orderId: string): Promise<void>;
  /** Sets every operation of an order to plan `quantity` (a repeat of an unstarted order that changed only its quantity). */
  setPlannedQuantity(tx: Tx, orderId: string, quantity: Quantity): Promise<OrderOperation[]>;
  operation(tx: Tx | null, pk: number, forUpdate?: boolean): Promise<OrderOperation | null>;
  operations(tx: Tx | null, orderId: string): Promise<OrderOperation[]>;
  updateOperation(tx: Tx, pk: number, patch: OperationPatch): Promise<OrderOperation>;
  /**
   * The same change, written in the transaction's one statement at commit (ADR 0011): for an
   * operation read under its order's lock and not read again in this transaction. Returns the
   * operation as it will be.
   */
  deferOperationUpdate(tx: Tx, op: OrderOperation, patch: OperationPatch): OrderOperation;
  addActivity(
    tx: Tx,
    a: {
      operationPk: number;
      kind: string;
      actor: string;
      personId?: string | null;
      workUnitId?: string | null;
      detail?: unknown;
      at: Date;
    },
  ): Promise<void>;
  dispatch(filter: { workCenterId?: string; workUnitId?: string }): Promise<DispatchRow[]>;
  equipment(
    tx: Tx | null,
    id: string,
  ): Promise<{ id: string; level: string; parentId: string | null } | null>;
  equipmentState(
    tx: Tx | null,
    id: string,
  ): Promise<{ state: EquipmentState; reason: string | null; since: Date | null }>;
  setEquipmentState(
    tx: Tx,
    id: string,
    s: { state: EquipmentState; reason: string | null; source: string; actor: string; at: Date },
  ): Promise<void>;
  personByUsername(tx: Tx | null, username: string): Promise<PersonWithQualifications | null>;
  lotStatuses(tx: Tx, ids: readonly string[]): Promise<Map<string, { status: string; materialId: string }>>;
  addProductionEvent(tx: Tx, e: ProductionEventInput): Promise<void>;
  reasonCodeExists(tx: Tx, code: string): Promise<boolean>;
  /**
   * Locks the order of an operation, then reads all its operations in sequence, in two statements;
   * with the quantity under NCRs raised at `pk`. The operations are not row-locked: every writer of
   * an order's operations takes the order's lock first (the one lock order of execution use cases),
   * so what is read stays current until commit.
   */
  lockForOperation(
    tx: Tx,
    pk: number,
  ): Promise<{ order: ProductionOrder; operations: OrderOperation[]; ncrQuantity: Quantity } | null>;
  reasonCodes(): Promise<{ code: string; category: string; description: string; active: boolean }[]>;
}

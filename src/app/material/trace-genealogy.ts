import { groupBy } from '../../domain/shared/group-by.ts';
import { ok, type Result } from '../../domain/shared/result.ts';
import { lotNotFound } from './lot-view.ts';
import type {
  GenealogyEdgeRecord,
  GenealogyStore,
  OrderSummary,
  QualityResultRecord,
  TraceLot,
} from './material-ports.ts';

/** Deeper than any real bill of materials; a genealogy this deep is a data error, not a product. */
export const TRACE_DEPTH_LIMIT = 50;

export type TraceDirection = 'backward' | 'forward';

export interface TraceLotView {
  readonly id: string;
  readonly kind: string;
  readonly material: string;
  readonly materialName: string;
  readonly materialClass: string;
  readonly quantity: string;
  readonly unit: string;
  readonly status: string;
  readonly orderId: string | null;
  readonly supplierLot: string | null;
}

export interface TraceEdgeView {
  readonly id: number;
  readonly kind: string;
  readonly from: string;
  readonly to: string;
  readonly quantity: string;
  readonly at: string;
  readonly actor: string;
  readonly person: { readonly id: string; readonly name: string | null } | null;
  readonly equipment: string | null;
  readonly operation: {
    readonly id: number;
    readonly orderId: string;
    readonly operationId: string;
    readonly name: string;
    readonly workUnit: string | null;
  } | null;
  readonly qualityResults: readonly QualityResultRecord[];
}

/**
 * One lot in the tree, reached through `via`. Genealogy is a graph (a split lot can come back
 * together in one unit): a lot is expanded the first time it appears; later appearances are
 * marked `repeated` and point to it, so the answer stays as large as the graph, not its paths.
 */
export interface TraceNode {
  readonly lot: TraceLotView;
  readonly via?: TraceEdgeView | undefined;
  readonly repeated?: true | undefined;
  readonly children: TraceNode[];
}

export interface TraceView {
  readonly direction: TraceDirection;
  readonly root: TraceNode;
  readonly lots: number;
  readonly edges: number;
  readonly depthLimit: number;
  /** True when the walk stopped at the depth limit with edges beyond it. */
  readonly depthLimitReached: boolean;
}

export interface RecallView {
  readonly suspect: TraceLotView;
  /** Every finished unit or lot the suspect reached: forward leaves and lots of class finished. */
  readonly finished: TraceLotView[];
  readonly orders: OrderSummary[];
  readonly reachedLots: number;
}

const lotOut = (l: TraceLot): TraceLotView => ({
  id: l.id,
  kind: l.kind,
  material: l.materialId,
  materialName: l.materialName,
  materialClass: l.materialClass,
  quantity: l.quantity,
  unit: l.unitId,
  status: l.status,
  orderId: l.orderId,
  supplierLot: l.supplierLot,
});

type OperationView = NonNullable<TraceEdgeView['operation']>;

const edgeOut = (e: GenealogyEdgeRecord, operation: OperationView | null): TraceEdgeView => ({
  id: e.id,
  kind: e.kind,
  from: e.fromLot,
  to: e.toLot,
  quantity: e.quantity,
  at: e.at,
  actor: e.actor,
  person: e.personId === null ? null : { id: e.personId, name: e.personName },
  equipment: e.equipmentId,
  operation,
  qualityResults: e.qualityResults,
});

/** One view per operation, shared by every edge it made. */
function operationViews(): (e: GenealogyEdgeRecord) => OperationView | null {
  const views = new Map<number, OperationView>();
  return (e) => {
    if (e.operation === null) return null;
    let v = views.get(e.operation.pk);
    if (!v) {
      v = {
        id: e.operation.pk,
        orderId: e.operation.orderId,
        operationId: e.operation.operationId,
        name: e.operation.name,
        workUnit: e.operation.workUnitId,
      };
      views.set(e.operation.pk, v);
    }
    return v;
  };
}

export class GenealogyTrace {
  readonly #genealogy: GenealogyStore;

  constructor(deps: { genealogy: GenealogyStore }) {
    this.#genealogy = deps.genealogy;
  }

  /** Backward: what `id` was made from, all levels down to received material. Forward: what it went into. */
  async trace(id: string, direction: TraceDirection): Promise<Result<TraceView>> {
    const found = await this.#genealogy.trace(id, direction, TRACE_DEPTH_LIMIT);
    const lots = new Map(found.lots.map((l) => [l.id, lotOut(l)]));
    if (!lots.has(id)) return lotNotFound(id);
    const edges = found.edges;
    const next = groupBy(edges, (e) => (direction === 'backward' ? e.toLot : e.fromLot));
    const operationOf = operationViews();
    const expanded = new Set<string>();
    // Every node has the same four properties (undefined ones are left out of the JSON): one
    // object shape, which V8 builds and serialises much faster than five shapes made by spreads.
    const build = (lotId: string, via?: GenealogyEdgeRecord): TraceNode => {
      const lot = lots.get(lotId)!;
      const edge = via ? edgeOut(via, operationOf(via)) : undefined;
      if (expanded.has(lotId)) return { lot, via: edge, repeated: true, children: [] };
      expanded.add(lotId);
      const out = next.get(lotId) ?? [];
      const children: TraceNode[] = new Array<TraceNode>(out.length);
      for (let i = 0; i < out.length; i++) {
        const e = out[i]!;
        children[i] = build(direction === 'backward' ? e.fromLot : e.toLot, e);
      }
      return { lot, via: edge, repeated: undefined, children };
    };
    return ok({
      direction,
      root: build(id),
      lots: lots.size,
      edges: edges.length,
      depthLimit: TRACE_DEPTH_LIMIT,
      depthLimitReached: found.truncated,
    });
  }

  /** From one suspect lot: every finished unit or lot it reached and every production order involved. */
  async recall(id: string): Promise<Result<RecallView>> {
    const { edges, lots } = await this.#genealogy.trace(id, 'forward', TRACE_DEPTH_LIMIT, { outgoing: true });
    const suspect = lots.find((l) => l.id === id);
    if (!suspect) return lotNotFound(id);
    const reached = [...new Set(edges.map((e) => e.toLot))];
    const finished = lots
      .filter((l) => l.id !== id && (!l.hasOutgoing || l.materialClass === 'finished'))
      .sort((a, b) => a.id.localeCompare(b.id));
    const orderIds = new Set<string>();
    for (const e of edges) if (e.operation) orderIds.add(e.operation.orderId);
    for (const l of lots) if (l.id !== id && l.orderId !== null) orderIds.add(l.orderId);
    return ok({
      suspect: lotOut(suspect),
      finished: finished.map(lotOut),
      orders: await this.#genealogy.orders([...orderIds]),
      reachedLots: reached.length,
    });
  }
}

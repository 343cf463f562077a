import { groupBy } from '../../domain/shared/group-by.ts';
import { ok, type Result } from '../../domain/shared/result.ts';
import { lotNotFound } from './lot-view.ts';
import type {
  GenealogyEdgeRecord,
  GenealogyStore,
  OrderSummary,
  ReachedKeys,
  TraceListsJson,
  TraceListsSource,
  TraceLot,
  TraceOperation,
} from './material-ports.ts';

/** Deeper than any real bill of materials; a genealogy this deep is a data error, not a product. */
export const TRACE_DEPTH_LIMIT = 50;

export type TraceDirection = 'backward' | 'forward';

/** A lot as a trace shows it (the lots of a trace are listed once, by id). */
export type TraceLotView = Omit<TraceLot, 'hasOutgoing'>;

/** One edge in the tree: how a node's lot got into its parent's (backward) or what it went into (forward). */
export type TraceEdgeView = GenealogyEdgeRecord;

/** An operation on the trace's edges, listed once, with its quality results (for itself or a lot in the trace). */
export type TraceOperationView = TraceOperation;

/**
 * One lot in the tree (its id: the lot itself is in the trace's `lots`), reached through `via`.
 * Genealogy is a graph (a split lot can come back together in one unit): a lot is expanded the
 * first time it appears; later appearances are marked `repeated` and have no children, so the
 * answer stays as large as the graph, not its paths.
 */
export interface TraceNode {
  readonly lot: string;
  readonly via?: TraceEdgeView | undefined;
  readonly repeated?: true | undefined;
  readonly children: TraceNode[];
}

/**
 * A trace, normalised (ADR 0012): the tree holds ids and edges; each lot and each operation with
 * its quality results is stated once, in `lots` and `operations`, keyed by id.
 */
export interface TraceView {
  readonly direction: TraceDirection;
  readonly root: TraceNode;
  readonly lots: Readonly<Record<string, TraceLotView>>;
  readonly operations: Readonly<Record<string, TraceOperationView>>;
  readonly lotCount: number;
  readonly edgeCount: number;
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
  material: l.material,
  materialName: l.materialName,
  materialClass: l.materialClass,
  quantity: l.quantity,
  unit: l.unit,
  status: l.status,
  orderId: l.orderId,
  supplierLot: l.supplierLot,
});

/** Keyed by id, without a prototype: a lot named `__proto__` is just a key. */
function byId<T extends { readonly id: string | number }>(items: readonly T[]): Record<string, T> {
  const out = Object.create(null) as Record<string, T>;
  for (const item of items) out[item.id] = item;
  return out;
}

/** The keys of what a walk from `root` reached: its root and the lots at both ends of its edges, and the operations on them. */
export function reachedKeys(root: string, edges: readonly GenealogyEdgeRecord[]): ReachedKeys {
  const operations = new Set<number>();
  const lots = new Set<string>([root]);
  for (const e of edges) {
    if (e.operation !== null) operations.add(e.operation);
    lots.add(e.from);
    lots.add(e.to);
  }
  return { lots: [...lots], operations: [...operations] };
}

/**
 * A trace's lots and operations (as `reached` returns them, without `hasOutgoing`) as the JSON
 * text of TraceView's `lots` and `operations`: what `traceJson` puts into its answer. The trace
 * lists worker (ADR 0017) runs this too.
 */
export function traceListsJson(
  root: string,
  reached: { readonly lots: readonly TraceLotView[]; readonly operations: readonly TraceOperation[] },
): TraceListsJson {
  const lots = byId(reached.lots);
  return {
    lots: JSON.stringify(lots),
    operations: JSON.stringify(byId(reached.operations)),
    lotCount: reached.lots.length,
    found: root in lots,
  };
}

export class GenealogyTrace {
  readonly #genealogy: GenealogyStore;
  readonly #lists: TraceListsSource | undefined;

  /**
   * `lists`: where `traceJson` has the lots and operations looked up and serialised, off this
   * event loop (ADR 0017); without it, or while it is unavailable, here.
   */
  constructor(deps: { genealogy: GenealogyStore; lists?: TraceListsSource }) {
    this.#genealogy = deps.genealogy;
    this.#lists = deps.lists;
  }

  /** Backward: what `id` was made from, all levels down to received material. Forward: what it went into. */
  async trace(id: string, direction: TraceDirection): Promise<Result<TraceView>> {
    const walk = await this.#genealogy.walk(id, direction, TRACE_DEPTH_LIMIT);
    const reached = this.#genealogy.reached(reachedKeys(id, walk.edges));
    // Should building the tree throw, `reached` is never awaited: its rejection must not go unhandled.
    reached.catch(() => undefined);
    const root = buildTree(id, walk.edges, direction);
    const { lots: lotList, operations } = await reached;
    // The store lists a lot's hasOutgoing only when asked (recall), so its lots are views as they are.
    const lots = byId<TraceLotView>(lotList);
    if (!(id in lots)) return lotNotFound(id);
    return ok({
      direction,
      root,
      lots,
      operations: byId(operations),
      lotCount: lotList.length,
      edgeCount: walk.edges.length,
      depthLimit: TRACE_DEPTH_LIMIT,
      depthLimitReached: walk.truncated,
    });
  }

  /**
   * The trace as its JSON text, the same as `JSON.stringify` of `trace()`'s view. The tree is built
   * and serialised here while the lots and operations the walk reached are looked up and
   * serialised elsewhere (by the lists source, in a worker thread: ADR 0017), so the two halves of
   * a deep trace's work run on two cores instead of one after another on this event loop.
   */
  async traceJson(id: string, direction: TraceDirection): Promise<Result<string>> {
    const walk = await this.#genealogy.walk(id, direction, TRACE_DEPTH_LIMIT);
    const keys = reachedKeys(id, walk.edges);
    const offThread = this.#lists?.listsJson(id, keys) ?? null;
    // Without the lists source, the lookups still run (in PostgreSQL) while the tree is built.
    const here = offThread ? null : this.#genealogy.reached(keys);
    // Should building the tree throw, neither is awaited: a rejection must not go unhandled.
    offThread?.catch(() => undefined);
    here?.catch(() => undefined);
    const rootJson = JSON.stringify(buildTree(id, walk.edges, direction));
    const lists =
      (offThread && (await offThread)) ?? traceListsJson(id, await (here ?? this.#genealogy.reached(keys)));
    if (!lists.found) return lotNotFound(id);
    return ok(
      `{"direction":${JSON.stringify(direction)},"root":${rootJson},"lots":${lists.lots},` +
        `"operations":${lists.operations},"lotCount":${lists.lotCount},"edgeCount":${walk.edges.length},` +
        `"depthLimit":${TRACE_DEPTH_LIMIT},"depthLimitReached":${walk.truncated}}`,
    );
  }

  /** From one suspect lot: every finished unit or lot it reached and every production order involved. */
  async recall(id: string): Promise<Result<RecallView>> {
    const { edges } = await this.#genealogy.walk(id, 'forward', TRACE_DEPTH_LIMIT);
    const { lots, operations } = await this.#genealogy.reached(reachedKeys(id, edges), { outgoing: true });
    const suspect = lots.find((l) => l.id === id);
    if (!suspect) return lotNotFound(id);
    const reached = [...new Set(edges.map((e) => e.to))];
    const finished = lots
      .filter((l) => l.id !== id && (!l.hasOutgoing || l.materialClass === 'finished'))
      .sort((a, b) => a.id.localeCompare(b.id));
    const orderIds = new Set<string>();
    for (const o of operations) orderIds.add(o.orderId);
    for (const l of lots) if (l.id !== id && l.orderId !== null) orderIds.add(l.orderId);
    return ok({
      suspect: lotOut(suspect),
      finished: finished.map(lotOut),
      orders: await this.#genealogy.orders([...orderIds]),
      reachedLots: reached.length,
    });
  }
}

/**
 * The tree of a walk's edges from `root`. Genealogy is a graph: a lot is expanded the first time
 * it appears; later appearances are `repeated` leaves. Every node has the same four properties
 * (undefined ones are left out of the JSON): one object shape, which V8 builds and serialises much
 * faster than several shapes made by spreads.
 */
function buildTree(
  root: string,
  edges: readonly GenealogyEdgeRecord[],
  direction: TraceDirection,
): TraceNode {
  const backward = direction === 'backward';
  const next = groupBy(edges, (e) => (backward ? e.to : e.from));
  const expanded = new Set<string>();
  const build = (lot: string, via: TraceEdgeView | undefined): TraceNode => {
    if (expanded.has(lot)) return { lot, via, repeated: true, children: [] };
    expanded.add(lot);
    const out = next.get(lot) ?? [];
    const children: TraceNode[] = new Array<TraceNode>(out.length);
    for (let i = 0; i < out.length; i++) {
      const e = out[i]!;
      children[i] = build(backward ? e.from : e.to, e);
    }
    return { lot, via, repeated: undefined, children };
  };
  return build(root, undefined);
}

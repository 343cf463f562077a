import type { TraceEdgeView, TraceNode, TraceView } from './trace-genealogy.ts';

const lotLine = (trace: TraceView, n: TraceNode): string => {
  const l = trace.lots[n.lot]!;
  const extra = [
    l.supplierLot ? `supplier lot ${l.supplierLot}` : null,
    l.orderId ? `order ${l.orderId}` : null,
    n.repeated ? '(shown above)' : null,
  ].filter((x) => x !== null);
  return `${l.id}  ${l.material} (${l.materialName}) ${l.kind} ${l.quantity} ${l.unit} ${l.status}${extra.length ? `  ${extra.join(', ')}` : ''}`;
};

const edgeLine = (trace: TraceView, e: TraceEdgeView): string => {
  const parts = [`${trace.direction === 'backward' ? '←' : '→'} ${e.kind} ${e.quantity}`];
  const op = e.operation === null ? undefined : trace.operations[e.operation];
  if (op) {
    parts.push(`at order ${op.orderId} op ${op.operationId} '${op.name}'`);
    if (op.workUnit ?? e.equipment) parts.push(`on ${op.workUnit ?? e.equipment}`);
  }
  parts.push(`by ${e.person ? `${e.person.name ?? e.person.id} (${e.actor})` : e.actor}`, e.at);
  // The operation's results for the lot the edge went into (or for the operation as a whole).
  const results = (op?.qualityResults ?? []).filter((q) => q.lotId === null || q.lotId === e.to);
  if (results.length) {
    parts.push(`quality: ${results.map((q) => `${q.characteristicId}=${q.value} ${q.verdict}`).join(', ')}`);
  }
  return parts.join(' ');
};

/** The trace as an indented tree for a terminal (`loom trace`): each lot, and under it how it got there. */
export function formatTraceTree(trace: TraceView): string {
  const lines: string[] = [];
  const walk = (n: TraceNode, indent: string): void => {
    if (n.via) lines.push(`${indent}${edgeLine(trace, n.via)}`);
    lines.push(`${indent}${n.via ? '  ' : ''}${lotLine(trace, n)}`);
    for (const c of n.children) walk(c, `${indent}${n.via ? '    ' : '  '}`);
  };
  walk(trace.root, '');
  lines.push(
    `${trace.direction} trace: ${trace.lotCount} lots, ${trace.edgeCount} edges${trace.depthLimitReached ? `; stopped at the depth limit of ${trace.depthLimit}` : ''}`,
  );
  return lines.join('\n');
}

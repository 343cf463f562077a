import type { TraceEdgeView, TraceNode, TraceView } from './trace-genealogy.ts';

const lotLine = (n: TraceNode): string => {
  const l = n.lot;
  const extra = [
    l.supplierLot ? `supplier lot ${l.supplierLot}` : null,
    l.orderId ? `order ${l.orderId}` : null,
    n.repeated ? '(shown above)' : null,
  ].filter((x) => x !== null);
  return `${l.id}  ${l.material} (${l.materialName}) ${l.kind} ${l.quantity} ${l.unit} ${l.status}${extra.length ? `  ${extra.join(', ')}` : ''}`;
};

const edgeLine = (e: TraceEdgeView, direction: TraceView['direction']): string => {
  const parts = [`${direction === 'backward' ? '←' : '→'} ${e.kind} ${e.quantity}`];
  if (e.operation) {
    parts.push(`at order ${e.operation.orderId} op ${e.operation.operationId} '${e.operation.name}'`);
    if (e.operation.workUnit ?? e.equipment) parts.push(`on ${e.operation.workUnit ?? e.equipment}`);
  }
  parts.push(`by ${e.person ? `${e.person.name ?? e.person.id} (${e.actor})` : e.actor}`, e.at);
  if (e.qualityResults.length) {
    parts.push(
      `quality: ${e.qualityResults.map((q) => `${q.characteristicId}=${q.value} ${q.verdict}`).join(', ')}`,
    );
  }
  return parts.join(' ');
};

/** The trace as an indented tree for a terminal (`loom trace`): each lot, and under it how it got there. */
export function formatTraceTree(trace: TraceView): string {
  const lines: string[] = [];
  const walk = (n: TraceNode, indent: string): void => {
    if (n.via) lines.push(`${indent}${edgeLine(n.via, trace.direction)}`);
    lines.push(`${indent}${n.via ? '  ' : ''}${lotLine(n)}`);
    for (const c of n.children) walk(c, `${indent}${n.via ? '    ' : '  '}`);
  };
  walk(trace.root, '');
  lines.push(
    `${trace.direction} trace: ${trace.lots} lots, ${trace.edges} edges${trace.depthLimitReached ? `; stopped at the depth limit of ${trace.depthLimit}` : ''}`,
  );
  return lines.join('\n');
}

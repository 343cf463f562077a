/** A V8 CPU profile (`Profiler.stop`), reduced to where the on-CPU time of a process went. */
export interface CpuProfile {
  readonly nodes: readonly {
    readonly id: number;
    readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
  }[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

export interface ProfileShare {
  readonly name: string;
  readonly ms: number;
  readonly share: number;
}

/** node_modules package, Loom source folder, Node internals or V8 pseudo-frames. */
function categoryOf(url: string, fn: string): string {
  if (!url) return fn.startsWith('(') ? fn : '(native)';
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (nm) return nm[1]!;
  const src = /\/(src\/[^/]+\/[^/]+)\//.exec(url) ?? /\/(src\/[^/]+)\//.exec(url);
  if (src) return src[1]!;
  if (url.includes('/bench/')) return 'bench';
  if (url.startsWith('node:')) return `node:${url.slice(5).split('/')[0]}`;
  return url;
}

type CallFrame = CpuProfile['nodes'][number]['callFrame'];

interface Tally {
  readonly total: number;
  readonly byCategory: readonly { readonly name: string; readonly amount: number }[];
  readonly byFunction: readonly { readonly name: string; readonly amount: number }[];
}

/** Sums an amount (µs, bytes) per package or Loom folder and per function; the `top` largest of each. */
function tallyByFrame(entries: Iterable<readonly [CallFrame, number]>, top: number): Tally {
  const cats = new Map<string, number>();
  const fns = new Map<string, number>();
  let total = 0;
  for (const [f, amount] of entries) {
    total += amount;
    const cat = categoryOf(f.url, f.functionName);
    cats.set(cat, (cats.get(cat) ?? 0) + amount);
    const where = f.url
      ? `${f.url.replace(/^.*\/(node_modules|src|bench)\//, '$1/')}:${f.lineNumber + 1}`
      : '';
    const fn = `${f.functionName || '(anonymous)'} ${where}`.trim();
    fns.set(fn, (fns.get(fn) ?? 0) + amount);
  }
  const largest = (m: Map<string, number>) =>
    [...m.entries()]
      .map(([name, amount]) => ({ name, amount }))
      .sort((a, b) => b.amount - a.amount)
      .slice(0, top);
  return { total, byCategory: largest(cats), byFunction: largest(fns) };
}

export function summarizeProfile(
  p: CpuProfile,
  top = 15,
): { total: number; byCategory: ProfileShare[]; byFunction: ProfileShare[] } {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<number, number>();
  p.samples.forEach((id, i) => selfUs.set(id, (selfUs.get(id) ?? 0) + (p.timeDeltas[i] ?? 0)));
  const t = tallyByFrame(
    [...selfUs].map(([id, us]) => [byId.get(id)!.callFrame, us] as const),
    top,
  );
  const shares = (list: Tally['byCategory']) =>
    list.map((x) => ({ name: x.name, ms: x.amount / 1000, share: x.amount / t.total }));
  return { total: t.total / 1000, byCategory: shares(t.byCategory), byFunction: shares(t.byFunction) };
}

/** A sampling heap profile (`HeapProfiler.stopSampling`): a tree of allocation sites. */
export interface AllocationProfile {
  readonly head: AllocationNode;
}
interface AllocationNode {
  readonly callFrame: CallFrame;
  readonly selfSize: number;
  readonly children: readonly AllocationNode[];
}

export interface AllocationShare {
  readonly name: string;
  readonly bytes: number;
  readonly share: number;
}

/**
 * Bytes allocated on the JavaScript heap over the sampled window (V8 scales each sample to the
 * bytes it stands for), by package or Loom folder and by allocating function. Allocation volume
 * does not depend on how busy the machine is, unlike time: the garbage the young generation must
 * scavenge, and a measure a change can be judged by on a noisy host.
 */
export function summarizeAllocations(
  p: AllocationProfile,
  top = 15,
): { total: number; byCategory: AllocationShare[]; byFunction: AllocationShare[] } {
  const sites: (readonly [CallFrame, number])[] = [];
  const visit = (n: AllocationNode) => {
    if (n.selfSize > 0) sites.push([n.callFrame, n.selfSize]);
    for (const c of n.children) visit(c);
  };
  visit(p.head);
  const t = tallyByFrame(sites, top);
  const shares = (list: Tally['byCategory']) =>
    list.map((x) => ({ name: x.name, bytes: x.amount, share: x.amount / t.total }));
  return { total: t.total, byCategory: shares(t.byCategory), byFunction: shares(t.byFunction) };
}

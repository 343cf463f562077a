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

export function summarizeProfile(
  p: CpuProfile,
  top = 15,
): { total: number; byCategory: ProfileShare[]; byFunction: ProfileShare[] } {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<number, number>();
  p.samples.forEach((id, i) => selfUs.set(id, (selfUs.get(id) ?? 0) + (p.timeDeltas[i] ?? 0)));
  const cats = new Map<string, number>();
  const fns = new Map<string, number>();
  let total = 0;
  for (const [id, us] of selfUs) {
    const f = byId.get(id)!.callFrame;
    total += us;
    const cat = categoryOf(f.url, f.functionName);
    cats.set(cat, (cats.get(cat) ?? 0) + us);
    const where = f.url
      ? `${f.url.replace(/^.*\/(node_modules|src|bench)\//, '$1/')}:${f.lineNumber + 1}`
      : '';
    const fn = `${f.functionName || '(anonymous)'} ${where}`.trim();
    fns.set(fn, (fns.get(fn) ?? 0) + us);
  }
  const shares = (m: Map<string, number>) =>
    [...m.entries()]
      .map(([name, us]) => ({ name, ms: us / 1000, share: us / total }))
      .sort((a, b) => b.ms - a.ms)
      .slice(0, top);
  return { total: total / 1000, byCategory: shares(cats), byFunction: shares(fns) };
}

/** A sampling heap profile (`HeapProfiler.stopSampling`): a tree of allocation sites. */
export interface AllocationProfile {
  readonly head: AllocationNode;
}
interface AllocationNode {
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
  readonly selfSize: number;
  readonly children: readonly AllocationNode[];
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
): { total: number; byCategory: ProfileShare[]; byFunction: ProfileShare[] } {
  const cats = new Map<string, number>();
  const fns = new Map<string, number>();
  let total = 0;
  const visit = (n: AllocationNode) => {
    if (n.selfSize > 0) {
      const f = n.callFrame;
      total += n.selfSize;
      const cat = categoryOf(f.url, f.functionName);
      cats.set(cat, (cats.get(cat) ?? 0) + n.selfSize);
      const where = f.url
        ? `${f.url.replace(/^.*\/(node_modules|src|bench)\//, '$1/')}:${f.lineNumber + 1}`
        : '';
      const fn = `${f.functionName || '(anonymous)'} ${where}`.trim();
      fns.set(fn, (fns.get(fn) ?? 0) + n.selfSize);
    }
    for (const c of n.children) visit(c);
  };
  visit(p.head);
  const shares = (m: Map<string, number>) =>
    [...m.entries()]
      .map(([name, bytes]) => ({ name, ms: bytes, share: bytes / total }))
      .sort((a, b) => b.ms - a.ms)
      .slice(0, top);
  return { total, byCategory: shares(cats), byFunction: shares(fns) };
}

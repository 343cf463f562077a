import { rolledThroughputYield, yieldKpis, type YieldKpis } from '../../domain/quality/quality.ts';
import { formatQuantity } from '../../domain/shared/quantity.ts';
import { fail, ok, type Result } from '../../domain/shared/result.ts';
import type { KpiCounts, KpiGroupBy, KpiQuery, KpiStore } from './quality-ports.ts';

/**
 * Quantities as exact decimal strings, then the rates (definitions in docs/kpi.md). By cause,
 * `processed` is everything processed in the selection: the denominator of that cause's rates.
 */
export interface KpiFigures extends YieldKpis {
  readonly processed: string;
  readonly firstPassGood: string;
  readonly good: string;
  readonly rework: string;
  readonly scrap: string;
}

export interface QualityKpiReport {
  readonly from: string | null;
  readonly to: string | null;
  readonly product: string | null;
  readonly groupBy: KpiGroupBy;
  readonly totals: KpiFigures;
  readonly groups: (KpiFigures & { readonly key: Readonly<Record<string, string | null>> })[];
  readonly rolledThroughputYield: {
    readonly product: string;
    readonly steps: {
      readonly operation: string;
      readonly processed: string;
      readonly firstPassYield: number | null;
    }[];
    readonly rolledThroughputYield: number | null;
  }[];
  readonly reworkLoops: {
    readonly product: string;
    readonly operation: string;
    readonly reworkOperations: number;
    readonly maxLoop: number;
    readonly reworkQuantity: string;
  }[];
}

/**
 * Rates from exact sums. Quantities are integer millionths, so the ratio of their Numbers is the
 * ratio of the quantities (exact below 2^53 millionths, 9·10⁹ units per group).
 */
function figures(c: KpiCounts, denominator: KpiCounts = c): KpiFigures {
  const k = yieldKpis({
    processed: Number(denominator.processed),
    firstPassGood: Number(c.firstPassGood),
    reworked: Number(c.rework),
    scrapped: Number(c.scrap),
  });
  return {
    processed: formatQuantity(denominator.processed),
    firstPassGood: formatQuantity(c.firstPassGood),
    good: formatQuantity(c.good),
    rework: formatQuantity(c.rework),
    scrap: formatQuantity(c.scrap),
    ...k,
  };
}

/** First-pass yield, rework and scrap rates by a dimension, rolled throughput yield, rework loops. */
export async function qualityKpis(
  store: KpiStore,
  q: KpiQuery,
  groupBy: KpiGroupBy,
): Promise<Result<QualityKpiReport>> {
  if (q.from && q.to && q.from >= q.to) {
    return fail('LOOM_VALIDATION_FAILED', '`from` must be before `to`.', {
      issues: [{ path: 'querystring.from', message: 'must be before to' }],
    });
  }
  // A mistyped product would answer empty figures that read as "nothing produced".
  if (q.productId !== null && !(await store.productKnown(q.productId))) {
    return fail(
      'LOOM_KPI_UNKNOWN_PRODUCT',
      `Product '${q.productId}' is not in the plant model and has no production.`,
      {
        issues: [{ path: 'querystring.product', message: `no product '${q.productId}'` }],
        details: { product: q.productId },
      },
    );
  }
  const [totals, rows, steps, loops] = await Promise.all([
    store.totals(q),
    store.groups(q, groupBy),
    store.steps(q),
    store.reworkLoops(q),
  ]);
  // A cause only ever marks lost quantity; its rates are shares of everything processed.
  const groups = rows.map(({ key, ...c }) => {
    const f = figures(c, groupBy === 'cause' ? totals : c);
    return groupBy === 'cause' ? { key, ...f, firstPassYield: null } : { key, ...f };
  });

  const byProduct = new Map<string, QualityKpiReport['rolledThroughputYield'][number]['steps']>();
  for (const s of steps) {
    const list = byProduct.get(s.productId) ?? [];
    list.push({
      operation: s.operation,
      processed: formatQuantity(s.processed),
      firstPassYield: figures(s).firstPassYield,
    });
    byProduct.set(s.productId, list);
  }
  return ok({
    from: q.from?.toISOString() ?? null,
    to: q.to?.toISOString() ?? null,
    product: q.productId,
    groupBy,
    totals: figures(totals),
    groups,
    rolledThroughputYield: [...byProduct].map(([product, list]) => ({
      product,
      steps: list,
      rolledThroughputYield: rolledThroughputYield(list.map((s) => s.firstPassYield)),
    })),
    reworkLoops: loops.map((l) => ({
      product: l.productId,
      operation: l.operation,
      reworkOperations: l.reworkOperations,
      maxLoop: l.maxLoop,
      reworkQuantity: formatQuantity(l.reworkQuantity),
    })),
  });
}

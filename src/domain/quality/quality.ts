import { ok, fail, type Result } from '../shared/result.ts';

export interface CharacteristicSpec {
  readonly id: string;
  readonly kind: 'numeric' | 'attribute';
  readonly lsl?: number | undefined;
  readonly usl?: number | undefined;
}

export type Verdict = 'pass' | 'fail';

/**
 * Judges one measured value against its characteristic. Limits are inclusive (a value on the
 * limit conforms). A numeric result must be a finite number; an attribute result is pass/fail.
 */
export function evaluateResult(
  spec: CharacteristicSpec,
  value: unknown,
  field = 'value',
): Result<{ verdict: Verdict; numeric: number | null }> {
  if (spec.kind === 'numeric') {
    if (typeof value !== 'number' || !Number.isFinite(value)) {
      return fail(
        'LOOM_VALIDATION_FAILED',
        `${field} for numeric characteristic '${spec.id}' must be a number`,
        {
          issues: [{ path: field, message: 'must be a finite number' }],
        },
      );
    }
    const low = spec.lsl === undefined || value >= spec.lsl;
    const high = spec.usl === undefined || value <= spec.usl;
    return ok({ verdict: low && high ? 'pass' : 'fail', numeric: value });
  }
  if (value === 'pass' || value === true) return ok({ verdict: 'pass', numeric: null });
  if (value === 'fail' || value === false) return ok({ verdict: 'fail', numeric: null });
  return fail(
    'LOOM_VALIDATION_FAILED',
    `${field} for attribute characteristic '${spec.id}' must be "pass" or "fail"`,
    {
      issues: [{ path: field, message: 'must be "pass" or "fail"' }],
    },
  );
}

/** What to do with a nonconforming quantity (ISA-95 / common MES dispositions). */
export const DISPOSITIONS = ['rework', 'scrap', 'use-as-is', 'return-to-supplier'] as const;
export type Disposition = (typeof DISPOSITIONS)[number];

export const NCR_STATES = ['Open', 'Dispositioned', 'Closed'] as const;
export type NcrState = (typeof NCR_STATES)[number];

/** Use-as-is releases nonconforming product on a quality engineer's signed judgement (Part 11 §11.50). */
export const dispositionNeedsSignature = (d: Disposition): boolean => d === 'use-as-is';

export interface YieldCounts {
  /** Units (or quantity) that entered the operation for the first time. */
  readonly processed: number;
  /** Of those, good at the first attempt: no NCR, no rework, no scrap. */
  readonly firstPassGood: number;
  readonly reworked: number;
  readonly scrapped: number;
}

export interface YieldKpis {
  readonly firstPassYield: number | null;
  readonly reworkRate: number | null;
  readonly scrapRate: number | null;
}

const rate = (n: number, d: number): number | null => (d > 0 ? Math.round((n / d) * 1e6) / 1e6 : null);

export function yieldKpis(c: YieldCounts): YieldKpis {
  return {
    firstPassYield: rate(c.firstPassGood, c.processed),
    reworkRate: rate(c.reworked, c.processed),
    scrapRate: rate(c.scrapped, c.processed),
  };
}

/** Rolled throughput yield: the chance a unit passes every operation first time (product of FPYs). */
export function rolledThroughputYield(fpys: readonly (number | null)[]): number | null {
  if (fpys.length === 0 || fpys.some((f) => f === null)) return null;
  return Math.round(fpys.reduce<number>((p, f) => p * (f ?? 1), 1) * 1e6) / 1e6;
}

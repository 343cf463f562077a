import type { SampleQuality, SampleValue } from '../../domain/signal/sample.ts';
import type { SignalDataType } from '../../domain/signal/signal.ts';
import { fail, ok, type Result } from '../../domain/shared/result.ts';

export interface RawPoint {
  readonly t: number;
  readonly v: SampleValue;
  readonly q: SampleQuality;
  readonly historical: boolean;
}

/** One time bucket of good values: starts at `t`, holds `n` values. */
export interface BucketPoint {
  readonly t: number;
  readonly avg: number;
  readonly min: number;
  readonly max: number;
  readonly n: number;
}

export type History =
  | { readonly mode: 'raw'; readonly points: readonly RawPoint[]; readonly truncated: boolean }
  | {
      readonly mode: 'buckets';
      readonly bucketMs: number;
      /** `rollups`: from the one-minute rollups (buckets are whole minutes); `samples`: from raw samples. */
      readonly source: 'rollups' | 'samples';
      readonly points: readonly BucketPoint[];
    };

export interface SignalInfo {
  readonly no: number;
  readonly id: string;
  readonly equipment: string;
  readonly dataType: SignalDataType;
}

export interface LatestValue {
  readonly signal: string;
  readonly dataType: SignalDataType;
  /** Null when the signal has no live sample yet. */
  readonly t: number | null;
  readonly receivedAt: number | null;
  readonly value: SampleValue;
  readonly quality: SampleQuality | null;
  /** The source went away (NDEATH/DDEATH) after this value: it is not current. */
  readonly stale: boolean;
  readonly staleReason: string | null;
}

/** Reads of the time-series store. */
export interface SignalHistoryStore {
  signal(id: string): Promise<SignalInfo | null>;
  /** Good, non-null values in [from, to) according to the rollups (numbers and booleans). */
  countGood(signal: SignalInfo, from: number, to: number): Promise<number>;
  raw(signal: SignalInfo, from: number, to: number, limit: number): Promise<RawPoint[]>;
  bucketsFromSamples(signal: SignalInfo, from: number, to: number, bucketMs: number): Promise<BucketPoint[]>;
  bucketsFromRollups(signal: SignalInfo, from: number, to: number, bucketMs: number): Promise<BucketPoint[]>;
  /** Null when the equipment does not exist. */
  latestOfEquipment(equipmentId: string): Promise<LatestValue[] | null>;
}

export interface HistoryQuery {
  readonly from: Date;
  readonly to: Date;
  readonly maxPoints: number;
}

const MINUTE_MS = 60_000;
/** The longest range one request may ask for; longer ones are paged by the client. */
export const MAX_HISTORY_RANGE_MS = 366 * 86_400_000;

/**
 * A signal's history over [from, to) in at most `maxPoints` points. Raw samples when they fit;
 * otherwise time buckets with avg/min/max/count — read from the one-minute rollups when a bucket
 * is a minute or longer (a day at 1 Hz reads 1,440 rollup rows instead of 86,400 samples), from
 * the samples themselves when shorter. Strings are never aggregated: the first `maxPoints`
 * samples come back with `truncated`.
 */
export async function signalHistory(
  store: SignalHistoryStore,
  signalId: string,
  q: HistoryQuery,
): Promise<Result<{ signal: SignalInfo; from: number; to: number; history: History }>> {
  const from = q.from.getTime();
  const to = q.to.getTime();
  if (!(to > from)) {
    return fail(
      'LOOM_SIGNAL_RANGE_INVALID',
      `to (${q.to.toISOString()}) must be after from (${q.from.toISOString()}).`,
      {
        issues: [{ path: 'to', message: 'must be after from' }],
      },
    );
  }
  if (to - from > MAX_HISTORY_RANGE_MS) {
    return fail(
      'LOOM_SIGNAL_RANGE_INVALID',
      'A history request covers at most 366 days; ask for shorter ranges.',
      {
        issues: [{ path: 'to', message: 'at most 366 days after from' }],
      },
    );
  }
  const signal = await store.signal(signalId);
  if (signal === null) {
    return fail('LOOM_SIGNAL_NOT_FOUND', `signal '${signalId}' does not exist.`, {
      details: { id: signalId },
    });
  }
  const done = (history: History) => ok({ signal, from, to, history });
  if (signal.dataType === 'string') {
    const points = await store.raw(signal, from, to, q.maxPoints + 1);
    return done({
      mode: 'raw',
      points: points.slice(0, q.maxPoints),
      truncated: points.length > q.maxPoints,
    });
  }
  const good = await store.countGood(signal, from, to);
  if (good <= q.maxPoints) {
    // The rollups count good values only: bad and null samples may still push the raw count over.
    const points = await store.raw(signal, from, to, q.maxPoints + 1);
    if (points.length <= q.maxPoints) return done({ mode: 'raw', points, truncated: false });
  }
  const bucketMs = Math.ceil((to - from) / q.maxPoints);
  if (bucketMs >= MINUTE_MS) {
    const minutes = Math.ceil(bucketMs / MINUTE_MS) * MINUTE_MS;
    return done({
      mode: 'buckets',
      bucketMs: minutes,
      source: 'rollups',
      points: await store.bucketsFromRollups(signal, from, to, minutes),
    });
  }
  return done({
    mode: 'buckets',
    bucketMs,
    source: 'samples',
    points: await store.bucketsFromSamples(signal, from, to, bucketMs),
  });
}

import type { SampleQuality } from '../../domain/signal/sample.ts';
import type { PackmlRole, SignalDataType, SignalSource } from '../../domain/signal/signal.ts';

/** A signal as the ingest pipeline needs it: resolved from its tag, numbered for storage. */
export interface MappedSignal {
  readonly no: number;
  readonly id: string;
  readonly equipment: string;
  readonly dataType: SignalDataType;
  /** 0 keeps every sample. */
  readonly deadband: number;
  readonly tag: string;
  /** Where its values come from (connectors that poll, such as Modbus, read their work from it). */
  readonly source: SignalSource;
  /** Commands may write it (the plant model's `writable`); absent: false. */
  readonly writable?: boolean;
  /** Its PackML role for the command gateway (`state` or `command`), if any. */
  readonly packml?: PackmlRole;
}

export const QUALITY_CODE: Readonly<Record<SampleQuality, number>> = { good: 0, uncertain: 1, bad: 2 };
export const QUALITY_OF_CODE: readonly SampleQuality[] = ['good', 'uncertain', 'bad'];

/**
 * Samples of one signal in one batch, as parallel arrays in arrival order. Live, historical and
 * possibly repeated samples of a signal are separate series: only historical ones (replays,
 * RELIABILITY.md rule 2) and BIRTH values can arrive twice, so only they pay for the duplicate check.
 */
export interface SignalSeries {
  readonly signal: MappedSignal;
  readonly historical: boolean;
  /** Samples that may already be stored (historical or `mayRepeat`): the store checks before writing. */
  readonly checked: boolean;
  readonly ts: number[];
  readonly rx: number[];
  /** Number and boolean (0/1) values; null = no value. Exactly one of `v` / `s` is used. */
  readonly v: (number | null)[];
  readonly s: (string | null)[];
  /** Quality codes (`QUALITY_CODE`). */
  readonly q: number[];
  /** True while every `q` is good: the store can omit the column. */
  allGood: boolean;
}

export interface StaleMark {
  readonly signalNos: readonly number[];
  readonly at: number;
  readonly reason: string;
}

export interface WriteOutcome {
  /** Samples written. */
  readonly stored: number;
  /** Historical samples already stored with the same (signal, source timestamp): skipped. */
  readonly duplicates: number;
}

/** The time-series store (PostgreSQL: `postgres-sample-store.ts`). */
export interface SampleStore {
  /** Every signal with its source tag. */
  loadSignals(): Promise<MappedSignal[]>;
  /**
   * Writes one batch in one transaction: chunks, rollups and stale marks. Checked series are
   * compared with what is stored, so a replayed or re-delivered sample is never stored twice.
   */
  write(series: readonly SignalSeries[], stale: readonly StaleMark[]): Promise<WriteOutcome>;
  /** Partitions for the days around `now` exist (idempotent; several instances may call it). */
  ensurePartitions(now: Date): Promise<void>;
  /**
   * Merges the small chunks of one signal within each closed hour before `closedBefore` into one
   * (at most `maxGroups` signal-hours per call); returns the chunks removed. Several instances may
   * call it: one works, the others return 0.
   */
  compact(closedBefore: Date, maxGroups: number): Promise<number>;
  /** Drops the history of whole days before `keepFrom` (UTC); returns the days dropped. */
  dropDaysBefore(keepFrom: Date): Promise<number>;
}

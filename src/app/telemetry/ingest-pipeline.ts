import type { SampleQuality, SampleValue, TagSample } from '../../domain/signal/sample.ts';
import type { Clock } from '../../domain/shared/clock.ts';
import {
  QUALITY_CODE,
  QUALITY_OF_CODE,
  type MappedSignal,
  type SampleStore,
  type SignalSeries,
  type StaleMark,
} from './sample-store.ts';
import type { TelemetrySink } from './telemetry-ports.ts';

/** The part of a logger the pipeline uses (pino's Logger fits). */
export interface IngestLog {
  warn(details: object, message: string): void;
  error(details: object, message: string): void;
}

/** A mapped sample as live subscribers (equipment state, alarms, rules, the live stream) see it. */
export interface LiveSample {
  readonly signal: MappedSignal;
  readonly ts: number;
  readonly rx: number;
  readonly value: SampleValue;
  readonly quality: SampleQuality;
}

export type LiveListener = (samples: readonly LiveSample[]) => void;
export type StaleListener = (signals: readonly MappedSignal[], at: number, reason: string) => void;

export interface IngestOptions {
  readonly store: SampleStore;
  readonly clock: Clock;
  readonly log: IngestLog;
  /** How often a batch is written. */
  readonly flushMs: number;
  /** Samples held (buffered plus being written) before new ones are dropped and counted. */
  readonly maxBufferedSamples: number;
  /** A batch is written early when it reaches this many samples. */
  readonly maxBatchSamples?: number;
  /** Longest wait between retries of a failed write. */
  readonly maxRetryMs?: number;
  /** Days of history kept (whole UTC days); unset keeps everything. */
  readonly retentionDays?: number | null;
  /** How often closed hours are compacted; 0 turns compaction off. */
  readonly compactEveryMs?: number;
}

export interface IngestStats {
  readonly samplesAccepted: number;
  readonly samplesStored: number;
  /** Dropped because the buffer was full (the database too slow or down). */
  readonly samplesDropped: number;
  /** Historical samples already stored (replays): skipped, not stored twice. */
  readonly duplicates: number;
  readonly deadbandFiltered: number;
  /** Samples of tags no signal maps. */
  readonly unmapped: number;
  /** Samples whose value does not fit the signal's data type: stored with quality bad, no value. */
  readonly typeMismatch: number;
  readonly transient: number;
  readonly buffered: number;
  readonly batches: number;
  readonly failedWrites: number;
  readonly signals: number;
  /** Commit time minus receive time of the oldest sample of a batch: p50 of the last 200 batches, max since start. */
  readonly lagMs: { readonly p50: number | null; readonly max: number | null };
  /** Some tags no signal maps (at most 100), so an integrator sees what to map. */
  readonly unmappedTags: readonly string[];
}

const MAX_UNMAPPED_TAGS_KEPT = 100;
const LAG_WINDOW = 200;
const PARTITION_CHECK_MS = 3_600_000;
const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;
/** Signal-hours merged per compaction statement; a run repeats until nothing is left. */
const COMPACT_GROUPS = 2000;

/**
 * The one ingest path for every connector: map tag → signal, check the type, apply the deadband,
 * fan out to live subscribers, batch, and write each batch in one transaction. Connectors call
 * `accept` from their socket handlers; it never waits for the database.
 *
 * Back-pressure: samples are held up to `maxBufferedSamples` (the batch being written counts);
 * beyond it new samples are dropped, counted in `samplesDropped` and logged at most every 10 s.
 * A failed write keeps its batch and retries it with backoff, so a database outage shorter than
 * the buffer loses nothing.
 */
export class IngestPipeline implements TelemetrySink {
  readonly #o: Required<IngestOptions>;
  #byTag = new Map<string, MappedSignal>();
  #signals: MappedSignal[] = [];
  /** Last kept value per signal number, for the deadband. */
  readonly #lastKept = new Map<number, { value: SampleValue; quality: number }>();
  #buffer = new Map<number, SignalSeries>();
  #bufferedCount = 0;
  #oldestRx = Number.POSITIVE_INFINITY;
  #stale: StaleMark[] = [];
  #inFlight = 0;
  readonly #live = new Set<LiveListener>();
  readonly #staleListeners = new Set<StaleListener>();
  #timer: NodeJS.Timeout | null = null;
  #partitionTimer: NodeJS.Timeout | null = null;
  #compactTimer: NodeJS.Timeout | null = null;
  #flushing: Promise<void> | null = null;
  #running = false;
  #retryMs = 0;
  #droppedSinceReport = 0;
  #lastDropReport = 0;
  readonly #lags: number[] = [];
  readonly #unmappedTags = new Set<string>();
  readonly #counts = {
    samplesAccepted: 0,
    samplesStored: 0,
    samplesDropped: 0,
    duplicates: 0,
    deadbandFiltered: 0,
    unmapped: 0,
    typeMismatch: 0,
    transient: 0,
    batches: 0,
    failedWrites: 0,
  };
  #lagMax: number | null = null;

  constructor(options: IngestOptions) {
    this.#o = {
      maxBatchSamples: 200_000,
      maxRetryMs: 10_000,
      retentionDays: null,
      compactEveryMs: 600_000,
      ...options,
    };
  }

  /** Loads the tag map, makes sure today's partitions exist, starts the flush timer. */
  async start(): Promise<void> {
    await this.#o.store.ensurePartitions(this.#o.clock.now());
    await this.reloadSignals();
    this.#running = true;
    this.#schedule(this.#o.flushMs);
    this.#partitionTimer = setInterval(() => {
      this.#o.store
        .ensurePartitions(this.#o.clock.now())
        .then(() => this.dropExpired())
        .catch((e: unknown) =>
          this.#o.log.error({ err: e }, 'telemetry partition upkeep failed; will retry'),
        );
    }, PARTITION_CHECK_MS);
    this.#partitionTimer.unref();
    if (this.#o.compactEveryMs > 0) {
      this.#compactTimer = setInterval(() => {
        this.compact().catch((e: unknown) =>
          this.#o.log.error({ err: e }, 'telemetry compaction failed; will retry'),
        );
      }, this.#o.compactEveryMs);
      this.#compactTimer.unref();
    }
  }

  /** Stops the timers and writes what is buffered (one last attempt). */
  async stop(): Promise<void> {
    this.#running = false;
    if (this.#timer) clearTimeout(this.#timer);
    if (this.#partitionTimer) clearInterval(this.#partitionTimer);
    if (this.#compactTimer) clearInterval(this.#compactTimer);
    this.#timer = null;
    this.#partitionTimer = null;
    this.#compactTimer = null;
    await this.flush().catch((e: unknown) =>
      this.#o.log.error(
        { err: e, buffered: this.#bufferedCount },
        'final telemetry write failed; samples lost',
      ),
    );
  }

  /**
   * Merges the small chunks of every hour that closed more than an hour ago (ADR 0007); returns
   * the chunks removed.
   */
  async compact(): Promise<number> {
    const now = this.#o.clock.now().getTime();
    const closedBefore = new Date(Math.floor(now / HOUR_MS) * HOUR_MS - HOUR_MS);
    let removed = 0;
    for (;;) {
      const n = await this.#o.store.compact(closedBefore, COMPACT_GROUPS);
      removed += n;
      if (n === 0) return removed;
    }
  }

  /** Drops whole days older than the retention; returns the days dropped. */
  async dropExpired(): Promise<number> {
    if (this.#o.retentionDays === null) return 0;
    const today = Math.floor(this.#o.clock.now().getTime() / DAY_MS) * DAY_MS;
    return this.#o.store.dropDaysBefore(new Date(today - this.#o.retentionDays * DAY_MS));
  }

  /** Re-reads the tag map (a signal was added, changed or removed); returns the signals whose tag is newly mapped. */
  async reloadSignals(): Promise<MappedSignal[]> {
    const signals = await this.#o.store.loadSignals();
    const added = signals.filter((s) => this.#byTag.get(s.tag)?.no !== s.no);
    this.#signals = signals;
    this.#byTag = new Map(signals.map((s) => [s.tag, s]));
    for (const tag of [...this.#unmappedTags]) if (this.#byTag.has(tag)) this.#unmappedTags.delete(tag);
    return added;
  }

  /** Every mapped signal (the tag map as last loaded). */
  signals(): readonly MappedSignal[] {
    return this.#signals;
  }

  /** The signal a tag maps to, if any. */
  signalOfTag(tag: string): MappedSignal | undefined {
    return this.#byTag.get(tag);
  }

  subscribe(listener: LiveListener): () => void {
    this.#live.add(listener);
    return () => this.#live.delete(listener);
  }

  onStale(listener: StaleListener): () => void {
    this.#staleListeners.add(listener);
    return () => this.#staleListeners.delete(listener);
  }

  accept(samples: readonly TagSample[]): void {
    const live: LiveSample[] = [];
    for (const sample of samples) {
      this.#counts.samplesAccepted++;
      const signal = this.#byTag.get(sample.tag);
      if (signal === undefined) {
        this.#counts.unmapped++;
        if (this.#unmappedTags.size < MAX_UNMAPPED_TAGS_KEPT) this.#unmappedTags.add(sample.tag);
        continue;
      }
      let value = fitValue(signal, sample.value);
      let quality = QUALITY_CODE[sample.quality];
      if (value === undefined) {
        this.#counts.typeMismatch++;
        value = null;
        quality = QUALITY_CODE.bad;
      }
      if (!sample.historical) {
        if (!this.#passesDeadband(signal, value, quality)) {
          this.#counts.deadbandFiltered++;
          continue;
        }
        const liveValue = signal.dataType === 'boolean' && value !== null ? value === 1 : value;
        live.push({
          signal,
          ts: sample.sourceTs,
          rx: sample.serverTs,
          value: liveValue,
          quality: QUALITY_OF_CODE[quality] ?? 'bad',
        });
      }
      if (sample.transient === true) {
        this.#counts.transient++;
        continue;
      }
      if (this.#bufferedCount + this.#inFlight >= this.#o.maxBufferedSamples) {
        this.#drop(1);
        continue;
      }
      this.#append(signal, sample, value, quality);
    }
    if (live.length > 0) this.#publish(live);
    if (this.#bufferedCount >= this.#o.maxBatchSamples && this.#flushing === null) this.#schedule(0);
  }

  markStale(tagPrefix: string, at: number, reason: string): void {
    const hit = this.#signals.filter((s) => s.tag.startsWith(tagPrefix));
    if (hit.length === 0) return;
    for (const s of hit) this.#lastKept.delete(s.no);
    this.#stale.push({ signalNos: hit.map((s) => s.no), at, reason });
    for (const listener of this.#staleListeners) {
      try {
        listener(hit, at, reason);
      } catch (e) {
        this.#o.log.error({ err: e }, 'a stale listener failed');
      }
    }
  }

  stats(): IngestStats {
    const sorted = [...this.#lags].sort((a, b) => a - b);
    return {
      ...this.#counts,
      buffered: this.#bufferedCount + this.#inFlight,
      signals: this.#signals.length,
      lagMs: {
        p50: sorted.length > 0 ? (sorted[Math.floor(sorted.length / 2)] ?? null) : null,
        max: this.#lagMax,
      },
      unmappedTags: [...this.#unmappedTags],
    };
  }

  /** Writes what is buffered now (tests, shutdown); resolves when it is committed or has failed. */
  async flush(): Promise<void> {
    // A write already in flight that fails puts its samples back in the buffer: this flush writes them.
    while (this.#flushing) await this.#flushing.catch(() => undefined);
    this.#flushing = this.#writeBatch();
    try {
      await this.#flushing;
    } finally {
      this.#flushing = null;
    }
  }

  #passesDeadband(signal: MappedSignal, value: SampleValue, quality: number): boolean {
    const last = this.#lastKept.get(signal.no);
    if (
      signal.deadband > 0 &&
      last !== undefined &&
      last.quality === quality &&
      typeof value === 'number' &&
      typeof last.value === 'number' &&
      Math.abs(value - last.value) <= signal.deadband
    ) {
      return false;
    }
    if (last === undefined) this.#lastKept.set(signal.no, { value, quality });
    else {
      last.value = value;
      last.quality = quality;
    }
    return true;
  }

  #append(signal: MappedSignal, sample: TagSample, value: SampleValue, quality: number): void {
    const checked = sample.historical || sample.mayRepeat === true;
    const key = signal.no * 4 + (sample.historical ? 2 : 0) + (checked ? 1 : 0);
    let series = this.#buffer.get(key);
    if (series === undefined) {
      series = {
        signal,
        historical: sample.historical,
        checked,
        ts: [],
        rx: [],
        v: [],
        s: [],
        q: [],
        allGood: true,
      };
      this.#buffer.set(key, series);
    }
    series.ts.push(sample.sourceTs);
    series.rx.push(sample.serverTs);
    if (signal.dataType === 'string') series.s.push(value as string | null);
    else series.v.push(value as number | null);
    series.q.push(quality);
    if (quality !== 0) series.allGood = false;
    this.#bufferedCount++;
    if (sample.serverTs < this.#oldestRx) this.#oldestRx = sample.serverTs;
  }

  #publish(live: LiveSample[]): void {
    for (const listener of this.#live) {
      try {
        listener(live);
      } catch (e) {
        this.#o.log.error({ err: e }, 'a live listener failed');
      }
    }
  }

  #drop(n: number): void {
    this.#counts.samplesDropped += n;
    this.#droppedSinceReport += n;
    const now = this.#o.clock.now().getTime();
    if (now - this.#lastDropReport >= 10_000) {
      this.#o.log.warn(
        {
          dropped: this.#droppedSinceReport,
          droppedTotal: this.#counts.samplesDropped,
          buffered: this.#bufferedCount,
        },
        'telemetry buffer full: samples dropped (the database is too slow or unavailable)',
      );
      this.#lastDropReport = now;
      this.#droppedSinceReport = 0;
    }
  }

  #schedule(ms: number): void {
    if (!this.#running) return;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#timer = null;
      void this.flush().then(
        () => {
          this.#retryMs = 0;
          this.#schedule(this.#o.flushMs);
        },
        (e: unknown) => {
          this.#counts.failedWrites++;
          this.#retryMs = Math.min(this.#o.maxRetryMs, Math.max(this.#o.flushMs, this.#retryMs * 2));
          this.#o.log.error(
            { err: e, buffered: this.#bufferedCount + this.#inFlight, retryMs: this.#retryMs },
            'telemetry write failed; the batch is kept and retried',
          );
          this.#schedule(this.#retryMs);
        },
      );
    }, ms);
  }

  /**
   * Takes the buffer and writes it. On failure the taken samples go back in front of what arrived
   * meanwhile, so a retry writes everything in arrival order per signal.
   */
  async #writeBatch(): Promise<void> {
    if (this.#bufferedCount === 0 && this.#stale.length === 0) return;
    const batch = this.#buffer;
    const stale = this.#stale;
    const count = this.#bufferedCount;
    const oldestRx = this.#oldestRx;
    this.#buffer = new Map();
    this.#stale = [];
    this.#bufferedCount = 0;
    this.#oldestRx = Number.POSITIVE_INFINITY;
    this.#inFlight = count;
    try {
      const outcome = await this.#o.store.write([...batch.values()], stale);
      this.#counts.samplesStored += outcome.stored;
      this.#counts.duplicates += outcome.duplicates;
      this.#counts.batches++;
      if (count > 0) {
        const lag = this.#o.clock.now().getTime() - oldestRx;
        this.#lags.push(lag);
        if (this.#lags.length > LAG_WINDOW) this.#lags.shift();
        if (this.#lagMax === null || lag > this.#lagMax) this.#lagMax = lag;
      }
    } catch (e) {
      for (const [key, series] of this.#buffer) {
        const earlier = batch.get(key);
        if (earlier === undefined) batch.set(key, series);
        else {
          earlier.ts.push(...series.ts);
          earlier.rx.push(...series.rx);
          earlier.v.push(...series.v);
          earlier.s.push(...series.s);
          earlier.q.push(...series.q);
          earlier.allGood &&= series.allGood;
        }
      }
      this.#buffer = batch;
      this.#stale = [...stale, ...this.#stale];
      this.#bufferedCount += count;
      this.#oldestRx = Math.min(this.#oldestRx, oldestRx);
      throw e;
    } finally {
      this.#inFlight = 0;
    }
  }
}

/**
 * The value as the signal's type stores it, or undefined when it does not fit. Booleans count
 * as numbers (0/1) and 0/1 as booleans, since PLCs use either for a bit.
 */
function fitValue(signal: MappedSignal, value: SampleValue): SampleValue | undefined {
  if (value === null) return null;
  switch (signal.dataType) {
    case 'number':
      if (typeof value === 'number') return Number.isFinite(value) ? value : undefined;
      if (typeof value === 'boolean') return value ? 1 : 0;
      return undefined;
    case 'boolean':
      if (typeof value === 'boolean') return value ? 1 : 0;
      if (value === 0 || value === 1) return value;
      return undefined;
    case 'string':
      return typeof value === 'string' ? value : String(value);
  }
}

import type { SampleQuality, SampleValue } from '../../domain/signal/sample.ts';
import type { LiveSample } from './ingest-pipeline.ts';
import type { MappedSignal } from './sample-store.ts';

/** The latest value of a signal, as dashboards see it. `t` is the source timestamp (epoch ms). */
export interface LiveSampleEvent {
  readonly type: 'sample';
  readonly signal: string;
  readonly equipment: string;
  readonly t: number;
  readonly value: SampleValue;
  readonly quality: SampleQuality;
}

/** A signal's source stopped reporting (Sparkplug NDEATH/DDEATH, a lost OPC UA session). */
export interface LiveStaleEvent {
  readonly type: 'stale';
  readonly signal: string;
  readonly equipment: string;
  readonly at: number;
  readonly reason: string;
}

/**
 * What the live stream carries. A discriminated union: equipment state and alarms join it as new
 * members, each with its own case in `coalesceKeyOf` (the exhaustiveness check points there).
 */
export type LiveEvent = LiveSampleEvent | LiveStaleEvent;

/** Raised by this instance (forwarded to the others), or received from another one (never forwarded). */
export type LiveOrigin = 'local' | 'remote';

/** Which events a subscription receives: those of any listed equipment or any listed signal, or all. */
export interface LiveFilter {
  readonly equipment?: readonly string[];
  readonly signals?: readonly string[];
  readonly all?: boolean;
}

export type LiveCloseReason = 'slow' | 'failed' | 'shutdown';

/** The transport end of a subscription (an SSE response, the cross-instance bridge). */
export interface LiveClient {
  /** Bytes handed to the transport but not yet sent (a socket's `writableLength`). */
  bufferedBytes(): number;
  /** Sends the coalesced events, oldest change first; never called with an empty list. */
  deliver(events: readonly LiveEvent[]): void;
  /** Nothing was delivered for `heartbeatMs`: proves the link is alive (an SSE comment). */
  heartbeat(): void;
  /** The hub ended the subscription; the transport closes its end. Not called after `unsubscribe()`. */
  close(reason: LiveCloseReason): void;
}

export interface LiveLimits {
  /** How often pending events are delivered to every subscription. */
  readonly flushMs: number;
  /** A transport holding more unsent bytes than this is congested: nothing more is delivered to it. */
  readonly maxBufferedBytes: number;
  /** A subscription congested for this long is closed and counted in `droppedClients`. */
  readonly dropAfterMs: number;
  /** Signals (and other keys) pending per subscription; events of further keys are discarded and counted. */
  readonly maxPendingPerClient: number;
  /** A heartbeat is sent after this long without a delivery. */
  readonly heartbeatMs: number;
  /** Signals whose latest value is kept for the snapshot a new subscription starts with. */
  readonly maxSnapshotSignals: number;
}

export const DEFAULT_LIVE_LIMITS: LiveLimits = Object.freeze({
  flushMs: 250,
  maxBufferedBytes: 1_048_576,
  dropAfterMs: 30_000,
  maxPendingPerClient: 10_000,
  heartbeatMs: 15_000,
  maxSnapshotSignals: 100_000,
});

export interface SubscribeOptions {
  /** Receive only events of this origin (the bridge forwards local events only). */
  readonly origin?: LiveOrigin;
  /** Overrides `LiveLimits.dropAfterMs` (the bridge is never dropped: `Infinity`). */
  readonly dropAfterMs?: number;
  /** Overrides `LiveLimits.maxPendingPerClient`. */
  readonly maxPending?: number;
  /** Not a dashboard: left out of `clients`. */
  readonly internal?: boolean;
  /** Start with the latest known value (and staleness) of every matching signal. Default true. */
  readonly snapshot?: boolean;
}

export interface LiveSubscription {
  unsubscribe(): void;
}

export interface LiveHubStats {
  /** Dashboard subscriptions open now. */
  readonly clients: number;
  readonly publishedLocal: number;
  readonly publishedRemote: number;
  readonly delivered: number;
  /** Events replaced by a newer one of the same signal before a subscriber received them. */
  readonly coalesced: number;
  /** Events discarded because a subscription already had `maxPendingPerClient` signals pending. */
  readonly overflowed: number;
  /** Subscriptions closed because their transport stayed congested for `dropAfterMs`. */
  readonly droppedClients: number;
}

export interface LiveTimers {
  setInterval(fn: () => void, ms: number): unknown;
  clearInterval(handle: unknown): void;
}

export interface LiveHubLog {
  warn(details: object, message: string): void;
  error(details: object, message: string): void;
}

export interface LiveHubOptions {
  readonly log: LiveHubLog;
  /**
   * Monotonic milliseconds for congestion and heartbeat timing (default `performance.now`); not
   * the plant clock, which tests fix at one instant.
   */
  readonly now?: () => number;
  readonly limits?: Partial<LiveLimits>;
  /** Default: the global timers, unref'd. */
  readonly timers?: LiveTimers;
}

interface Sub {
  readonly client: LiveClient;
  readonly equipment: ReadonlySet<string>;
  readonly signals: ReadonlySet<string>;
  readonly all: boolean;
  readonly origin: LiveOrigin | undefined;
  readonly dropAfterMs: number | undefined;
  readonly maxPending: number | undefined;
  readonly internal: boolean;
  /** Latest event per coalesce key; insertion order = order of the latest change. */
  pending: Map<string, LiveEvent>;
  congestedSince: number | null;
  lastSentAt: number;
  open: boolean;
}

interface Latest {
  equipment: string;
  sample: LiveSampleEvent | null;
  /** Set when the signal went stale after its latest sample. */
  stale: LiveStaleEvent | null;
}

const systemTimers: LiveTimers = {
  setInterval(fn, ms) {
    const h = setInterval(fn, ms);
    h.unref();
    return h;
  },
  clearInterval: (h) => clearInterval(h as NodeJS.Timeout),
};

/** Events of one signal and kind replace each other; a sample and a stale mark do not. */
function coalesceKeyOf(e: LiveEvent): string {
  switch (e.type) {
    case 'sample':
      return `s\u0000${e.signal}`;
    case 'stale':
      return `x\u0000${e.signal}`;
  }
}

/**
 * Live fan-out to dashboards and to other instances, with coalescing so a slow subscriber costs
 * memory in proportion to the signals it watches, never to the samples that flow.
 *
 * `publish` only files each event in the pending map of every matching subscription (latest per
 * signal wins, replaced ones are counted in `coalesced`); a timer delivers the pending events
 * every `flushMs` to each transport that is not congested. A transport still congested after
 * `dropAfterMs` is closed. So per subscriber the hub holds at most `maxPendingPerClient` events
 * and the transport at most `maxBufferedBytes` plus one delivery. The timer runs only while
 * someone is subscribed.
 */
export class LiveHub {
  readonly #now: () => number;
  readonly #log: LiveHubLog;
  readonly #timers: LiveTimers;
  #limits: LiveLimits;
  readonly #subs = new Set<Sub>();
  readonly #all = new Set<Sub>();
  readonly #byEquipment = new Map<string, Set<Sub>>();
  readonly #bySignal = new Map<string, Set<Sub>>();
  readonly #latest = new Map<string, Latest>();
  #timer: unknown = null;
  readonly #counts = {
    publishedLocal: 0,
    publishedRemote: 0,
    delivered: 0,
    coalesced: 0,
    overflowed: 0,
    droppedClients: 0,
  };

  constructor(options: LiveHubOptions) {
    this.#now = options.now ?? (() => performance.now());
    this.#log = options.log;
    this.#timers = options.timers ?? systemTimers;
    this.#limits = { ...DEFAULT_LIVE_LIMITS, ...options.limits };
  }

  get limits(): LiveLimits {
    return this.#limits;
  }

  /** Changes limits at run time (operators, tests); a new `flushMs` restarts the timer. */
  setLimits(limits: Partial<LiveLimits>): void {
    const flushChanged = limits.flushMs !== undefined && limits.flushMs !== this.#limits.flushMs;
    this.#limits = { ...this.#limits, ...limits };
    if (flushChanged && this.#timer !== null) {
      this.#stopTimer();
      this.#startTimer();
    }
  }

  subscribe(filter: LiveFilter, client: LiveClient, options: SubscribeOptions = {}): LiveSubscription {
    const sub: Sub = {
      client,
      equipment: new Set(filter.equipment ?? []),
      signals: new Set(filter.signals ?? []),
      all: filter.all === true,
      origin: options.origin,
      dropAfterMs: options.dropAfterMs,
      maxPending: options.maxPending,
      internal: options.internal === true,
      pending: new Map(),
      congestedSince: null,
      lastSentAt: this.#now(),
      open: true,
    };
    this.#subs.add(sub);
    if (sub.all) this.#all.add(sub);
    else {
      for (const id of sub.equipment) addTo(this.#byEquipment, id, sub);
      for (const id of sub.signals) addTo(this.#bySignal, id, sub);
    }
    if (options.snapshot !== false && sub.origin !== 'local') this.#seed(sub);
    if (this.#timer === null) this.#startTimer();
    return { unsubscribe: () => this.#remove(sub) };
  }

  publish(events: readonly LiveEvent[], origin: LiveOrigin): void {
    if (origin === 'local') this.#counts.publishedLocal += events.length;
    else this.#counts.publishedRemote += events.length;
    for (const e of events) {
      this.#remember(e);
      if (this.#subs.size === 0) continue;
      const key = coalesceKeyOf(e);
      for (const sub of this.#all) this.#offer(sub, key, e, origin);
      const byEquipment = this.#byEquipment.get(e.equipment);
      if (byEquipment !== undefined) for (const sub of byEquipment) this.#offer(sub, key, e, origin);
      const bySignal = this.#bySignal.get(e.signal);
      if (bySignal !== undefined) {
        for (const sub of bySignal) if (!sub.equipment.has(e.equipment)) this.#offer(sub, key, e, origin);
      }
    }
  }

  /** Delivers what is pending to every transport that can take it, drops the ones stuck too long. */
  tick(): void {
    const now = this.#now();
    const limits = this.#limits;
    for (const sub of [...this.#subs]) {
      if (!sub.open) continue;
      if (sub.client.bufferedBytes() > limits.maxBufferedBytes) {
        sub.congestedSince ??= now;
        if (now - sub.congestedSince >= (sub.dropAfterMs ?? limits.dropAfterMs)) {
          this.#counts.droppedClients++;
          this.#log.warn(
            { congestedMs: now - sub.congestedSince, pending: sub.pending.size },
            'live subscriber too slow: dropped',
          );
          this.#close(sub, 'slow');
        }
        continue;
      }
      sub.congestedSince = null;
      try {
        if (sub.pending.size > 0) {
          const events = [...sub.pending.values()];
          sub.pending = new Map();
          sub.lastSentAt = now;
          this.#counts.delivered += events.length;
          sub.client.deliver(events);
        } else if (now - sub.lastSentAt >= limits.heartbeatMs) {
          sub.lastSentAt = now;
          sub.client.heartbeat();
        }
      } catch (e) {
        this.#log.error({ err: e }, 'a live subscriber failed; closing it');
        this.#close(sub, 'failed');
      }
    }
  }

  /** Closes every subscription (shutdown). */
  close(): void {
    for (const sub of [...this.#subs]) this.#close(sub, 'shutdown');
  }

  stats(): LiveHubStats {
    let clients = 0;
    for (const sub of this.#subs) if (!sub.internal) clients++;
    return { clients, ...this.#counts };
  }

  #offer(sub: Sub, key: string, e: LiveEvent, origin: LiveOrigin): void {
    if (sub.origin !== undefined && sub.origin !== origin) return;
    const pending = sub.pending;
    if (pending.delete(key)) this.#counts.coalesced++;
    else if (pending.size >= (sub.maxPending ?? this.#limits.maxPendingPerClient)) {
      this.#counts.overflowed++;
      return;
    }
    pending.set(key, e);
  }

  #remember(e: LiveEvent): void {
    let latest = this.#latest.get(e.signal);
    if (latest === undefined) {
      if (this.#latest.size >= this.#limits.maxSnapshotSignals) return;
      latest = { equipment: e.equipment, sample: null, stale: null };
      this.#latest.set(e.signal, latest);
    }
    latest.equipment = e.equipment;
    switch (e.type) {
      case 'sample':
        latest.sample = e;
        latest.stale = null;
        break;
      case 'stale':
        latest.stale = e;
        break;
    }
  }

  #seed(sub: Sub): void {
    const matches = (signal: string, l: Latest) =>
      sub.all || sub.equipment.has(l.equipment) || sub.signals.has(signal);
    for (const [signal, l] of this.#latest) {
      if (!matches(signal, l)) continue;
      for (const e of [l.sample, l.stale]) {
        if (e === null) continue;
        if (sub.pending.size >= (sub.maxPending ?? this.#limits.maxPendingPerClient)) return;
        sub.pending.set(coalesceKeyOf(e), e);
      }
    }
  }

  #close(sub: Sub, reason: LiveCloseReason): void {
    if (!sub.open) return;
    this.#remove(sub);
    try {
      sub.client.close(reason);
    } catch (e) {
      this.#log.error({ err: e }, 'closing a live subscriber failed');
    }
  }

  #remove(sub: Sub): void {
    if (!sub.open) return;
    sub.open = false;
    sub.pending = new Map();
    this.#subs.delete(sub);
    this.#all.delete(sub);
    for (const id of sub.equipment) removeFrom(this.#byEquipment, id, sub);
    for (const id of sub.signals) removeFrom(this.#bySignal, id, sub);
    if (this.#subs.size === 0) this.#stopTimer();
  }

  #startTimer(): void {
    this.#timer = this.#timers.setInterval(() => this.tick(), this.#limits.flushMs);
  }

  #stopTimer(): void {
    if (this.#timer === null) return;
    this.#timers.clearInterval(this.#timer);
    this.#timer = null;
  }
}

function addTo(index: Map<string, Set<Sub>>, id: string, sub: Sub): void {
  let set = index.get(id);
  if (set === undefined) {
    set = new Set();
    index.set(id, set);
  }
  set.add(sub);
}

function removeFrom(index: Map<string, Set<Sub>>, id: string, sub: Sub): void {
  const set = index.get(id);
  if (set === undefined) return;
  set.delete(sub);
  if (set.size === 0) index.delete(id);
}

/** Live samples of the ingest pipeline as live events. */
export function sampleEvents(samples: readonly LiveSample[]): LiveSampleEvent[] {
  return samples.map((s) => ({
    type: 'sample',
    signal: s.signal.id,
    equipment: s.signal.equipment,
    t: s.ts,
    value: s.value,
    quality: s.quality,
  }));
}

/** A stale mark of the ingest pipeline as live events, one per signal. */
export function staleEvents(signals: readonly MappedSignal[], at: number, reason: string): LiveStaleEvent[] {
  return signals.map((s) => ({ type: 'stale', signal: s.id, equipment: s.equipment, at, reason }));
}

/** Feeds every live sample and stale mark of the pipeline into the hub (origin local). */
export function connectPipeline(
  hub: LiveHub,
  pipeline: {
    subscribe(listener: (samples: readonly LiveSample[]) => void): () => void;
    onStale(listener: (signals: readonly MappedSignal[], at: number, reason: string) => void): () => void;
  },
): () => void {
  const offSamples = pipeline.subscribe((samples) => hub.publish(sampleEvents(samples), 'local'));
  const offStale = pipeline.onStale((signals, at, reason) =>
    hub.publish(staleEvents(signals, at, reason), 'local'),
  );
  return () => {
    offSamples();
    offStale();
  };
}

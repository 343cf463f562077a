import type { TagSample } from '../../domain/signal/sample.ts';

/**
 * Where every connector (Sparkplug host, OPC UA client, Modbus poller) hands its data: the one
 * ingest pipeline. Calls return at once; the pipeline maps, filters and batches on its own
 * schedule, so a connector's socket handler never waits for the database.
 */
export interface TelemetrySink {
  /**
   * Samples from one source message, in the order the source sent them. Tags no signal maps are
   * counted (unmapped) and dropped; under overload the pipeline buffers to a bound, then counts
   * and reports what it had to drop — never silently.
   */
  accept(samples: readonly TagSample[]): void;
  /**
   * Every tag whose key starts with `tagPrefix` is stale from `at` (UTC epoch ms): its source is
   * gone (Sparkplug NDEATH/DDEATH, an OPC UA session lost). Live values keep their last value
   * with quality `bad`, and the equipment state derived from them becomes unknown.
   */
  markStale(tagPrefix: string, at: number, reason: string): void;
}

/** What a connection-health entry is. */
export type ConnectivityKind = 'mqtt-broker' | 'edge-node' | 'device' | 'opcua-endpoint' | 'modbus-device';

/** `online`: talking; `offline`: known gone (death, closed); `stale`: silent or out of sync (waiting for a rebirth). */
export type ConnectivityState = 'online' | 'offline' | 'stale' | 'connecting';

export interface ConnectivityEntry {
  readonly kind: ConnectivityKind;
  /** Stable id within its kind (`mqtt://127.0.0.1:1883`, `plant1/press-edge`, `plant1/press-edge/press-1`). */
  readonly id: string;
  readonly state: ConnectivityState;
  /** Why it is in this state, in words (`NDEATH bdSeq 3`, `ECONNREFUSED`). */
  readonly detail?: string;
  /** UTC epoch ms of the last message received from it; null before the first. */
  readonly lastMessageAt: number | null;
  readonly since: number;
  /** Monotonic counters (`messages`, `malformed`, `unknownAlias`, `rebirthRequests`, …). */
  readonly counters: Readonly<Record<string, number>>;
  /** The latest data gap recorded for it (`recordGap`); absent while there has been none. */
  readonly lastGap?: DataGap;
}

/**
 * A span in which values from a source were lost and will never arrive (an OPC UA server restart
 * or session timeout, RELIABILITY.md rule 7): UTC epoch ms, and why.
 */
export interface DataGap {
  readonly from: number;
  readonly to: number;
  readonly reason: string;
}

/** Connectors report their peers here; `GET /api/connectivity` and `/ready` read it. */
export interface ConnectivityReporter {
  /** Sets state (and detail) of an entry, creating it if new. */
  setState(kind: ConnectivityKind, id: string, state: ConnectivityState, detail?: string): void;
  /** Notes a message from the entry now (its clock), creating it if new (state `online`). */
  touch(kind: ConnectivityKind, id: string, at: number): void;
  /** Adds `by` (default 1) to a counter of the entry. */
  count(kind: ConnectivityKind, id: string, counter: string, by?: number): void;
  /** Records a data gap of the entry: counter `gaps` + 1, and `lastGap` shows it. */
  recordGap(kind: ConnectivityKind, id: string, gap: DataGap): void;
}

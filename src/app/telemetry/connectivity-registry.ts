import type { Clock } from '../../domain/shared/clock.ts';
import type {
  ConnectivityEntry,
  ConnectivityKind,
  ConnectivityReporter,
  ConnectivityState,
  DataGap,
} from './telemetry-ports.ts';

interface MutableEntry {
  kind: ConnectivityKind;
  id: string;
  state: ConnectivityState;
  detail?: string;
  lastMessageAt: number | null;
  since: number;
  counters: Record<string, number>;
  lastGap?: DataGap;
}

/** Connection health of this instance's connectors, in memory (each instance reports its own). */
export class ConnectivityRegistry implements ConnectivityReporter {
  readonly #entries = new Map<string, MutableEntry>();
  readonly #clock: Clock;

  constructor(clock: Clock) {
    this.#clock = clock;
  }

  #entry(kind: ConnectivityKind, id: string, initial: ConnectivityState): MutableEntry {
    const key = `${kind}\u0000${id}`;
    let e = this.#entries.get(key);
    if (e === undefined) {
      e = { kind, id, state: initial, lastMessageAt: null, since: this.#clock.now().getTime(), counters: {} };
      this.#entries.set(key, e);
    }
    return e;
  }

  setState(kind: ConnectivityKind, id: string, state: ConnectivityState, detail?: string): void {
    const e = this.#entry(kind, id, state);
    if (e.state !== state) {
      e.state = state;
      e.since = this.#clock.now().getTime();
    }
    if (detail === undefined) delete e.detail;
    else e.detail = detail;
  }

  touch(kind: ConnectivityKind, id: string, at: number): void {
    this.#entry(kind, id, 'online').lastMessageAt = at;
  }

  count(kind: ConnectivityKind, id: string, counter: string, by = 1): void {
    const e = this.#entry(kind, id, 'online');
    e.counters[counter] = (e.counters[counter] ?? 0) + by;
  }

  recordGap(kind: ConnectivityKind, id: string, gap: DataGap): void {
    const e = this.#entry(kind, id, 'online');
    e.counters.gaps = (e.counters.gaps ?? 0) + 1;
    e.lastGap = { from: gap.from, to: gap.to, reason: gap.reason };
  }

  /** A copy of every entry, sorted by kind then id. */
  list(): ConnectivityEntry[] {
    return [...this.#entries.values()]
      .map((e) => ({ ...e, counters: { ...e.counters } }))
      .sort((a, b) => (a.kind === b.kind ? a.id.localeCompare(b.id) : a.kind.localeCompare(b.kind)));
  }
}

import { compareReadBack } from '../../domain/equipment/equipment-command.ts';
import type { DomainError, Result } from '../../domain/shared/result.ts';
import type { Signal } from '../../domain/signal/signal.ts';
import type { LiveHub, LiveSampleEvent, LiveStaleEvent } from '../telemetry/live-hub.ts';
import type { ConnectorError, ConnectorWrite, EquipmentConnector, SignalWrite } from './command-ports.ts';

/** The Sparkplug host's command side (`MqttSparkplugHost.writeMetrics`): NCMD/DCMD, QoS 0. */
export interface SparkplugCommandChannel {
  writeMetrics(
    target: { readonly group: string; readonly edgeNode: string; readonly device?: string | null },
    metrics: readonly { readonly name: string; readonly value: number | boolean | string }[],
  ): Promise<Result<unknown, DomainError>>;
}

/** Codes of the host after which nothing was sent because a peer is not there. */
const DISCONNECTED = new Set([
  'LOOM_SPARKPLUG_BROKER_DISCONNECTED',
  'LOOM_SPARKPLUG_NODE_OFFLINE',
  'LOOM_SPARKPLUG_NODE_STALE',
  'LOOM_SPARKPLUG_DEVICE_OFFLINE',
]);

type SparkplugSignal = Signal & {
  source: { sparkplug: { group: string; edgeNode: string; device?: string; metric: string } };
};

/**
 * Live values of some signals, from the live hub (which also carries what other Loom instances
 * received: with a shared subscription the DDATA that answers a DCMD may reach another instance).
 */
class LiveWatch {
  readonly #sub: { unsubscribe(): void };
  readonly #sample = new Map<string, LiveSampleEvent>();
  readonly #stale = new Map<string, LiveStaleEvent>();
  readonly #after = new Map<string, LiveSampleEvent[]>();
  #armed = false;
  #wake: (() => void) | null = null;

  constructor(hub: Pick<LiveHub, 'subscribe' | 'tick'>, signals: readonly string[]) {
    this.#sub = hub.subscribe(
      { signals },
      {
        bufferedBytes: () => 0,
        deliver: (events) => {
          for (const e of events) {
            if (e.type === 'stale') this.#stale.set(e.signal, e);
            else {
              this.#sample.set(e.signal, e);
              this.#stale.delete(e.signal);
              if (this.#armed) this.#after.set(e.signal, [...(this.#after.get(e.signal) ?? []), e]);
            }
          }
          this.#wake?.();
        },
        heartbeat: () => undefined,
        close: () => this.#wake?.(),
      },
      { internal: true, snapshot: true, dropAfterMs: Number.POSITIVE_INFINITY },
    );
    // The snapshot is filed as pending; one tick hands it over now instead of within `flushMs`.
    hub.tick();
  }

  latest(signal: string): LiveSampleEvent | LiveStaleEvent | undefined {
    return this.#stale.get(signal) ?? this.#sample.get(signal);
  }

  /** From now on, samples count as arriving after the write. */
  arm(): void {
    this.#armed = true;
  }

  after(signal: string): readonly LiveSampleEvent[] {
    return this.#after.get(signal) ?? [];
  }

  /** Resolves on the next delivery, or at `deadline` (performance.now() ms). */
  next(deadline: number): Promise<void> {
    const left = deadline - performance.now();
    if (left <= 0) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.#wake = null;
        resolve();
      };
      const timer = setTimeout(done, left);
      this.#wake = done;
    });
  }

  close(): void {
    this.#sub.unsubscribe();
    this.#wake?.();
  }
}

/**
 * Commands over Sparkplug B: a DCMD (NCMD for an edge node's own metrics) through the host, one
 * message per device with every value of the command for it. DCMD is QoS 0 and carries no reply
 * (RELIABILITY.md H18): a write is confirmed when the edge reports the metric in a DDATA with the
 * value written, within `readBackTimeoutMs`. Sparkplug has no read either: "the value now" is
 * the latest value Loom received, and results say so (`via: 'live'`).
 */
export function sparkplugConnector(deps: {
  readonly channel: SparkplugCommandChannel;
  readonly hub: Pick<LiveHub, 'subscribe' | 'tick'>;
  readonly readBackTimeoutMs: number;
}): EquipmentConnector {
  const { channel, hub } = deps;

  async function writeDevice(writes: readonly SignalWrite[]): Promise<ConnectorWrite[]> {
    const first = (writes[0]!.signal as SparkplugSignal).source.sparkplug;
    const ids = writes.map((w) => w.signal.id);
    const watch = new LiveWatch(hub, ids);
    try {
      const before = new Map(ids.map((id) => [id, watch.latest(id)]));
      watch.arm();
      const sent = await channel.writeMetrics(
        { group: first.group, edgeNode: first.edgeNode, device: first.device ?? null },
        writes.map((w) => ({ name: (w.signal as SparkplugSignal).source.sparkplug.metric, value: w.value })),
      );
      if (!sent.ok) {
        const error: ConnectorError = {
          code: sent.error.code,
          message: sent.error.message,
          kind: DISCONNECTED.has(sent.error.code) ? 'disconnected' : 'failed',
        };
        return writes.map(() => ({ ok: false, error }));
      }
      const deadline = performance.now() + deps.readBackTimeoutMs;
      // Report by exception: a metric is in a DDATA only when it changed. So a value reported after
      // the DCMD that differs from the one before is the edge's answer (clamped, rounded), and a
      // write of the value already there is not answered at all.
      const settled = (w: SignalWrite): boolean => {
        const seen = watch.after(w.signal.id);
        if (seen.some((e) => compareReadBack(w.value, e.value).matches)) return true;
        const b = before.get(w.signal.id);
        if (b?.type !== 'sample') return false;
        if (seen.length === 0) return compareReadBack(w.value, b.value).matches;
        return seen.at(-1)!.value !== b.value;
      };
      while (performance.now() < deadline && !writes.every(settled)) {
        if (writes.some((w) => watch.latest(w.signal.id)?.type === 'stale')) break;
        await watch.next(deadline);
      }
      return writes.map((w): ConnectorWrite => {
        const seen = watch.after(w.signal.id);
        const match = seen.find((e) => compareReadBack(w.value, e.value).matches);
        if (match) return { ok: true, readBack: match.value, via: 'live' };
        const latest = watch.latest(w.signal.id);
        if (latest?.type === 'stale') {
          return {
            ok: false,
            error: {
              code: 'LOOM_COMMAND_SOURCE_STALE',
              message: `'${w.signal.id}' went stale after the command was sent (${latest.reason}); whether it took effect is unknown`,
              kind: 'unconfirmed',
            },
          };
        }
        const last = seen.at(-1);
        if (last) return { ok: true, readBack: last.value, via: 'live' };
        const b = before.get(w.signal.id);
        if (b?.type === 'sample' && compareReadBack(w.value, b.value).matches) {
          return { ok: true, readBack: b.value, via: 'live' };
        }
        return {
          ok: false,
          error: {
            code: 'LOOM_COMMAND_NOT_CONFIRMED',
            message: `no DDATA reported '${(w.signal as SparkplugSignal).source.sparkplug.metric}' within ${deps.readBackTimeoutMs} ms of the DCMD; the edge may not have applied it`,
            kind: 'unconfirmed',
          },
        };
      });
    } finally {
      watch.close();
    }
  }

  return {
    check: () => null,
    async read(signal) {
      const watch = new LiveWatch(hub, [signal.id]);
      const latest = watch.latest(signal.id);
      watch.close();
      if (latest?.type === 'stale') {
        return {
          ok: false,
          error: {
            code: 'LOOM_COMMAND_SOURCE_STALE',
            message: `'${signal.id}' is stale since ${new Date(latest.at).toISOString()} (${latest.reason})`,
            kind: 'disconnected',
          },
        };
      }
      return {
        ok: true,
        value: {
          value: latest?.value ?? null,
          quality: latest?.quality ?? 'bad',
          at: latest?.t ?? null,
          via: 'live',
        },
      };
    },
    async write(writes) {
      // One DCMD per device, in the order the devices first appear.
      const groups = new Map<string, SignalWrite[]>();
      for (const w of writes) {
        const s = (w.signal as SparkplugSignal).source.sparkplug;
        const key = `${s.group}/${s.edgeNode}/${s.device ?? ''}`;
        groups.set(key, [...(groups.get(key) ?? []), w]);
      }
      const byWrite = new Map<SignalWrite, ConnectorWrite>();
      for (const group of groups.values()) {
        const results = await writeDevice(group);
        group.forEach((w, i) => byWrite.set(w, results[i]!));
        if (results.some((r) => !r.ok)) break;
      }
      const ordered: ConnectorWrite[] = [];
      for (const w of writes) {
        const r = byWrite.get(w);
        if (r === undefined) break;
        ordered.push(r);
      }
      return ordered;
    },
  };
}

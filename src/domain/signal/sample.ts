/**
 * A value as a connector delivers it, before it is mapped to a signal. Bad field data is data:
 * a read that failed is a sample with quality `bad`, not an exception (STYLE.md, OPC UA Part 8).
 */
export type SampleQuality = 'good' | 'uncertain' | 'bad';

/** `null` is "no value" (Sparkplug `is_null`, an OPC UA Bad status without a value). */
export type SampleValue = number | boolean | string | null;

export interface TagSample {
  /** The source tag's key (`tagKey.sparkplug(...)`, `tagKey.opcua(...)`): what a signal maps from. */
  readonly tag: string;
  readonly value: SampleValue;
  readonly quality: SampleQuality;
  /** When the source measured it: UTC epoch milliseconds (Sparkplug metric timestamp, OPC UA SourceTimestamp). */
  readonly sourceTs: number;
  /** When Loom received it: UTC epoch milliseconds, from Loom's clock. */
  readonly serverTs: number;
  /**
   * Not a current value (store-and-forward, backfill: Sparkplug `is_historical`). It is written to
   * history but never replaces the live value (Sparkplug 3.0 §6.4.6, RELIABILITY.md H16).
   */
  readonly historical: boolean;
  /** Live only, never historised (Sparkplug `is_transient`, H17). */
  readonly transient?: boolean;
  /**
   * The same sample may reach Loom more than once: a Sparkplug BIRTH carries current values and is
   * delivered to every Loom instance (only DATA is shared between them) and repeated by a rebirth.
   * The store checks (signal, source timestamp) before writing it. Historical samples are always
   * checked.
   */
  readonly mayRepeat?: boolean;
}

/**
 * Source tag keys. One string per tag so the map tag → signal is a plain lookup; each key is
 * prefixed by its protocol so keys of different connectors never collide. Segments are taken
 * verbatim: Sparkplug ids cannot contain `/` (H20), metric names can (`Node Control/Rebirth`),
 * which is why the metric comes last.
 */
export const tagKey = {
  sparkplug: (group: string, edgeNode: string, device: string | null, metric: string): string =>
    `spb:${group}/${edgeNode}/${device ?? ''}/${metric}`,
  /** Every tag of one Sparkplug edge node (its own metrics and all its devices'). */
  sparkplugNodePrefix: (group: string, edgeNode: string): string => `spb:${group}/${edgeNode}/`,
  /** Every tag of one Sparkplug device. */
  sparkplugDevicePrefix: (group: string, edgeNode: string, device: string): string =>
    `spb:${group}/${edgeNode}/${device}/`,
  /** The Sparkplug edge node a tag belongs to; null for other protocols' tags. */
  sparkplugNodeOf: (tag: string): { group: string; edgeNode: string } | null => {
    const m = /^spb:([^/]+)\/([^/]+)\//.exec(tag);
    return m ? { group: m[1]!, edgeNode: m[2]! } : null;
  },
  opcua: (endpoint: string, nodeId: string): string => `opcua:${endpoint}|${nodeId}`,
  /** Every tag of one OPC UA endpoint (`|` cannot occur in an endpoint URL, so no other endpoint's tags match). */
  opcuaEndpointPrefix: (endpoint: string): string => `opcua:${endpoint}|`,
  modbus: (device: string, register: string): string => `modbus:${device}|${register}`,
} as const;

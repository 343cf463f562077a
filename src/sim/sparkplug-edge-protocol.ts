/**
 * The pure half of the simulated Sparkplug B edge node: topics, payload encoding, command
 * decoding, and the bounded store-and-forward buffers. No I/O; `sparkplug-edge.ts` does the MQTT.
 *
 * Payloads are built with the protobuf classes generated from `sparkplug_b.proto` that ship in
 * `sparkplug-payload`, not with its `encodePayload`: that helper requires a datatype on every
 * metric, and Sparkplug 3.0 §6.4.6 says DATA/CMD metrics SHOULD NOT carry one (E10). The edge is
 * deliberately independent of Loom's host-side codec, so a shared mistake cannot hide in tests.
 */
import protoRoot from 'sparkplug-payload/lib/sparkplugPayloadProto.js';
import type { org } from 'sparkplug-payload/lib/sparkplugPayloadProto.js';
import type { MachineMetric, MetricDatatype, MetricValue } from './plant-physics.ts';

type IMetric = org.eclipse.tahu.protobuf.Payload.IMetric;
const { Payload } = protoRoot.org.eclipse.tahu.protobuf;

export const NAMESPACE = 'spBv1.0';
export const REBIRTH_METRIC = 'Node Control/Rebirth';
export const BDSEQ_METRIC = 'bdSeq';

export type NodeVerb = 'NBIRTH' | 'NDEATH' | 'NDATA' | 'NCMD';
export type DeviceVerb = 'DBIRTH' | 'DDEATH' | 'DDATA' | 'DCMD';

export const topics = {
  node: (group: string, edge: string, verb: NodeVerb): string => `${NAMESPACE}/${group}/${verb}/${edge}`,
  device: (group: string, edge: string, verb: DeviceVerb, device: string): string =>
    `${NAMESPACE}/${group}/${verb}/${edge}/${device}`,
  state: (hostId: string): string => `${NAMESPACE}/STATE/${hostId}`,
};

/** Sparkplug 3.0 §6.4.16 datatype codes. */
export const DATATYPE_CODE: Readonly<Record<MetricDatatype, number>> = {
  Int32: 3,
  Int64: 4,
  Float: 9,
  Double: 10,
  Boolean: 11,
  String: 12,
};

/** A metric as the edge declares it in its BIRTH. `alias` is absent for `Node Control/Rebirth` and `bdSeq`. */
export interface MetricDefinition extends MachineMetric {
  readonly alias?: number;
}

/** One value as acquired: what DATA reports and what store-and-forward keeps. */
export interface Sample {
  /** null: a node metric. */
  readonly device: string | null;
  readonly metric: MetricDefinition;
  readonly value: MetricValue;
  /** Acquisition time, UTC epoch ms. */
  readonly ts: number;
}

function valueFields(datatype: MetricDatatype, value: MetricValue | null): IMetric {
  if (value === null) return { isNull: true };
  switch (datatype) {
    case 'Int32':
      // int_value is uint32 on the wire; Sparkplug carries signed Int32 as its two's complement.
      return { intValue: (value as number) >>> 0 };
    case 'Int64':
      return { longValue: value as number };
    case 'Float':
      return { floatValue: value as number };
    case 'Double':
      return { doubleValue: value as number };
    case 'Boolean':
      return { booleanValue: value as boolean };
    case 'String':
      return { stringValue: value as string };
  }
}

/** A BIRTH metric: name, alias (if any), datatype, timestamp and current value or is_null (E7, E10). */
export function birthMetric(def: MetricDefinition, value: MetricValue | null, ts: number): IMetric {
  return {
    name: def.name,
    ...(def.alias !== undefined ? { alias: def.alias } : {}),
    timestamp: ts,
    datatype: DATATYPE_CODE[def.datatype],
    ...valueFields(def.datatype, value),
  };
}

/** A DATA metric: alias only (name when it has none), timestamp, value; no datatype (E10). */
export function dataMetric(sample: Sample, historical: boolean): IMetric {
  const def = sample.metric;
  return {
    ...(def.alias !== undefined ? { alias: def.alias } : { name: def.name }),
    timestamp: sample.ts,
    ...(historical ? { isHistorical: true } : {}),
    ...valueFields(def.datatype, sample.value),
  };
}

export function encodePayload(p: { timestamp: number; seq?: number; metrics: IMetric[] }): Buffer {
  const bytes = Payload.encode(
    Payload.create({
      timestamp: p.timestamp,
      ...(p.seq !== undefined ? { seq: p.seq } : {}),
      metrics: p.metrics.map((m) => Payload.Metric.create(m)),
    }),
  ).finish();
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** The NDEATH payload, which is also the Will: a single bdSeq Int64 metric, no seq (E2). */
export function deathPayload(bdSeq: number, ts: number): Buffer {
  return encodePayload({
    timestamp: ts,
    metrics: [birthMetric({ name: BDSEQ_METRIC, datatype: 'Int64' }, bdSeq, ts)],
  });
}

interface LongLike {
  toNumber(): number;
  toSigned(): LongLike;
}

const num = (v: number | LongLike | null | undefined): number | undefined =>
  v === null || v === undefined ? undefined : typeof v === 'number' ? v : v.toNumber();

/** A metric of an incoming NCMD/DCMD, before it is matched to a definition. */
export interface CommandMetric {
  readonly name?: string;
  readonly alias?: number;
  readonly isNull: boolean;
  /** Which value field the sender set (`doubleValue`, `booleanValue`, …), if any. */
  readonly field?: string;
  readonly raw: org.eclipse.tahu.protobuf.Payload.Metric;
}

export type DecodedCommand =
  | { readonly ok: true; readonly metrics: readonly CommandMetric[] }
  | { readonly ok: false; readonly message: string };

/**
 * Decodes an NCMD/DCMD payload. Field data is untrusted (RELIABILITY.md rule 10): the size is
 * capped, decoder errors become a refusal, and nothing from the payload becomes an object key.
 */
export function decodeCommand(bytes: Uint8Array, maxBytes: number): DecodedCommand {
  if (bytes.byteLength > maxBytes)
    return { ok: false, message: `payload of ${bytes.byteLength} bytes exceeds ${maxBytes}` };
  let decoded: org.eclipse.tahu.protobuf.Payload;
  try {
    decoded = Payload.decode(bytes);
  } catch (e) {
    return { ok: false, message: `not a Sparkplug B payload: ${(e as Error).message}` };
  }
  const metrics = (decoded.metrics as org.eclipse.tahu.protobuf.Payload.Metric[]).map((m): CommandMetric => {
    const own = (k: string): boolean => Object.prototype.hasOwnProperty.call(m, k);
    const alias = own('alias') ? num(m.alias) : undefined;
    return {
      ...(own('name') && typeof m.name === 'string' ? { name: m.name } : {}),
      ...(alias !== undefined ? { alias } : {}),
      isNull: m.isNull === true,
      ...(m.value ? { field: m.value } : {}),
      raw: m,
    };
  });
  return { ok: true, metrics };
}

/**
 * The value of a command metric as the definition's datatype, or undefined when the sender put a
 * value of an incompatible kind (H18: only compatible datatypes are written). Numbers convert
 * among the numeric types; a Boolean or String must arrive as one.
 */
export function commandValue(m: CommandMetric, datatype: MetricDatatype): MetricValue | undefined {
  const r = m.raw;
  switch (datatype) {
    case 'Boolean':
      return m.field === 'booleanValue' ? r.booleanValue === true : undefined;
    case 'String':
      return m.field === 'stringValue' ? (r.stringValue ?? '') : undefined;
    case 'Int32':
    case 'Int64':
    case 'Float':
    case 'Double': {
      if (m.field === 'doubleValue') return r.doubleValue ?? undefined;
      if (m.field === 'floatValue') return r.floatValue ?? undefined;
      if (m.field === 'intValue') {
        // Signed unless the sender declared an unsigned type (UInt8 5, UInt16 6).
        const v = r.intValue ?? 0;
        return r.datatype === 5 || r.datatype === 6 ? v >>> 0 : v | 0;
      }
      if (m.field === 'longValue') {
        const v = r.longValue as number | LongLike | null | undefined;
        if (v === null || v === undefined) return undefined;
        if (typeof v === 'number') return v;
        // UInt32/UInt64/DateTime (7, 8, 13) are unsigned; Int64 (4) and an undeclared type are signed.
        return r.datatype === 7 || r.datatype === 8 || r.datatype === 13
          ? v.toNumber()
          : v.toSigned().toNumber();
      }
      return undefined;
    }
  }
}

/**
 * Store-and-forward (E14): samples kept while the Primary Host is offline or the link is down,
 * oldest first, at most `capacity`; when full the oldest are dropped and counted (never silently).
 */
export class SampleStore {
  readonly #capacity: number;
  #items: Sample[] = [];
  #head = 0;
  #dropped = 0;

  constructor(capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1)
      throw new RangeError(`capacity must be ≥ 1, got ${capacity}`);
    this.#capacity = capacity;
  }

  get size(): number {
    return this.#items.length - this.#head;
  }

  /** Samples dropped because the store was full. */
  get dropped(): number {
    return this.#dropped;
  }

  push(sample: Sample): void {
    if (this.size >= this.#capacity) {
      this.#head++;
      this.#dropped++;
    }
    this.#items.push(sample);
    this.#compact();
  }

  /** Removes and returns up to `n` of the oldest samples. */
  take(n: number): Sample[] {
    const out = this.#items.slice(this.#head, this.#head + n);
    this.#head += out.length;
    this.#compact();
    return out;
  }

  #compact(): void {
    if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
  }
}

/**
 * The rolling history buffer (RELIABILITY.md rule 2, E14): what was published in the last
 * `maxAgeMs`. A dead link goes unnoticed for up to 1.5 × keep-alive, and QoS 0 data sent into it
 * is lost; after the loss is noticed these samples are sent again as historical. The host
 * receives some twice and must insert idempotently.
 */
export class RollingBuffer {
  readonly #maxAgeMs: number;
  readonly #capacity: number;
  #items: Sample[] = [];
  #head = 0;

  constructor(maxAgeMs: number, capacity: number) {
    this.#maxAgeMs = maxAgeMs;
    this.#capacity = capacity;
  }

  get size(): number {
    return this.#items.length - this.#head;
  }

  record(sample: Sample, now: number): void {
    if (this.#maxAgeMs <= 0) return;
    this.#items.push(sample);
    this.#prune(now);
  }

  /** Returns the samples younger than `maxAgeMs` at `now`, oldest first, and empties the buffer. */
  drain(now: number): Sample[] {
    this.#prune(now);
    const out = this.#items.slice(this.#head);
    this.#items = [];
    this.#head = 0;
    return out;
  }

  #prune(now: number): void {
    const cutoff = now - this.#maxAgeMs;
    while (
      this.#head < this.#items.length &&
      (this.#items[this.#head]!.ts < cutoff || this.size > this.#capacity)
    ) {
      this.#head++;
    }
    if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
  }
}

/** Whether `next` is worth reporting after `last` (report by exception with a deadband, E9). */
export function changed(def: MachineMetric, last: MetricValue | undefined, next: MetricValue): boolean {
  if (last === undefined) return true;
  if (typeof next === 'number' && typeof last === 'number') {
    const band = def.deadband ?? 0;
    return band > 0 ? Math.abs(next - last) >= band : next !== last;
  }
  return next !== last;
}

/** The Primary Host's STATE payload (H2/H4), or null when it is not one. */
export function parseState(payload: Buffer): { online: boolean; timestamp: number } | null {
  if (payload.length === 0 || payload.length > 1024) return null;
  try {
    const v = JSON.parse(payload.toString('utf8')) as unknown;
    if (typeof v !== 'object' || v === null) return null;
    const { online, timestamp } = v as { online?: unknown; timestamp?: unknown };
    if (typeof online !== 'boolean' || typeof timestamp !== 'number' || !Number.isFinite(timestamp))
      return null;
    return { online, timestamp };
  } catch {
    return null;
  }
}

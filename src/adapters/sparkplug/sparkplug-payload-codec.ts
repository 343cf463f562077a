import { createRequire } from 'node:module';
import type { SampleQuality, SampleValue } from '../../domain/signal/sample.ts';

/**
 * The Sparkplug B protobuf payload (Sparkplug 3.0 §6.4), decoded into plain values Loom trusts.
 *
 * Decoding uses the Eclipse Tahu protobuf classes (`sparkplug-payload`, protobufjs 6) but not
 * Tahu's `decodePayload`: that helper copies property-set keys from the wire into a plain object
 * (`propertySet[key] = …`), so a key `__proto__` reaches the prototype chain, and it throws on some
 * data-set values. Here only the fields Loom uses are read, by name, from the protobufjs message;
 * nothing keyed by a name from the wire becomes an object property (RELIABILITY.md rule 10).
 * 64-bit integers stay bigint until they are known to fit a JavaScript number.
 */

const require = createRequire(import.meta.url);

interface LongLike {
  readonly low: number;
  readonly high: number;
}
type WireU64 = number | LongLike;

interface ProtoPropertyValue {
  readonly type?: number;
  readonly isNull?: boolean;
  readonly intValue?: number | null;
  readonly longValue?: WireU64 | null;
}
interface ProtoMetric {
  readonly name?: string;
  readonly alias?: WireU64;
  readonly timestamp?: WireU64;
  readonly datatype?: number;
  readonly isHistorical?: boolean;
  readonly isTransient?: boolean;
  readonly isNull?: boolean;
  readonly properties?: {
    readonly keys?: readonly string[];
    readonly values?: readonly ProtoPropertyValue[];
  } | null;
  readonly intValue?: number | null;
  readonly longValue?: WireU64 | null;
  readonly floatValue?: number | null;
  readonly doubleValue?: number | null;
  readonly booleanValue?: boolean | null;
  readonly stringValue?: string | null;
}
interface ProtoPayload {
  readonly timestamp?: WireU64;
  readonly seq?: WireU64;
  readonly metrics?: readonly ProtoMetric[];
}

interface TahuProto {
  org: { eclipse: { tahu: { protobuf: { Payload: { decode(bytes: Uint8Array): ProtoPayload } } } } };
}
interface TahuEncoder {
  encodePayload(payload: unknown): Uint8Array;
}

const Payload = (require('sparkplug-payload/lib/sparkplugPayloadProto.js') as TahuProto).org.eclipse.tahu
  .protobuf.Payload;
const tahu = (require('sparkplug-payload') as { get(ns: string): TahuEncoder | null }).get('spBv1.0')!;

/** Sparkplug 3.0 §6.4.16 datatype codes. */
export const DataType = {
  Int8: 1,
  Int16: 2,
  Int32: 3,
  Int64: 4,
  UInt8: 5,
  UInt16: 6,
  UInt32: 7,
  UInt64: 8,
  Float: 9,
  Double: 10,
  Boolean: 11,
  String: 12,
  DateTime: 13,
  Text: 14,
  UUID: 15,
  DataSet: 16,
  Bytes: 17,
  File: 18,
  Template: 19,
  PropertySet: 20,
  PropertySetList: 21,
} as const;
export type DataTypeName = keyof typeof DataType;

const DATA_TYPE_NAMES = new Map<number, DataTypeName>(
  (Object.keys(DataType) as DataTypeName[]).map((n) => [DataType[n], n]),
);

/** The datatype's name, or null for a code the spec does not define (0 is "Unknown"). */
export function dataTypeName(code: number): DataTypeName | null {
  return DATA_TYPE_NAMES.get(code) ?? null;
}

/** Which value field of the metric's `oneof value` was on the wire. */
export type RawMetricValue =
  | { readonly field: 'int'; readonly value: number }
  | { readonly field: 'long'; readonly value: bigint }
  | { readonly field: 'float'; readonly value: number }
  | { readonly field: 'double'; readonly value: number }
  | { readonly field: 'boolean'; readonly value: boolean }
  | { readonly field: 'string'; readonly value: string }
  /** bytes, data set, template or extension value: carried by Loom's model as "not supported". */
  | { readonly field: 'other' }
  | { readonly field: 'none' };

export interface SparkplugMetric {
  readonly name: string | null;
  /** Aliases are numbers: one beyond 2^53 is refused as malformed (no encoder in the field makes them). */
  readonly alias: number | null;
  /** UTC epoch ms. */
  readonly timestamp: number | null;
  /** null when absent or 0 ("Unknown"): DATA and CMD usually omit it (§6.4.6). */
  readonly datatype: number | null;
  readonly isHistorical: boolean;
  readonly isTransient: boolean;
  readonly isNull: boolean;
  readonly value: RawMetricValue;
  /**
   * The `Quality` property (Ignition / Cirrus Link convention, OPC DA quality codes: 192 good,
   * 64 uncertain, 0 bad), or null when the metric has none.
   */
  readonly quality: number | null;
}

export interface SparkplugPayload {
  /** UTC epoch ms. */
  readonly timestamp: number | null;
  /** 0..255 when present. */
  readonly seq: number | null;
  readonly metrics: readonly SparkplugMetric[];
}

/**
 * `oversize`: larger than the configured cap, not decoded at all; `notProtobuf`: not a protobuf
 * message (JSON, text); `malformed`: protobuf that breaks a Sparkplug rule (seq > 255, a timestamp
 * beyond 2^53, several values in one metric, …).
 */
export type PayloadProblem = 'oversize' | 'notProtobuf' | 'malformed';

export type PayloadDecode =
  | { readonly ok: true; readonly payload: SparkplugPayload }
  | { readonly ok: false; readonly problem: PayloadProblem; readonly detail: string };

class MalformedPayload extends Error {}

const has = (o: object, key: string): boolean => Object.prototype.hasOwnProperty.call(o, key);

function u64(v: WireU64): bigint {
  if (typeof v === 'number') {
    if (!Number.isInteger(v) || v < 0) throw new MalformedPayload(`not an unsigned 64-bit integer: ${v}`);
    return BigInt(v);
  }
  return BigInt.asUintN(64, (BigInt(v.high >>> 0) << 32n) | BigInt(v.low >>> 0));
}

/** 2^32 */
const TWO_32 = 4294967296;
/** The high word of a uint64 below 2^53. */
const SAFE_HIGH = 0x200000;

/**
 * A uint64 that must fit a double exactly (timestamps, aliases), without BigInt: this runs for
 * every metric of every message, and BigInt arithmetic was a large share of decoding time.
 */
function safeU64(v: WireU64, what: string): number {
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v) || v < 0)
      throw new MalformedPayload(`${what} ${v} is not a safe unsigned integer`);
    return v;
  }
  const high = v.high >>> 0;
  if (high >= SAFE_HIGH) throw new MalformedPayload(`${what} ${u64(v)} is beyond 2^53`);
  return high * TWO_32 + (v.low >>> 0);
}

function epochMs(v: WireU64, what: string): number {
  return safeU64(v, what);
}

const OTHER_VALUE_FIELDS = ['bytesValue', 'datasetValue', 'templateValue', 'extensionValue'] as const;
const NO_VALUE: RawMetricValue = { field: 'none' };
const OTHER_VALUE: RawMetricValue = { field: 'other' };

function rawValue(m: ProtoMetric): RawMetricValue {
  // Without an intermediate list: this runs once per metric.
  let found: RawMetricValue = NO_VALUE;
  let count = 0;
  if (typeof m.doubleValue === 'number' && has(m, 'doubleValue')) {
    found = { field: 'double', value: m.doubleValue };
    count++;
  }
  if (typeof m.intValue === 'number' && has(m, 'intValue')) {
    found = { field: 'int', value: m.intValue };
    count++;
  }
  if (m.longValue != null && has(m, 'longValue')) {
    found = { field: 'long', value: u64(m.longValue) };
    count++;
  }
  if (typeof m.floatValue === 'number' && has(m, 'floatValue')) {
    found = { field: 'float', value: m.floatValue };
    count++;
  }
  if (typeof m.booleanValue === 'boolean' && has(m, 'booleanValue')) {
    found = { field: 'boolean', value: m.booleanValue };
    count++;
  }
  if (typeof m.stringValue === 'string' && has(m, 'stringValue')) {
    found = { field: 'string', value: m.stringValue };
    count++;
  }
  for (const other of OTHER_VALUE_FIELDS) {
    if (has(m, other)) {
      found = OTHER_VALUE;
      count++;
    }
  }
  if (count > 1) throw new MalformedPayload(`a metric carries ${count} values`);
  return found;
}

function qualityProperty(m: ProtoMetric): number | null {
  const keys = m.properties?.keys;
  const values = m.properties?.values;
  if (!keys || !values) return null;
  const i = keys.indexOf('Quality');
  const pv = i === -1 ? undefined : values[i];
  if (pv === undefined || pv.isNull === true) return null;
  if (typeof pv.intValue === 'number' && has(pv, 'intValue')) return pv.intValue | 0;
  if (pv.longValue != null && has(pv, 'longValue')) return Number(BigInt.asIntN(64, u64(pv.longValue)));
  return null;
}

function metricOf(m: ProtoMetric): SparkplugMetric {
  return {
    name: has(m, 'name') && typeof m.name === 'string' ? m.name : null,
    alias: m.alias !== undefined && has(m, 'alias') ? safeU64(m.alias, 'alias') : null,
    timestamp:
      has(m, 'timestamp') && m.timestamp !== undefined ? epochMs(m.timestamp, 'metric timestamp') : null,
    datatype: has(m, 'datatype') && typeof m.datatype === 'number' && m.datatype !== 0 ? m.datatype : null,
    isHistorical: m.isHistorical === true,
    isTransient: m.isTransient === true,
    isNull: m.isNull === true,
    value: rawValue(m),
    quality: qualityProperty(m),
  };
}

/**
 * Decodes one Sparkplug payload. Never throws: a payload larger than `maxBytes` is refused before
 * any parsing, decoder failures are contained and returned.
 */
export function decodeSparkplugPayload(bytes: Uint8Array, maxBytes: number): PayloadDecode {
  if (bytes.byteLength > maxBytes) {
    return { ok: false, problem: 'oversize', detail: `${bytes.byteLength} bytes, limit ${maxBytes}` };
  }
  // A JSON document's first byte `{` / `[` would be a protobuf group start (field 15 / 11), which
  // the Sparkplug payload never uses: say "JSON" rather than a decoder's offset message.
  const first = bytes[0];
  if (first === 0x7b || first === 0x5b) {
    return {
      ok: false,
      problem: 'notProtobuf',
      detail: 'looks like JSON, not a Sparkplug B protobuf payload',
    };
  }
  let proto: ProtoPayload;
  try {
    proto = Payload.decode(bytes);
  } catch (e) {
    return { ok: false, problem: 'notProtobuf', detail: `protobuf decoding failed: ${(e as Error).message}` };
  }
  try {
    let seq: number | null = null;
    if (has(proto, 'seq') && proto.seq !== undefined) {
      const s = u64(proto.seq);
      if (s > 255n) throw new MalformedPayload(`seq ${s} is outside 0..255`);
      seq = Number(s);
    }
    return {
      ok: true,
      payload: {
        timestamp:
          has(proto, 'timestamp') && proto.timestamp !== undefined
            ? epochMs(proto.timestamp, 'timestamp')
            : null,
        seq,
        metrics: (proto.metrics ?? []).map(metricOf),
      },
    };
  } catch (e) {
    if (e instanceof MalformedPayload) return { ok: false, problem: 'malformed', detail: e.message };
    return { ok: false, problem: 'malformed', detail: `unreadable payload: ${(e as Error).message}` };
  }
}

export type ValueConversion =
  | {
      readonly ok: true;
      readonly value: SampleValue;
      /** Set when the value is not trustworthy as given: 64-bit beyond 2^53 (uncertain), NaN/±Infinity (bad). */
      readonly quality?: Exclude<SampleQuality, 'good'>;
    }
  | { readonly ok: false; readonly reason: 'wrongType' | 'unsupportedType'; readonly detail: string };

const INT_RANGE: ReadonlyMap<number, readonly [bigint, bigint]> = new Map([
  [DataType.Int8, [-128n, 127n]],
  [DataType.Int16, [-32768n, 32767n]],
  [DataType.Int32, [-(2n ** 31n), 2n ** 31n - 1n]],
  [DataType.Int64, [-(2n ** 63n), 2n ** 63n - 1n]],
  [DataType.UInt8, [0n, 255n]],
  [DataType.UInt16, [0n, 65535n]],
  [DataType.UInt32, [0n, 2n ** 32n - 1n]],
  [DataType.UInt64, [0n, 2n ** 64n - 1n]],
  [DataType.DateTime, [0n, 2n ** 64n - 1n]],
] as const);
const SIGNED = new Set<number>([DataType.Int8, DataType.Int16, DataType.Int32, DataType.Int64]);
const SMALL_SIGNED_WIDTH = new Map<number, bigint>([
  [DataType.Int8, 256n],
  [DataType.Int16, 65536n],
]);
const UNSUPPORTED = new Set<number>([
  DataType.DataSet,
  DataType.Bytes,
  DataType.File,
  DataType.Template,
  DataType.PropertySet,
  DataType.PropertySetList,
]);

function integerValue(datatype: number, raw: RawMetricValue): bigint | null {
  const range = INT_RANGE.get(datatype)!;
  let v: bigint;
  if (raw.field === 'int') {
    // int_value is a uint32 on the wire; signed types arrive sign-extended to 32 bits (Tahu) or,
    // from some encoders, as the unsigned 8/16-bit pattern: both are accepted.
    v = SIGNED.has(datatype) ? BigInt(raw.value | 0) : BigInt(raw.value >>> 0);
    const width = SMALL_SIGNED_WIDTH.get(datatype);
    if (width !== undefined && v > range[1] && v < width) v -= width;
  } else if (raw.field === 'long') {
    v = SIGNED.has(datatype) ? BigInt.asIntN(64, raw.value) : raw.value;
  } else return null;
  return v >= range[0] && v <= range[1] ? v : null;
}

/**
 * The metric's value as a sample value, checked against the datatype its BIRTH declared
 * (H17: `is_null` is null whatever the type). Integer types accept int_value or long_value as long
 * as the number fits the type; a value field of another kind is `wrongType`.
 */
export function toSampleValue(
  datatype: number,
  metric: Pick<SparkplugMetric, 'isNull' | 'value'>,
): ValueConversion {
  if (metric.isNull) return { ok: true, value: null };
  const raw = metric.value;
  // The common case first, without building messages or BigInts (once per metric of every message).
  if (
    (datatype === DataType.Double || datatype === DataType.Float) &&
    (raw.field === 'double' || raw.field === 'float')
  ) {
    return Number.isFinite(raw.value)
      ? { ok: true, value: raw.value }
      : { ok: true, value: null, quality: 'bad' };
  }
  if (UNSUPPORTED.has(datatype))
    return { ok: false, reason: 'unsupportedType', detail: `${typeNameOf(datatype)} values` };
  if (raw.field === 'none')
    return { ok: false, reason: 'wrongType', detail: `${typeNameOf(datatype)} metric carries no value` };
  if (INT_RANGE.has(datatype)) {
    const v = integerValue(datatype, raw);
    if (v === null) return wrongValue(datatype, raw);
    const safe = v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER);
    return safe ? { ok: true, value: Number(v) } : { ok: true, value: Number(v), quality: 'uncertain' };
  }
  switch (datatype) {
    case DataType.Float:
    case DataType.Double:
      return wrongValue(datatype, raw);
    case DataType.Boolean:
      return raw.field === 'boolean' ? { ok: true, value: raw.value } : wrongValue(datatype, raw);
    case DataType.String:
    case DataType.Text:
    case DataType.UUID:
      return raw.field === 'string' ? { ok: true, value: raw.value } : wrongValue(datatype, raw);
    default:
      return { ok: false, reason: 'wrongType', detail: `unknown datatype ${datatype}` };
  }
}

const typeNameOf = (datatype: number): string => dataTypeName(datatype) ?? `datatype ${datatype}`;

function wrongValue(datatype: number, raw: RawMetricValue): ValueConversion {
  return {
    ok: false,
    reason: 'wrongType',
    detail: `${typeNameOf(datatype)} metric carries a ${raw.field} value${'value' in raw ? ` (${String(raw.value)})` : ''}`,
  };
}

/** An integer metric's value as bigint (bdSeq), or null if it has none. */
export function integerOf(metric: SparkplugMetric): bigint | null {
  if (metric.value.field === 'int') return BigInt(metric.value.value >>> 0);
  if (metric.value.field === 'long') return metric.value.value;
  return null;
}

/** OPC DA quality bits 7–6 (the `Quality` property convention): 11 good, 01 uncertain, 00 bad. */
export function qualityFromCode(code: number): SampleQuality {
  const bits = code & 0xc0;
  if (bits === 0xc0) return 'good';
  if (bits === 0x00) return 'bad';
  return 'uncertain';
}

/**
 * Why `value` cannot be written to a metric of `datatype`, or null if it can (H18): integers must be
 * safe integers in the type's range, floats finite numbers, strings strings, booleans booleans.
 */
export function checkCommandValue(datatype: number, value: number | boolean | string): string | null {
  const range = INT_RANGE.get(datatype);
  if (range !== undefined) {
    if (typeof value !== 'number' || !Number.isSafeInteger(value))
      return `needs a whole number, got ${typeof value === 'number' ? value : typeof value}`;
    const v = BigInt(value);
    return v >= range[0] && v <= range[1] ? null : `${value} is outside ${range[0]}..${range[1]}`;
  }
  switch (datatype) {
    case DataType.Float:
    case DataType.Double:
      return typeof value === 'number' && Number.isFinite(value)
        ? null
        : `needs a finite number, got ${typeof value}`;
    case DataType.Boolean:
      return typeof value === 'boolean' ? null : `needs true or false, got ${typeof value}`;
    case DataType.String:
    case DataType.Text:
    case DataType.UUID:
      return typeof value === 'string' ? null : `needs text, got ${typeof value}`;
    default:
      return 'Loom does not write this datatype';
  }
}

export interface CommandMetric {
  /** Omitted when the metric has an alias: CMD messages carry the alias only (§6.4.6, H15). */
  readonly name?: string;
  readonly alias?: number;
  readonly type: DataTypeName;
  readonly value: number | boolean | string;
}

/**
 * An NCMD/DCMD payload (§6.4.23–24): a timestamp, no seq. Encoded with Tahu's own encoder, so the
 * datatype is on every metric: Tahu's decoder (the common edge) reads a value only through it.
 */
export function encodeCommandPayload(timestamp: number, metrics: readonly CommandMetric[]): Uint8Array {
  return tahu.encodePayload({
    timestamp,
    metrics: metrics.map((m) => ({
      ...(m.name !== undefined ? { name: m.name } : {}),
      ...(m.alias !== undefined ? { alias: m.alias } : {}),
      type: m.type,
      value: m.value,
      timestamp,
    })),
  });
}

/** NCMD `Node Control/Rebirth` = true (§5.17, H10): Boolean, never an alias. */
export function encodeRebirthRequest(timestamp: number): Uint8Array {
  return encodeCommandPayload(timestamp, [{ name: 'Node Control/Rebirth', type: 'Boolean', value: true }]);
}

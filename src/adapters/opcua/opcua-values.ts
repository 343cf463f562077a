/**
 * OPC UA values without I/O: how a DataValue's Variant becomes a sample value and quality, how a
 * value to write is converted to a node's built-in DataType (refused before anything is sent when
 * it does not fit), and how NodeId strings with a namespace URI are resolved.
 *
 * Built-in DataType numbers and StatusCode bits are those of OPC UA Part 6 §5.1.2 and Part 4 §7.39,
 * so this file needs nothing from node-opcua: its Variant and StatusCode objects fit the shapes below.
 */
import type { SampleQuality, SampleValue } from '../../domain/signal/sample.ts';

/** OPC UA Part 6 §5.1.2: the built-in types (node-opcua's `DataType` enum has the same numbers). */
export const BuiltInType = {
  Null: 0,
  Boolean: 1,
  SByte: 2,
  Byte: 3,
  Int16: 4,
  UInt16: 5,
  Int32: 6,
  UInt32: 7,
  Int64: 8,
  UInt64: 9,
  Float: 10,
  Double: 11,
  String: 12,
  DateTime: 13,
  Guid: 14,
  ByteString: 15,
  XmlElement: 16,
  NodeId: 17,
  ExpandedNodeId: 18,
  StatusCode: 19,
  QualifiedName: 20,
  LocalizedText: 21,
  ExtensionObject: 22,
  DataValue: 23,
  Variant: 24,
  DiagnosticInfo: 25,
} as const;

const TYPE_NAMES: readonly string[] = Object.keys(BuiltInType);

/** The built-in type's name (`Double`), or `DataType <n>` for a number outside Part 6. */
export const builtInTypeName = (t: number): string => TYPE_NAMES[t] ?? `DataType ${t}`;

/** VariantArrayType: 0 scalar, 1 one-dimensional array, 2 matrix. */
const SCALAR = 0;

/** The part of a node-opcua Variant this file reads. */
export interface VariantLike {
  readonly dataType: number;
  readonly arrayType: number;
  readonly value: unknown;
}

/** Part 4 §7.39: bits 30–31 are the severity (00 Good, 01 Uncertain, 10 Bad). */
export function qualityOf(statusCode: number): SampleQuality {
  const severity = statusCode >>> 30;
  return severity === 0 ? 'good' : severity === 1 ? 'uncertain' : 'bad';
}

/**
 * Part 4 §7.39: the Overflow info bit (with InfoType DataValue) says the server's queue for the
 * monitored item was full and a value was discarded before this one.
 */
export const hasOverflow = (statusCode: number): boolean => (statusCode & 0x80) !== 0;

const TWO_32 = 4294967296;

/**
 * node-opcua carries Int64/UInt64 as `[high, low]` 32-bit words. Beyond ±2^53 the number is the
 * nearest double: a counter that large loses its last digits, never its magnitude.
 */
function int64ToNumber(words: unknown, signed: boolean): number | null {
  if (!Array.isArray(words) || words.length !== 2) return null;
  const [high, low] = words as unknown[];
  if (typeof high !== 'number' || typeof low !== 'number') return null;
  const h = signed ? high | 0 : high >>> 0;
  return h * TWO_32 + (low >>> 0);
}

/** What `sampleValueOf` returns for a Variant Loom does not store (see `describeUnsupported`). */
export const UNSUPPORTED: unique symbol = Symbol('unsupported OPC UA value');

/**
 * The sample value of a Variant: numbers (all integer and float types, Int64/UInt64 included),
 * booleans, strings (String, LocalizedText text, DateTime as ISO 8601, Guid), or null for a Null
 * variant. Anything else (arrays, structures, byte strings, non-finite floats) is `UNSUPPORTED`,
 * and the caller records the sample as bad with no value. On the notification hot path: it
 * allocates nothing for numbers and booleans.
 */
export function sampleValueOf(v: VariantLike): SampleValue | typeof UNSUPPORTED {
  if (v.arrayType !== SCALAR) return UNSUPPORTED;
  const value = v.value;
  switch (v.dataType) {
    case BuiltInType.Double:
    case BuiltInType.Float:
    case BuiltInType.Int32:
    case BuiltInType.UInt32:
    case BuiltInType.Int16:
    case BuiltInType.UInt16:
    case BuiltInType.SByte:
    case BuiltInType.Byte:
      // A float NaN or infinity is how many devices say "no valid reading" (as for Modbus).
      return typeof value === 'number' && Number.isFinite(value) ? value : UNSUPPORTED;
    case BuiltInType.Boolean:
      return typeof value === 'boolean' ? value : UNSUPPORTED;
    case BuiltInType.Int64:
    case BuiltInType.UInt64:
      return int64ToNumber(value, v.dataType === BuiltInType.Int64) ?? UNSUPPORTED;
    case BuiltInType.String:
      return typeof value === 'string' || value === null ? value : UNSUPPORTED;
    case BuiltInType.LocalizedText: {
      const text = (value as { text?: unknown } | null)?.text;
      return typeof text === 'string' ? text : null;
    }
    case BuiltInType.DateTime:
      return value instanceof Date && Number.isFinite(value.getTime()) ? value.toISOString() : null;
    case BuiltInType.Guid:
      return typeof value === 'string' ? value : UNSUPPORTED;
    case BuiltInType.Null:
      return null;
    default:
      return UNSUPPORTED;
  }
}

/** Why `sampleValueOf` refused a Variant, in words for a log line. */
export function describeUnsupported(v: VariantLike): string {
  const type = builtInTypeName(v.dataType);
  if (v.arrayType !== SCALAR) return `an array of ${type}`;
  if (typeof v.value === 'number') return `${type} ${String(v.value)}`;
  return `a ${type}`;
}

/** Inclusive range of each integer type Loom writes. */
const INTEGER_RANGE: Readonly<Record<number, readonly [number, number]>> = {
  [BuiltInType.SByte]: [-128, 127],
  [BuiltInType.Byte]: [0, 255],
  [BuiltInType.Int16]: [-32768, 32767],
  [BuiltInType.UInt16]: [0, 65535],
  [BuiltInType.Int32]: [-2147483648, 2147483647],
  [BuiltInType.UInt32]: [0, 4294967295],
  // Only integers a double holds exactly: a larger one would not read back as written.
  [BuiltInType.Int64]: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
  [BuiltInType.UInt64]: [0, Number.MAX_SAFE_INTEGER],
};

const FLOAT_MAX = 3.4028234663852886e38;

export type EncodedValue =
  | { readonly ok: true; readonly dataType: number; readonly value: unknown }
  | { readonly ok: false; readonly message: string };

const refuse = (message: string): EncodedValue => ({ ok: false, message });

/**
 * The Variant value (node-opcua's representation) of `value` for a node of built-in type
 * `dataType`, or why it does not fit: a value of the wrong JS type, an integer out of the type's
 * range or with a fraction, a float too large for Float. Nothing is rounded or clamped, so what is
 * read back is what was asked for.
 */
export function encodeForDataType(value: number | boolean | string, dataType: number): EncodedValue {
  const type = builtInTypeName(dataType);
  switch (dataType) {
    case BuiltInType.Boolean:
      return typeof value === 'boolean'
        ? { ok: true, dataType, value }
        : refuse(`the node is a Boolean; send true or false, not ${JSON.stringify(value)}`);
    case BuiltInType.SByte:
    case BuiltInType.Byte:
    case BuiltInType.Int16:
    case BuiltInType.UInt16:
    case BuiltInType.Int32:
    case BuiltInType.UInt32:
    case BuiltInType.Int64:
    case BuiltInType.UInt64: {
      const [lo, hi] = INTEGER_RANGE[dataType]!;
      if (typeof value !== 'number' || !Number.isInteger(value)) {
        return refuse(
          `the node is an ${type}; send a whole number from ${lo} to ${hi}, not ${JSON.stringify(value)}`,
        );
      }
      if (value < lo || value > hi) {
        return refuse(`${value} does not fit the node's type ${type} (${lo} to ${hi})`);
      }
      if (dataType === BuiltInType.Int64 || dataType === BuiltInType.UInt64) {
        const high = Math.floor(value / TWO_32);
        return { ok: true, dataType, value: [high >>> 0, value - high * TWO_32] };
      }
      return { ok: true, dataType, value };
    }
    case BuiltInType.Float:
    case BuiltInType.Double:
      if (typeof value !== 'number' || !Number.isFinite(value)) {
        return refuse(`the node is a ${type}; send a finite number, not ${JSON.stringify(value)}`);
      }
      if (dataType === BuiltInType.Float && Math.abs(value) > FLOAT_MAX) {
        return refuse(`${value} is too large for the node's type Float (±${FLOAT_MAX})`);
      }
      return { ok: true, dataType, value };
    case BuiltInType.String:
      return typeof value === 'string'
        ? { ok: true, dataType, value }
        : refuse(`the node is a String; send a string, not ${JSON.stringify(value)}`);
    case BuiltInType.LocalizedText:
      return typeof value === 'string'
        ? { ok: true, dataType, value: { text: value } }
        : refuse(`the node is a LocalizedText; send a string, not ${JSON.stringify(value)}`);
    case BuiltInType.DateTime: {
      const d = typeof value === 'number' || typeof value === 'string' ? new Date(value) : null;
      return d !== null && Number.isFinite(d.getTime())
        ? { ok: true, dataType, value: d }
        : refuse(
            `the node is a DateTime; send an ISO 8601 time or epoch milliseconds, not ${JSON.stringify(value)}`,
          );
    }
    default:
      return refuse(`Loom does not write nodes of type ${type}`);
  }
}

/**
 * A NodeId string with its namespace as an index (`ns=2;s=Oven.Temperature`). A `nsu=<uri>;…`
 * string is resolved against the server's NamespaceArray (Part 3 §8.2.2 ExpandedNodeId notation,
 * Part 6 §5.3.1.11), which a server may renumber when it restarts; null when the URI is not there.
 */
export function resolveNamespace(nodeId: string, namespaceArray: readonly string[]): string | null {
  if (!nodeId.startsWith('nsu=')) return nodeId;
  const sep = nodeId.indexOf(';');
  if (sep < 0) return null;
  const index = namespaceArray.indexOf(nodeId.slice(4, sep));
  if (index < 0) return null;
  const rest = nodeId.slice(sep + 1);
  return index === 0 ? rest : `ns=${index};${rest}`;
}

/** The namespace URI of a `nsu=` NodeId string, else null. */
export function namespaceUriOf(nodeId: string): string | null {
  if (!nodeId.startsWith('nsu=')) return null;
  const sep = nodeId.indexOf(';');
  return sep < 0 ? null : nodeId.slice(4, sep);
}

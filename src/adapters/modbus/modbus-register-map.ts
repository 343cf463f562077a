/**
 * The Modbus register map, without I/O: how many registers a value spans, how register words and
 * bits decode into values (type, word order, byte order, scale, offset), how a value encodes into
 * words for a write, and how the signals of one device group into read requests.
 */
import type { ModbusRegisterSource } from '../../domain/signal/signal.ts';

export type ModbusTable = ModbusRegisterSource['table'];
export type ModbusType = ModbusRegisterSource['type'];

/** Modbus Application Protocol v1.1b3 §6.1–6.4: at most 2000 bits or 125 registers per read. */
export const MAX_READ_BITS = 2000;
export const MAX_READ_REGISTERS = 125;

export const isBitTable = (table: ModbusTable): boolean => table === 'coil' || table === 'discrete';

/** Registers (or bits, for `bool`) one value occupies. */
export function widthOf(type: ModbusType): number {
  switch (type) {
    case 'int32':
    case 'uint32':
    case 'float32':
      return 2;
    case 'int16':
    case 'uint16':
    case 'bool':
      return 1;
  }
}

type Layout = Pick<ModbusRegisterSource, 'type' | 'wordOrder' | 'byteOrder'>;
type Scaling = Pick<ModbusRegisterSource, 'scale' | 'offset'>;

const swapBytes = (w: number): number => ((w & 0xff) << 8) | ((w >> 8) & 0xff);

/** The value's bytes in big-endian order (as DataView reads them) from its words as received. */
function wordsToBytes(words: readonly number[], layout: Layout): DataView {
  const view = new DataView(new ArrayBuffer(words.length * 2));
  const ordered = layout.wordOrder === 'little' ? [...words].reverse() : words;
  ordered.forEach((w, i) => view.setUint16(i * 2, layout.byteOrder === 'little' ? swapBytes(w) : w));
  return view;
}

function bytesToWords(view: DataView, layout: Layout): number[] {
  const words: number[] = [];
  for (let i = 0; i < view.byteLength; i += 2) {
    const w = view.getUint16(i);
    words.push(layout.byteOrder === 'little' ? swapBytes(w) : w);
  }
  return layout.wordOrder === 'little' ? words.reverse() : words;
}

/** The raw (unscaled) number of a register value; `words` holds exactly `widthOf(type)` words. */
export function rawFromWords(words: readonly number[], layout: Layout): number {
  if (words.length !== widthOf(layout.type) || layout.type === 'bool') {
    throw new RangeError(`${layout.type} takes ${widthOf(layout.type)} register(s), got ${words.length}`);
  }
  const v = wordsToBytes(words, layout);
  switch (layout.type) {
    case 'int16':
      return v.getInt16(0);
    case 'uint16':
      return v.getUint16(0);
    case 'int32':
      return v.getInt32(0);
    case 'uint32':
      return v.getUint32(0);
    case 'float32':
      return v.getFloat32(0);
  }
}

/** Engineering value = raw × scale + offset (the signal's declared scaling). */
export const scaled = (raw: number, s: Scaling): number => raw * s.scale + s.offset;

/**
 * The value of one signal from the words of a block read. float32 NaN/Infinity from the device is
 * returned as is: the caller decides whether that is a bad reading.
 */
export function decodeRegisters(words: readonly number[], source: ModbusRegisterSource): number {
  return scaled(rawFromWords(words, source), source);
}

export type EncodeError = 'wrong-type' | 'out-of-range';

export type Encoded =
  | { readonly ok: true; readonly words: readonly number[] }
  | { readonly ok: false; readonly reason: EncodeError; readonly message: string };

const RANGE: Readonly<Record<Exclude<ModbusType, 'bool' | 'float32'>, readonly [number, number]>> = {
  int16: [-0x8000, 0x7fff],
  uint16: [0, 0xffff],
  int32: [-0x80000000, 0x7fffffff],
  uint32: [0, 0xffffffff],
};
const FLOAT32_MAX = 3.4028234663852886e38;

/**
 * The words to write for an engineering value (the inverse of `decodeRegisters`). An integer type
 * refuses a value that is not a whole number of `scale` steps rather than rounding it silently:
 * what is written must read back as what was asked.
 */
export function encodeValue(value: number | boolean, source: ModbusRegisterSource): Encoded {
  if (source.type === 'bool') {
    return typeof value === 'boolean'
      ? { ok: true, words: [value ? 1 : 0] }
      : { ok: false, reason: 'wrong-type', message: `${source.table} ${source.address} takes a boolean` };
  }
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    return { ok: false, reason: 'wrong-type', message: `${source.type} takes a finite number` };
  }
  if (source.scale === 0) {
    return { ok: false, reason: 'out-of-range', message: 'scale 0 maps every raw value to the offset' };
  }
  const exact = (value - source.offset) / source.scale;
  const view = new DataView(new ArrayBuffer(widthOf(source.type) * 2));
  if (source.type === 'float32') {
    if (Math.abs(exact) > FLOAT32_MAX) {
      return { ok: false, reason: 'out-of-range', message: `${value} is beyond float32` };
    }
    view.setFloat32(0, exact);
    return { ok: true, words: bytesToWords(view, source) };
  }
  const raw = Math.round(exact);
  if (Math.abs(raw - exact) > 1e-6 * Math.max(1, Math.abs(exact))) {
    return {
      ok: false,
      reason: 'wrong-type',
      message: `${value} is not a whole number of ${source.scale} steps from ${source.offset} (${source.type})`,
    };
  }
  const [lo, hi] = RANGE[source.type];
  if (raw < lo || raw > hi) {
    const a = scaled(lo, source);
    const b = scaled(hi, source);
    return {
      ok: false,
      reason: 'out-of-range',
      message: `${value} is outside ${Math.min(a, b)}…${Math.max(a, b)} (${source.type}, scale ${source.scale}, offset ${source.offset})`,
    };
  }
  switch (source.type) {
    case 'int16':
      view.setInt16(0, raw);
      break;
    case 'uint16':
      view.setUint16(0, raw);
      break;
    case 'int32':
      view.setInt32(0, raw);
      break;
    case 'uint32':
      view.setUint32(0, raw);
      break;
  }
  return { ok: true, words: bytesToWords(view, source) };
}

/** One read request: `count` registers (or bits) of `table` from `start`, serving `items`. */
export interface ReadBlock<T> {
  readonly table: ModbusTable;
  readonly start: number;
  readonly count: number;
  /** The shortest poll period of its items, ms. */
  readonly pollMs: number;
  /** Each item with its position in the block (`source.address − start`). */
  readonly items: readonly { readonly item: T; readonly at: number }[];
}

export interface PlanOptions {
  /**
   * Unused registers (or bits) a block may span to join two neighbours into one request. A gap
   * costs a few bytes; a request costs a round trip. Default 8 registers; bit tables use 8× this.
   * Set 0 for devices that answer "illegal data address" for holes in their map.
   */
  readonly maxGap?: number;
}

/**
 * Groups the signals of one device into read blocks: per table and poll period, sorted by address,
 * contiguous or nearly so (`maxGap`), each within the protocol's per-request limit. A value never
 * straddles two blocks.
 */
export function planReads<T extends { readonly source: { readonly modbus: ModbusRegisterSource } }>(
  items: readonly T[],
  opts: PlanOptions = {},
): ReadBlock<T>[] {
  const groups = new Map<string, T[]>();
  for (const it of items) {
    const key = `${it.source.modbus.table}\u0000${it.source.modbus.pollMs}`;
    const list = groups.get(key);
    if (list) list.push(it);
    else groups.set(key, [it]);
  }
  const blocks: ReadBlock<T>[] = [];
  for (const list of groups.values()) {
    const first = list[0]!.source.modbus;
    const bits = isBitTable(first.table);
    const limit = bits ? MAX_READ_BITS : MAX_READ_REGISTERS;
    const gap = (opts.maxGap ?? 8) * (bits ? 8 : 1);
    const sorted = [...list].sort((a, b) => a.source.modbus.address - b.source.modbus.address);
    let start = -1;
    let end = -1;
    let members: { item: T; at: number }[] = [];
    const flush = (): void => {
      if (members.length > 0) {
        blocks.push({ table: first.table, start, count: end - start, pollMs: first.pollMs, items: members });
      }
    };
    for (const it of sorted) {
      const m = it.source.modbus;
      const itemEnd = m.address + widthOf(m.type);
      if (members.length === 0 || m.address - end > gap || Math.max(end, itemEnd) - start > limit) {
        flush();
        start = m.address;
        end = itemEnd;
        members = [];
      }
      end = Math.max(end, itemEnd);
      members.push({ item: it, at: m.address - start });
    }
    flush();
  }
  return blocks.sort((a, b) => a.table.localeCompare(b.table) || a.start - b.start || a.pollMs - b.pollMs);
}

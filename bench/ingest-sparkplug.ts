/**
 * The simulated Sparkplug plant of the ingest bench (bench/ingest.ts): edge nodes, their devices,
 * and their messages encoded with Eclipse Tahu's own encoder before anything is timed.
 *
 * DDATA messages are encoded once into a ring of 256 per edge node, one per `seq` value
 * (Sparkplug 3.0 §6.4.18: seq runs 0–255 per edge node over NBIRTH, DBIRTH and DATA). Only the
 * timestamps change per send: they are patched in place, so every sample of a signal has its own
 * increasing timestamp near the wall clock (a dedup key on (signal, ts) keeps them all, rollups
 * see the current minute) without encoding per send.
 */
import { createRequire } from 'node:module';
import type { UMetric, UPayload } from 'sparkplug-payload/lib/sparkplugbpayload.js';

interface Tahu {
  encodePayload(payload: UPayload): Uint8Array;
  decodePayload(proto: Uint8Array): UPayload;
}

/** Tahu's Sparkplug B codec (the package is CommonJS). */
export const tahu = (createRequire(import.meta.url)('sparkplug-payload') as { get(ns: string): Tahu }).get(
  'spBv1.0',
);

export const METRICS_PER_DEVICE = 100;

export interface BenchDevice {
  readonly id: string;
  /** Index over the whole plant: device d's metric m has alias d·100 + m (unique per edge node). */
  readonly index: number;
}

export interface BenchEdgeNode {
  readonly id: string;
  readonly devices: readonly BenchDevice[];
}

export interface BenchPlant {
  readonly group: string;
  readonly nodes: readonly BenchEdgeNode[];
}

/** `devices` devices (dev00, dev01, …) spread round-robin over `nodes` edge nodes (edge0, …). */
export function benchPlant(group: string, devices: number, nodes: number): BenchPlant {
  const n = Math.max(1, Math.min(nodes, devices));
  const width = Math.max(2, String(devices - 1).length);
  const byNode: BenchDevice[][] = Array.from({ length: n }, () => []);
  for (let d = 0; d < devices; d++) {
    byNode[d % n]!.push({ id: `dev${String(d).padStart(width, '0')}`, index: d });
  }
  return { group, nodes: byNode.map((devs, i) => ({ id: `edge${i}`, devices: devs })) };
}

export const metricName = (m: number): string => `m${String(m).padStart(3, '0')}`;
export const aliasOf = (device: BenchDevice, m: number): number => device.index * METRICS_PER_DEVICE + m;

export const topic = (
  group: string,
  type: 'NBIRTH' | 'NDEATH' | 'DBIRTH' | 'DDATA' | 'NCMD',
  node: string,
  device?: string,
): string => `spBv1.0/${group}/${type}/${node}${device === undefined ? '' : `/${device}`}`;

/** A deterministic PRNG (mulberry32): the publisher and the COPY reference build the same values. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Random walks, one per metric. A step is never 0, so consecutive values of a signal always
 * differ and a deadband of 0 keeps every one.
 */
export class RandomWalks {
  readonly #values: Float64Array;
  readonly #random: () => number;
  constructor(count: number, seed: number) {
    this.#random = prng(seed);
    this.#values = new Float64Array(count);
    for (let i = 0; i < count; i++) this.#values[i] = 100 * this.#random();
  }
  next(i: number): number {
    const step = 0.01 + this.#random();
    const v = this.#values[i]! + (this.#random() < 0.5 ? -step : step);
    this.#values[i] = v;
    return v;
  }
  current(i: number): number {
    return this.#values[i]!;
  }
}

/** An encoded message whose timestamps are rewritten in place before each send. */
export interface PatchableMessage {
  readonly topic: string;
  readonly payload: Buffer;
  /** Byte offsets of the 6-byte timestamp varints (the payload's and each metric's). */
  readonly tsOffsets: Int32Array;
  readonly device: BenchDevice;
}

// Epoch milliseconds from 2^35 (1971) to 2^42 (2109) encode as 6-byte varints, so a timestamp
// can be replaced by any other in that range without moving a byte.
const TS_LO = 2 ** 35;
const TS_HI = 2 ** 42;
const PAYLOAD_TS_TAG = 0x08; // Payload.timestamp = 1, varint
const METRIC_TS_TAG = 0x18; // Payload.Metric.timestamp = 3, varint

function varint6(v: number): number[] {
  const out: number[] = [];
  for (let k = 0; k < 6; k++) {
    const b = Math.floor(v / 2 ** (7 * k)) % 128;
    out.push(k < 5 ? b | 0x80 : b);
  }
  return out;
}

/** Writes `ts` at every offset (6-byte varints). */
export function patchTimestamps(msg: PatchableMessage, ts: number): void {
  const buf = msg.payload;
  let v = ts;
  const bytes = [0, 0, 0, 0, 0, 0];
  for (let k = 0; k < 6; k++) {
    const b = v % 128;
    v = Math.floor(v / 128);
    bytes[k] = k < 5 ? b | 0x80 : b;
  }
  for (const o of msg.tsOffsets) {
    buf[o] = bytes[0]!;
    buf[o + 1] = bytes[1]!;
    buf[o + 2] = bytes[2]!;
    buf[o + 3] = bytes[3]!;
    buf[o + 4] = bytes[4]!;
    buf[o + 5] = bytes[5]!;
  }
}

function find(buf: Buffer, tag: number, ts: number, from: number): number {
  const needle = Buffer.from([tag, ...varint6(ts)]);
  const at = buf.indexOf(needle, from);
  if (at < 0) throw new Error(`timestamp ${ts} not found in an encoded payload`);
  return at + 1;
}

/**
 * Encodes a payload whose payload timestamp and metric timestamps are placeholders, and finds
 * where they sit, so they can be patched. Checked by decoding after a patch.
 */
function patchable(
  topicName: string,
  device: BenchDevice,
  seq: number,
  metrics: UMetric[],
): PatchableMessage {
  const base = Date.now();
  if (base < TS_LO || base + METRICS_PER_DEVICE + 1 >= TS_HI) throw new Error('clock out of range');
  const withTs = metrics.map((m, i) => ({ ...m, timestamp: base + 1 + i }));
  const payload = Buffer.from(tahu.encodePayload({ timestamp: base, seq, metrics: withTs }));
  const offsets = [find(payload, PAYLOAD_TS_TAG, base, 0)];
  let from = 0;
  for (let i = 0; i < withTs.length; i++) {
    const o = find(payload, METRIC_TS_TAG, base + 1 + i, from);
    offsets.push(o);
    from = o + 6;
  }
  const msg = { topic: topicName, payload, tsOffsets: Int32Array.from(offsets), device };
  const probe = base + 12_345;
  patchTimestamps(msg, probe);
  const back = tahu.decodePayload(payload);
  const bad =
    Number(back.timestamp) !== probe ||
    back.seq === undefined ||
    Number(back.seq) !== seq ||
    back.metrics?.length !== metrics.length ||
    back.metrics.some((m) => Number(m.timestamp) !== probe);
  if (bad) throw new Error('patching timestamps broke an encoded payload');
  return msg;
}

/** 256 DDATA messages of one edge node, `ring[seq]` carrying that seq; devices take turns. */
export function ddataRing(plant: BenchPlant, node: BenchEdgeNode, walks: RandomWalks): PatchableMessage[] {
  const ring: PatchableMessage[] = [];
  for (let seq = 0; seq < 256; seq++) {
    const device = node.devices[seq % node.devices.length]!;
    const metrics: UMetric[] = [];
    for (let m = 0; m < METRICS_PER_DEVICE; m++) {
      const alias = aliasOf(device, m);
      metrics.push({ alias, type: 'Double', value: walks.next(alias) });
    }
    ring.push(patchable(topic(plant.group, 'DDATA', node.id, device.id), device, seq, metrics));
  }
  return ring;
}

/** Sparkplug 3.0 §6.4.5: NBIRTH carries bdSeq (matching the Will) and Node Control/Rebirth. */
export function nbirth(bdSeq: number, ts: number): Buffer {
  return Buffer.from(
    tahu.encodePayload({
      timestamp: ts,
      seq: 0,
      metrics: [
        { name: 'bdSeq', type: 'UInt64', value: bdSeq, timestamp: ts },
        { name: 'Node Control/Rebirth', type: 'Boolean', value: false, timestamp: ts },
      ],
    }),
  );
}

export function ndeath(bdSeq: number, ts: number): Buffer {
  return Buffer.from(
    tahu.encodePayload({ timestamp: ts, metrics: [{ name: 'bdSeq', type: 'UInt64', value: bdSeq }] }),
  );
}

/** DBIRTH: every metric with name, alias, datatype Double and its current value. */
export function dbirth(device: BenchDevice, walks: RandomWalks, seq: number, ts: number): Buffer {
  const metrics: UMetric[] = [];
  for (let m = 0; m < METRICS_PER_DEVICE; m++) {
    const alias = aliasOf(device, m);
    metrics.push({ name: metricName(m), alias, type: 'Double', value: walks.current(alias), timestamp: ts });
  }
  return Buffer.from(tahu.encodePayload({ timestamp: ts, seq, metrics }));
}

/** A decoded uint64 (protobufjs gives a Long, or a number for small values) as a number. */
export function toNumber(v: unknown): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'object' && v !== null && 'toNumber' in v) return (v as { toNumber(): number }).toNumber();
  return Number(v);
}

/** Whether an NCMD payload asks for a rebirth (Sparkplug 3.0 §6.4.12, `Node Control/Rebirth` = true). */
export function isRebirthRequest(payload: Buffer): boolean {
  try {
    return (tahu.decodePayload(payload).metrics ?? []).some(
      (m) => m.name === 'Node Control/Rebirth' && m.value === true,
    );
  } catch {
    return false;
  }
}

/**
 * The simulated Sparkplug B edge node against a real broker (Mosquitto at mqtt://127.0.0.1:1883,
 * or LOOM_TEST_MQTT_URL), watched by a raw MQTT.js subscriber that decodes with the Tahu protobuf
 * classes. Each test uses its own group and host id, so runs in parallel do not meet; other
 * Sparkplug hosts on the same broker may still send a rebirth request, so sequence checks follow
 * H8 (NBIRTH resets seq) instead of assuming none arrives. Rule ids are RELIABILITY.md B.3.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import mqtt, { type MqttClient } from 'mqtt';
import protoRoot from 'sparkplug-payload/lib/sparkplugPayloadProto.js';
import { fixedClock } from '../../src/domain/shared/clock.ts';
import type { Oven } from '../../src/sim/plant-physics.ts';
import {
  SparkplugEdgeNode,
  type CommandOutcome,
  type SparkplugEdgeOptions,
} from '../../src/sim/sparkplug-edge.ts';
import { ROOT } from '../support/loom-process.ts';

const SKIP =
  process.env.LOOM_TEST_PG === 'server'
    ? 'needs no PostgreSQL; already run in the embedded pass (LOOM_TEST_PG=server)'
    : false;
const BROKER = process.env.LOOM_TEST_MQTT_URL ?? 'mqtt://127.0.0.1:1883';
const { Payload } = protoRoot.org.eclipse.tahu.protobuf;

let counter = 0;
const uid = (what: string): string => `${what}-${process.pid}-${Date.now().toString(36)}-${counter++}`;

interface WireMetric {
  name?: string;
  alias?: number;
  datatype?: number;
  timestamp?: number;
  historical: boolean;
  isNull: boolean;
  value: number | boolean | string | null;
}

interface WireMessage {
  index: number;
  topic: string;
  verb: string;
  edge: string;
  device?: string;
  qos: number;
  retain: boolean;
  seq?: number;
  timestamp?: number;
  metrics: WireMetric[];
}

type LongLike = { toNumber(): number };
const num = (v: unknown): number => (typeof v === 'number' ? v : (v as LongLike).toNumber());

function decode(bytes: Buffer): Pick<WireMessage, 'seq' | 'timestamp' | 'metrics'> {
  const p = Payload.decode(bytes);
  const has = (o: object, k: string) => Object.prototype.hasOwnProperty.call(o, k);
  const metrics = (p.metrics as InstanceType<typeof Payload.Metric>[]).map((m): WireMetric => {
    const field = m.value;
    const raw = field ? (m as unknown as Record<string, unknown>)[field] : null;
    return {
      ...(has(m, 'name') ? { name: m.name } : {}),
      ...(has(m, 'alias') ? { alias: num(m.alias) } : {}),
      ...(has(m, 'datatype') ? { datatype: m.datatype } : {}),
      ...(has(m, 'timestamp') ? { timestamp: num(m.timestamp) } : {}),
      historical: m.isHistorical === true,
      isNull: m.isNull === true,
      value:
        raw === null || raw === undefined
          ? null
          : typeof raw === 'object'
            ? num(raw)
            : field === 'intValue' && m.datatype === 3
              ? (raw as number) | 0
              : (raw as number | boolean | string),
    };
  });
  return {
    ...(has(p, 'seq') ? { seq: num(p.seq) } : {}),
    ...(has(p, 'timestamp') ? { timestamp: num(p.timestamp) } : {}),
    metrics,
  };
}

const clients: MqttClient[] = [];
const edges: SparkplugEdgeNode[] = [];
const retainedTopics: string[] = [];

/** A raw subscriber on one group: every Sparkplug message of it, decoded, in arrival order. */
class Observer {
  readonly messages: WireMessage[] = [];
  #waiters: (() => void)[] = [];
  #cursor = 0;

  private constructor(readonly client: MqttClient) {}

  static async watch(group: string, extra: string[] = []): Promise<Observer> {
    const client = await mqtt.connectAsync(BROKER, { reconnectPeriod: 0, protocolVersion: 4 });
    clients.push(client);
    const o = new Observer(client);
    client.on('message', (topic, payload, packet) => {
      const parts = topic.split('/');
      const [, , verb = '', edge = '', device] = parts;
      const decoded = verb === 'STATE' || parts[1] === 'STATE' ? { metrics: [] } : decode(payload);
      o.messages.push({
        index: o.messages.length,
        topic,
        verb,
        edge,
        ...(device !== undefined ? { device } : {}),
        qos: packet.qos,
        retain: packet.retain,
        ...decoded,
      });
      for (const w of o.#waiters.splice(0)) w();
    });
    await client.subscribeAsync([`spBv1.0/${group}/#`, ...extra], { qos: 1 });
    return o;
  }

  /** The next message after the previous match that satisfies `pred`. */
  async next(pred: (m: WireMessage) => boolean, timeoutMs = 5000, what = 'message'): Promise<WireMessage> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      for (let i = this.#cursor; i < this.messages.length; i++) {
        if (pred(this.messages[i]!)) {
          this.#cursor = i + 1;
          return this.messages[i]!;
        }
      }
      const left = deadline - Date.now();
      if (left <= 0) {
        const seen = this.messages
          .slice(this.#cursor)
          .map((m) => `${m.verb}/${m.device ?? ''}`)
          .join(' ');
        throw new Error(`no ${what} within ${timeoutMs} ms; after the cursor: ${seen || 'nothing'}`);
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** True if a message matching `pred` arrives (after the cursor) within `ms`. */
  async arrives(pred: (m: WireMessage) => boolean, ms: number): Promise<boolean> {
    try {
      await this.next(pred, ms);
      return true;
    } catch {
      return false;
    }
  }

  /** Publishes the Primary Host STATE as a Sparkplug 3.0 host does: QoS 1, retained (H2, H4). */
  async state(hostId: string, online: boolean, timestamp: number): Promise<void> {
    const topic = `spBv1.0/STATE/${hostId}`;
    if (!retainedTopics.includes(topic)) retainedTopics.push(topic);
    await this.client.publishAsync(topic, JSON.stringify({ online, timestamp }), { qos: 1, retain: true });
  }

  async command(topic: string, metrics: Record<string, unknown>[]): Promise<void> {
    const bytes = Payload.encode(
      Payload.create({ timestamp: Date.now(), metrics: metrics.map((m) => Payload.Metric.create(m)) }),
    ).finish();
    // H10: NCMD/DCMD are QoS 0, not retained.
    await this.client.publishAsync(topic, Buffer.from(bytes), { qos: 0, retain: false });
  }
}

async function waitUntil(cond: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const is =
  (verb: string, device?: string) =>
  (m: WireMessage): boolean =>
    m.verb === verb && (device === undefined || m.device === device);

const metric = (m: WireMessage, name: string): WireMetric | undefined =>
  m.metrics.find((x) => x.name === name);

function edgeNode(group: string, extra: Partial<SparkplugEdgeOptions> = {}): SparkplugEdgeNode {
  const e = new SparkplugEdgeNode({
    url: BROKER,
    groupId: group,
    edgeNodeId: 'edge',
    primaryHostId: null,
    intervalMs: 0,
    reconnectPeriodMs: 100,
    keepaliveSeconds: 5,
    ...extra,
  });
  edges.push(e);
  return e;
}

/** A TCP server that reads each MQTT CONNECT, records it, and hangs up: the client keeps reconnecting. */
interface ConnectRecord {
  protocolLevel: number;
  clean: boolean;
  keepalive: number;
  will?: { topic: string; payload: Buffer; qos: number; retain: boolean };
}

async function connectRecorder(): Promise<{ url: string; connects: ConnectRecord[]; server: Server }> {
  const connects: ConnectRecord[] = [];
  const server = createServer((socket: Socket) => {
    let buf = Buffer.alloc(0);
    socket.on('error', () => undefined);
    socket.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      const parsed = parseConnect(buf);
      if (parsed) {
        connects.push(parsed);
        socket.destroy();
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `mqtt://127.0.0.1:${(server.address() as { port: number }).port}`, connects, server };
}

/** MQTT 3.1.1 §3.1: the fields of a CONNECT this test checks, or null until it is complete. */
function parseConnect(b: Buffer): ConnectRecord | null {
  let i = 1;
  let remaining = 0;
  let mult = 1;
  for (;;) {
    if (i >= b.length) return null;
    const byte = b[i++]!;
    remaining += (byte & 0x7f) * mult;
    mult *= 128;
    if (!(byte & 0x80)) break;
  }
  if (b.length < i + remaining) return null;
  const str = (): Buffer => {
    const n = b.readUInt16BE(i);
    const s = b.subarray(i + 2, i + 2 + n);
    i += 2 + n;
    return s;
  };
  str(); // protocol name
  const protocolLevel = b[i++]!;
  const flags = b[i++]!;
  const keepalive = b.readUInt16BE(i);
  i += 2;
  str(); // client id
  const record: ConnectRecord = { protocolLevel, clean: (flags & 0x02) !== 0, keepalive };
  if (flags & 0x04) {
    const topic = str().toString();
    const payload = Buffer.from(str());
    record.will = { topic, payload, qos: (flags >> 3) & 0x03, retain: (flags & 0x20) !== 0 };
  }
  return record;
}

describe('simulated Sparkplug B edge node', { skip: SKIP, timeout: 60_000 }, () => {
  after(async () => {
    for (const e of edges) await e.stop();
    const cleaner = clients[0];
    if (cleaner?.connected) {
      for (const topic of retainedTopics) await cleaner.publishAsync(topic, '', { qos: 1, retain: true });
    }
    for (const c of clients) await c.endAsync(true);
  });

  it('E1/E2: connects with Clean Session (3.1.1) and a Will that is the NDEATH: bdSeq INT64, QoS 1, not retained', async () => {
    const rec = await connectRecorder();
    try {
      const e = edgeNode('g', { url: rec.url, edgeNodeId: 'e1' });
      await e.start();
      while (rec.connects.length < 1) await new Promise((r) => setTimeout(r, 20));
      await e.stop();
      const c = rec.connects[0]!;
      assert.equal(c.protocolLevel, 4);
      assert.equal(c.clean, true);
      assert.equal(c.will?.topic, 'spBv1.0/g/NDEATH/e1');
      assert.equal(c.will?.qos, 1);
      assert.equal(c.will?.retain, false);
      const death = decode(c.will.payload);
      assert.equal(death.seq, undefined, 'NDEATH carries no seq');
      assert.equal(death.metrics.length, 1);
      assert.equal(death.metrics[0]!.name, 'bdSeq');
      assert.equal(death.metrics[0]!.datatype, 4, 'Int64');
      assert.equal(death.metrics[0]!.value, 0);
    } finally {
      rec.server.close();
    }
  });

  it('E3: increments bdSeq on every new CONNECT and updates the Will; persists it and wraps 255 → 0', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'loom-bdseq-'));
    const file = path.join(dir, 'bdseq');
    await writeFile(file, '253\n');
    const rec = await connectRecorder();
    try {
      const e = edgeNode('g', { url: rec.url, edgeNodeId: 'e3', bdSeqFile: file, reconnectPeriodMs: 20 });
      await e.start();
      while (rec.connects.length < 4) await new Promise((r) => setTimeout(r, 10));
      await e.stop();
      const seqs = rec.connects.slice(0, 4).map((c) => decode(c.will!.payload).metrics[0]!.value);
      assert.deepEqual(seqs, [254, 255, 0, 1], 'each CONNECT carries a Will with the next bdSeq');
      const persisted = Number((await readFile(file, 'utf8')).trim());
      assert.equal(persisted, e.bdSeq, 'the file holds the bdSeq of the last CONNECT');
      const again = edgeNode('g', { url: rec.url, edgeNodeId: 'e3', bdSeqFile: file });
      const before = rec.connects.length;
      await again.start();
      while (rec.connects.length <= before) await new Promise((r) => setTimeout(r, 10));
      await again.stop();
      assert.equal(decode(rec.connects[before]!.will!.payload).metrics[0]!.value, (persisted + 1) % 256);
    } finally {
      rec.server.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('E3 on a real broker: after a link loss the broker delivers the Will (old bdSeq) and the next NBIRTH has bdSeq + 1', async () => {
    const g = uid('e3');
    const obs = await Observer.watch(g);
    const e = edgeNode(g);
    await e.start();
    const b1 = await obs.next(is('NBIRTH'));
    const bd1 = metric(b1, 'bdSeq')!.value as number;
    for (let round = 1; round <= 2; round++) {
      const mark = obs.messages.length;
      e.simulateLinkLoss();
      // The Will and the next NBIRTH may arrive in either order: the broker notices the lost
      // socket on its own schedule.
      const after = () => obs.messages.slice(mark);
      await waitUntil(
        () => after().some(is('NDEATH')) && after().some(is('NBIRTH')),
        `Will and NBIRTH ${round}`,
      );
      const death = after().find(is('NDEATH'))!;
      assert.equal(death.qos, 1);
      assert.equal(death.retain, false);
      assert.equal(metric(death, 'bdSeq')!.value, (bd1 + round - 1) % 256, 'the Will of the lost session');
      const births = after().filter(is('NBIRTH'));
      assert.ok(births.every((b) => metric(b, 'bdSeq')!.value === (bd1 + round) % 256));
    }
    assert.equal(e.stats().connects, 3);
  });

  it('E4: subscribes to its NCMD and DCMD topics (and the host STATE) at QoS 1', async () => {
    const g = uid('e4');
    const host = uid('host');
    const e = edgeNode(g, { primaryHostId: host });
    await e.start();
    await e.waitFor('waiting-for-host');
    for (let i = 0; i < 100 && e.subscriptions().length === 0; i++)
      await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(
      [...e.subscriptions()].sort((a, b) => a.topic.localeCompare(b.topic)),
      [
        { topic: `spBv1.0/${g}/DCMD/edge/+`, qos: 1 },
        { topic: `spBv1.0/${g}/NCMD/edge`, qos: 1 },
        { topic: `spBv1.0/STATE/${host}`, qos: 1 },
      ],
    );
  });

  it('E5: waits for the Primary Host STATE online before any BIRTH; an older STATE does not count', async () => {
    const g = uid('e5');
    const host = uid('host');
    const obs = await Observer.watch(g);
    await obs.state(host, false, 2000);
    const e = edgeNode(g, { primaryHostId: host });
    await e.start();
    await e.waitFor('waiting-for-host');
    assert.equal(await obs.arrives(is('NBIRTH'), 400), false, 'no BIRTH while the host is offline');
    await obs.state(host, true, 1000);
    assert.equal(
      await obs.arrives(is('NBIRTH'), 400),
      false,
      'an online STATE older than the last seen is ignored',
    );
    await obs.state(host, true, 3000);
    const birth = await obs.next(is('NBIRTH'));
    assert.equal(birth.seq, 0);
    assert.equal(e.state, 'online');
  });

  it('E7/E8/E10: NBIRTH (QoS 0, seq 0, bdSeq, Rebirth false without alias) then a DBIRTH per device with every metric', async () => {
    const g = uid('e7');
    const obs = await Observer.watch(g);
    const e = edgeNode(g);
    await e.start();
    const nbirth = await obs.next(is('NBIRTH'));
    assert.equal(nbirth.qos, 0);
    assert.equal(nbirth.retain, false);
    assert.equal(nbirth.seq, 0);
    assert.ok(nbirth.timestamp! > 0);
    assert.equal(metric(nbirth, 'bdSeq')!.value, e.bdSeq);
    const rebirth = metric(nbirth, 'Node Control/Rebirth')!;
    assert.equal(rebirth.value, false);
    assert.equal(rebirth.datatype, 11, 'Boolean');
    assert.equal(rebirth.alias, undefined, 'Node Control/Rebirth has no alias');
    const oven = await obs.next(is('DBIRTH', 'oven-1'));
    const press = await obs.next(is('DBIRTH', 'press-1'));
    assert.equal(oven.seq, 1);
    assert.equal(press.seq, 2);
    assert.deepEqual(
      oven.metrics.map((m) => m.name),
      ['Temperature', 'Setpoint', 'Power', 'Door', 'Recipe/Id'],
    );
    assert.deepEqual(
      press.metrics.map((m) => m.name),
      ['Strokes', 'CycleTime', 'State', 'Pressure', 'TargetStrokesPerMinute', 'Recipe/PeakPressure'],
    );
    for (const m of [...nbirth.metrics, ...oven.metrics, ...press.metrics]) {
      assert.ok(m.timestamp! > 0, `${m.name} has a timestamp`);
      assert.ok(m.datatype !== undefined, `${m.name} has a datatype in the BIRTH`);
    }
    assert.equal(metric(oven, 'Setpoint')!.value, 180);
    assert.equal(metric(press, 'State')!.value, 'Execute');
    const aliases = [...nbirth.metrics, ...oven.metrics, ...press.metrics].flatMap((m) =>
      m.alias === undefined ? [] : [m.alias],
    );
    assert.equal(new Set(aliases).size, aliases.length, 'aliases are unique across the edge node');
    assert.equal(aliases.length, 1 + 5 + 6);
  });

  it('E9/E10: DATA is QoS 0 with seq + 1 wrapping 255 → 0, aliases only, timestamps, no datatype', async () => {
    const g = uid('e9');
    const obs = await Observer.watch(g);
    const clock = fixedClock(new Date('2026-01-01T00:00:00Z'));
    const e = edgeNode(g, { devices: [{ id: 'load', metrics: 3 }], clock });
    await e.start();
    await obs.next(is('DBIRTH', 'load'));
    // Until the sequence wrapped: a rebirth another host requests on the shared broker restarts it.
    const ddata: WireMessage[] = [];
    const wrapped = () =>
      ddata.some(
        (m, i) => i > 0 && m.seq === 0 && ddata[i - 1]!.seq === 255 && m.index === ddata[i - 1]!.index + 1,
      );
    for (let i = 1; i <= 2000 && (i <= 300 || !wrapped()); i++) {
      clock.set(new Date(Date.parse('2026-01-01T00:00:00Z') + i * 100));
      e.tick();
      if (i % 100 === 0) while (ddata.length < i) ddata.push(await obs.next(is('DDATA', 'load')));
    }
    // H8: every message is the previous + 1 (mod 256); an NBIRTH (a rebirth some other host
    // requested) starts again at 0.
    const seqd = obs.messages.filter((m) =>
      ['NBIRTH', 'DBIRTH', 'NDATA', 'DDATA', 'DDEATH'].includes(m.verb),
    );
    for (let i = 1; i < seqd.length; i++) {
      const m = seqd[i]!;
      if (m.verb === 'NBIRTH') assert.equal(m.seq, 0);
      else assert.equal(m.seq, (seqd[i - 1]!.seq! + 1) % 256, `message ${i} (${m.verb})`);
    }
    assert.ok(
      seqd.some((m, i) => i > 0 && m.seq === 0 && seqd[i - 1]!.seq === 255),
      'the sequence wrapped from 255 to 0',
    );
    const birthAliases = new Set(obs.messages.find(is('DBIRTH', 'load'))!.metrics.map((m) => m.alias));
    for (const d of ddata) {
      assert.equal(d.qos, 0);
      assert.equal(d.retain, false);
      assert.equal(d.metrics.length, 3, 'every load metric changes every tick');
      for (const m of d.metrics) {
        assert.equal(m.name, undefined, 'no name in DATA');
        assert.equal(m.datatype, undefined, 'no datatype in DATA');
        assert.ok(birthAliases.has(m.alias), 'alias from the DBIRTH');
        assert.ok(m.timestamp! > 0);
        assert.equal(typeof m.value, 'number');
      }
    }
  });

  it('E9: reports by exception: only metrics that moved beyond their deadband are in DDATA', async () => {
    const g = uid('rbe');
    const obs = await Observer.watch(g);
    const clock = fixedClock(new Date('2026-01-01T00:00:00Z'));
    const e = edgeNode(g, { devices: [{ id: 'oven-1', kind: 'oven' }], clock });
    const aliasOf = (name: string) => e.deviceMetrics('oven-1').find((m) => m.name === name)!.alias!;
    await e.start();
    await obs.next(is('DBIRTH', 'oven-1'));
    for (let s = 1; s <= 5; s++) {
      clock.set(new Date(Date.parse('2026-01-01T00:00:00Z') + s * 1000));
      e.tick();
    }
    const heating = await obs.next(is('DDATA', 'oven-1'));
    const aliases = heating.metrics.map((m) => m.alias);
    assert.ok(aliases.includes(aliasOf('Temperature')), 'the heating oven reports Temperature');
    assert.ok(!aliases.includes(aliasOf('Setpoint')), 'an unchanged Setpoint is not reported');
    assert.ok(!aliases.includes(aliasOf('Recipe/Id')));
    assert.equal(
      heating.metrics.find((m) => m.alias === aliasOf('Temperature'))!.timestamp,
      Date.parse('2026-01-01T00:00:01Z'),
    );
    // Let it settle; then one tick with nothing beyond the deadband publishes nothing for the oven.
    (e.machine('oven-1') as Oven).advance(3_600_000);
    clock.set(new Date(Date.parse('2026-01-01T01:00:00Z')));
    e.tick();
    const settled = await obs.next((m) => is('DDATA', 'oven-1')(m) && m.timestamp === clock.now().getTime());
    const before = obs.messages.length;
    clock.set(new Date(Date.parse('2026-01-01T01:00:00.100Z')));
    e.tick();
    assert.ok(settled.metrics.length > 0);
    assert.equal(await obs.arrives((m) => m.index >= before && is('DDATA', 'oven-1')(m), 300), false);
  });

  it('E11: on NCMD Node Control/Rebirth = true sends NBIRTH + DBIRTHs again with the same bdSeq, without reconnecting', async () => {
    const g = uid('e11');
    const obs = await Observer.watch(g);
    const e = edgeNode(g);
    await e.start();
    const first = await obs.next(is('NBIRTH'));
    await obs.next(is('DBIRTH', 'press-1'));
    e.tick();
    await obs.command(`spBv1.0/${g}/NCMD/edge`, [{ name: 'Node Control/Rebirth', booleanValue: true }]);
    const again = await obs.next(is('NBIRTH'));
    assert.equal(again.seq, 0);
    assert.equal(metric(again, 'bdSeq')!.value, metric(first, 'bdSeq')!.value);
    const oven = await obs.next(is('DBIRTH', 'oven-1'));
    const press = await obs.next(is('DBIRTH', 'press-1'));
    assert.deepEqual([oven.seq, press.seq], [1, 2]);
    assert.equal(e.stats().connects, 1, 'no new CONNECT');
    assert.equal(obs.messages.filter(is('NDEATH')).length, 0);
  });

  it('accepts a DCMD write to a writable metric and reads it back in the next DDATA; refuses read-only and wrong types', async () => {
    const g = uid('dcmd');
    const obs = await Observer.watch(g);
    const e = edgeNode(g);
    const outcomes: CommandOutcome[] = [];
    e.on('command', (o) => outcomes.push(o));
    await e.start();
    const dbirth = await obs.next(is('DBIRTH', 'oven-1'));
    const alias = (name: string) => metric(dbirth, name)!.alias!;
    const topic = `spBv1.0/${g}/DCMD/edge/oven-1`;
    await obs.command(topic, [
      { alias: alias('Setpoint'), timestamp: Date.now(), doubleValue: 150 },
      { name: 'Recipe/Id', timestamp: Date.now(), stringValue: 'BREAD-7' },
      { alias: alias('Temperature'), timestamp: Date.now(), doubleValue: 20 },
      { alias: alias('Setpoint'), timestamp: Date.now(), stringValue: 'hot' },
      { alias: 9999, timestamp: Date.now(), doubleValue: 1 },
    ]);
    while (outcomes.length < 5) await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(
      outcomes.map((o) => (o.ok ? 'ok' : o.reason)),
      ['ok', 'ok', 'read-only', 'wrong-type', 'unknown-metric'],
    );
    e.tick();
    const data = await obs.next(
      (m) => is('DDATA', 'oven-1')(m) && m.metrics.some((x) => x.alias === alias('Setpoint')),
    );
    assert.equal(data.metrics.find((x) => x.alias === alias('Setpoint'))!.value, 150);
    assert.equal(data.metrics.find((x) => x.alias === alias('Recipe/Id'))!.value, 'BREAD-7');
    assert.equal(e.machine('oven-1').read('Setpoint'), 150);
  });

  it('E12: publishes DDEATH (seq + 1) when a device is unplugged, no data of it after, DBIRTH when it is back', async () => {
    const g = uid('e12');
    const obs = await Observer.watch(g);
    const e = edgeNode(g);
    await e.start();
    const pressBirth = await obs.next(is('DBIRTH', 'press-1'));
    e.unplug('press-1');
    const death = await obs.next(is('DDEATH', 'press-1'));
    assert.equal(death.qos, 0);
    assert.equal(death.seq, (pressBirth.seq! + 1) % 256);
    assert.ok(death.timestamp! > 0);
    const mark = obs.messages.length;
    for (let i = 0; i < 3; i++) e.tick();
    assert.equal(await obs.arrives((m) => m.index >= mark && is('DDATA', 'press-1')(m), 300), false);
    e.plug('press-1');
    const back = await obs.next(is('DBIRTH', 'press-1'));
    assert.equal(back.metrics.length, 6);
  });

  it('E13: stop() publishes NDEATH with the session bdSeq before DISCONNECT, and the broker sends no Will after', async () => {
    const g = uid('e13');
    const obs = await Observer.watch(g);
    const e = edgeNode(g);
    await e.start();
    const birth = await obs.next(is('NBIRTH'));
    await e.stop();
    const death = await obs.next(is('NDEATH'));
    assert.equal(metric(death, 'bdSeq')!.value, metric(birth, 'bdSeq')!.value);
    assert.equal(await obs.arrives(is('NDEATH'), 500), false, 'DISCONNECT discarded the Will');
    assert.equal(e.state, 'stopped');
  });

  it('E6/E14: on a valid host offline: NDEATH, reconnect, store; after the host is back a fresh birth and the stored data as historical', async () => {
    const g = uid('e14');
    const host = uid('host');
    const obs = await Observer.watch(g);
    const t0 = Date.parse('2026-02-01T08:00:00Z');
    const clock = fixedClock(new Date(t0));
    const e = edgeNode(g, {
      primaryHostId: host,
      devices: [{ id: 'load', metrics: 2 }],
      clock,
      rollingBufferMs: 0,
      flushBatchSize: 4,
      flushIntervalMs: 50,
    });
    await e.start();
    await obs.state(host, true, 1000);
    const b1 = await obs.next(is('NBIRTH'));
    await obs.next(is('DBIRTH', 'load'));

    await obs.state(host, false, 500);
    assert.equal(
      await obs.arrives(is('NDEATH'), 300),
      false,
      'an offline STATE older than the online one is ignored',
    );

    await obs.state(host, false, 2000);
    const death = await obs.next(is('NDEATH'));
    assert.equal(metric(death, 'bdSeq')!.value, metric(b1, 'bdSeq')!.value);
    await e.waitFor('waiting-for-host');
    const offlineTimes: number[] = [];
    for (let s = 1; s <= 5; s++) {
      clock.set(new Date(t0 + s * 1000));
      offlineTimes.push(t0 + s * 1000);
      e.tick();
    }
    assert.equal(await obs.arrives(is('DDATA'), 300), false, 'no DATA while the host is offline');
    assert.equal(e.stats().stored, 5 * (2 + 1), '5 ticks × (2 load metrics + the node Uptime)');

    await obs.state(host, true, 3000);
    const b2 = await obs.next(is('NBIRTH'));
    assert.equal(
      metric(b2, 'bdSeq')!.value,
      ((metric(b1, 'bdSeq')!.value as number) + 1) % 256,
      'a new CONNECT',
    );
    await obs.next(is('DBIRTH', 'load'));
    const historical: WireMessage[] = [];
    let count = 0;
    while (count < 10) {
      const m = await obs.next(is('DDATA', 'load'));
      historical.push(m);
      count += m.metrics.length;
    }
    const flushed = historical.flatMap((m) => m.metrics);
    assert.ok(
      flushed.every((m) => m.historical),
      'flushed as is_historical',
    );
    assert.deepEqual(
      [...new Set(flushed.map((m) => m.timestamp))].sort(),
      offlineTimes,
      'with their acquisition timestamps',
    );
    assert.ok(historical.length >= 3, `rate-limited in batches (${historical.length} messages)`);
    assert.equal(e.stats().stored, 0);
  });

  it('E14: after a link loss resends what it published in the rolling buffer (≥ 2 × keep-alive) as historical', async () => {
    const g = uid('roll');
    const obs = await Observer.watch(g);
    const e = edgeNode(g, { devices: [{ id: 'load', metrics: 1 }], rollingBufferMs: 60_000 });
    await e.start();
    await obs.next(is('DBIRTH', 'load'));
    e.tick();
    const live = await obs.next(is('DDATA', 'load'));
    const sent = live.metrics[0]!;
    assert.equal(sent.historical, false);
    e.simulateLinkLoss();
    await obs.next(is('NBIRTH'));
    const replay = await obs.next((m) => is('DDATA', 'load')(m) && m.metrics.some((x) => x.historical));
    const again = replay.metrics.find((x) => x.timestamp === sent.timestamp)!;
    assert.ok(again, 'the sample from before the loss is sent again');
    assert.equal(again.value, sent.value);
    assert.equal(again.historical, true);
  });

  it('runs as a process: `loom sim sparkplug` publishes NBIRTH and DDATA, and NDEATH on SIGTERM', async () => {
    const g = uid('proc');
    const obs = await Observer.watch(g);
    const child = spawn(
      process.execPath,
      [
        'bin/loom.js',
        'sim',
        'sparkplug',
        '--url',
        BROKER,
        '--group',
        g,
        '--edge',
        'line1-edge',
        '--no-host',
        '--interval-ms',
        '100',
      ],
      { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LOOM_LOG_LEVEL: 'warn' } },
    );
    const killer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
    try {
      const nbirth = await obs.next(is('NBIRTH'), 15_000, 'NBIRTH from the process');
      assert.equal(nbirth.edge, 'line1-edge');
      await obs.next(is('DBIRTH', 'oven-1'));
      await obs.next(is('DDATA', 'oven-1'), 5000, 'DDATA from the process');
      child.kill('SIGTERM');
      const death = await obs.next(is('NDEATH'));
      assert.equal(metric(death, 'bdSeq')!.value, metric(nbirth, 'bdSeq')!.value);
      assert.equal(await exited, 0, stderr);
      assert.match(stdout, new RegExp(`Sparkplug edge node ${g}/line1-edge`));
    } finally {
      clearTimeout(killer);
      child.kill('SIGKILL');
    }
  });
});

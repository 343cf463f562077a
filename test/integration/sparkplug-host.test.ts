/**
 * Loom as Sparkplug B 3.0 Primary Host (RELIABILITY.md B.1/B.2) against the real Mosquitto
 * (`LOOM_TEST_MQTT_URL`, default mqtt://127.0.0.1:1883). Edge nodes are raw mqtt.js clients whose
 * payloads come from Tahu's own encoder (`sparkplug-payload`), not ours. Where a rule is about the
 * bytes the host sends (Clean Session, the Will, subscribe-before-publish), the host connects
 * through a TCP proxy in this file that parses every MQTT packet in both directions and can cut
 * the connection without a DISCONNECT. The sink and the connectivity reporter are the ports, so
 * in-memory recorders stand in for them.
 *
 * Every test uses its own host id and group, and clears the retained STATE it leaves behind.
 */
import assert from 'node:assert/strict';
import { loadConfig } from '../../src/config/config.ts';
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import net from 'node:net';
import { afterEach, describe, it } from 'node:test';
import mqtt, { type IClientOptions, type IConnackPacket, type MqttClient } from 'mqtt';
import mqttPacket, { type IConnectPacket, type IPublishPacket, type Packet } from 'mqtt-packet';
import pino from 'pino';
import {
  MqttSparkplugHost,
  brokerIdOf,
  type MqttSparkplugHostOptions,
} from '../../src/adapters/sparkplug/mqtt-sparkplug-host.ts';
import { ConnectivityRegistry } from '../../src/app/telemetry/connectivity-registry.ts';
import type {
  ConnectivityKind,
  ConnectivityState,
  TelemetrySink,
} from '../../src/app/telemetry/telemetry-ports.ts';
import { systemClock } from '../../src/domain/shared/clock.ts';
import type { TagSample } from '../../src/domain/signal/sample.ts';

const BROKER = process.env.LOOM_TEST_MQTT_URL ?? 'mqtt://127.0.0.1:1883';
const brokerAddress = new URL(BROKER);
const BROKER_ID = brokerIdOf(BROKER);
const SKIP =
  process.env.LOOM_TEST_PG === 'server'
    ? 'MQTT protocol suite: needs no PostgreSQL, so it runs only in the embedded pass'
    : false;

interface TahuMetric {
  name?: string;
  alias?: number;
  type?: string;
  value?: unknown;
  timestamp?: number;
  isHistorical?: boolean;
  isTransient?: boolean;
  properties?: Record<string, { type: string; value: unknown }>;
}
interface TahuPayload {
  timestamp?: number | { toNumber(): number };
  seq?: number | { toNumber(): number };
  metrics?: TahuMetric[];
}
const tahu = (
  createRequire(import.meta.url)('sparkplug-payload') as {
    get(ns: string): { encodePayload(p: TahuPayload): Uint8Array; decodePayload(b: Uint8Array): TahuPayload };
  }
).get('spBv1.0');

const uid = () => randomBytes(4).toString('hex');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const num = (v: number | { toNumber(): number } | undefined) =>
  v === undefined ? undefined : typeof v === 'number' ? v : v.toNumber();

async function waitFor<T>(
  what: string,
  probe: () => T | undefined | null | false,
  timeoutMs = 4000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v !== undefined && v !== null && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) {
    await Promise.resolve()
      .then(f)
      .catch(() => undefined);
  }
});

class RecordingSink implements TelemetrySink {
  readonly samples: TagSample[] = [];
  readonly stale: { tagPrefix: string; at: number; reason: string }[] = [];
  accept(samples: readonly TagSample[]): void {
    this.samples.push(...samples);
  }
  markStale(tagPrefix: string, at: number, reason: string): void {
    this.stale.push({ tagPrefix, at, reason });
  }
  values(tag: string): TagSample['value'][] {
    return this.samples.filter((s) => s.tag === tag).map((s) => s.value);
  }
}

class RecordingConnectivity extends ConnectivityRegistry {
  readonly history: { kind: ConnectivityKind; id: string; state: ConnectivityState; detail?: string }[] = [];
  override setState(kind: ConnectivityKind, id: string, state: ConnectivityState, detail?: string): void {
    this.history.push({ kind, id, state, ...(detail !== undefined ? { detail } : {}) });
    super.setState(kind, id, state, detail);
  }
  entry(kind: ConnectivityKind, id: string) {
    return this.list().find((e) => e.kind === kind && e.id === id);
  }
  counter(kind: ConnectivityKind, id: string, name: string): number {
    return this.entry(kind, id)?.counters[name] ?? 0;
  }
}

interface LogLine {
  level: number;
  msg: string;
  source?: string;
  problem?: string;
  notice?: string;
  topic?: string;
}

const stateTopic = (hostId: string) => `spBv1.0/STATE/${hostId}`;
const newHostId = () => `loom-test-${uid()}`;

async function clearRetained(topic: string): Promise<void> {
  const c = await mqtt.connectAsync(BROKER, { clientId: `t-clear-${uid()}`, reconnectPeriod: 0 });
  await c.publishAsync(topic, '', { qos: 1, retain: true });
  await c.endAsync();
}

/**
 * A host scoped to a group of its own (`groups`): the broker is shared with other suites and the
 * ingest bench, whose edge nodes must never see our rebirth requests.
 */
function startHost(over: Partial<MqttSparkplugHostOptions> = {}) {
  const hostId = over.hostId ?? newHostId();
  const group = over.groups?.[0] ?? `g-${uid()}`;
  const sink = new RecordingSink();
  const connectivity = new RecordingConnectivity(systemClock);
  const logs: LogLine[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => logs.push(JSON.parse(line) as LogLine) });
  const host = new MqttSparkplugHost({
    url: BROKER,
    hostId,
    keepaliveSeconds: 10,
    maxMessageBytes: 1 << 20,
    reorderTimeoutMs: 200,
    rebirthIntervalMs: 5000,
    reconnectMinMs: 50,
    reconnectMaxMs: 200,
    sink,
    connectivity,
    clock: systemClock,
    logger,
    groups: [group],
    ...over,
  });
  cleanups.push(() => clearRetained(stateTopic(hostId)));
  cleanups.push(() => host.stop());
  const warnings = (pred: (l: LogLine) => boolean) => logs.filter((l) => l.level === 40 && pred(l));
  return { host, hostId, group, sink, connectivity, logs, warnings };
}

async function client(opts: IClientOptions = {}): Promise<MqttClient> {
  const c = await mqtt.connectAsync(BROKER, { clientId: `t-${uid()}`, reconnectPeriod: 0, ...opts });
  cleanups.push(() => c.endAsync(true));
  return c;
}

interface Seen {
  readonly topic: string;
  readonly payload: Buffer;
  readonly qos: number;
  readonly retain: boolean;
  readonly at: number;
}

async function watch(filters: string[]): Promise<Seen[]> {
  const c = await client();
  const seen: Seen[] = [];
  c.on('message', (topic, payload, packet) =>
    seen.push({ topic, payload, qos: packet.qos, retain: packet.retain, at: Date.now() }),
  );
  await c.subscribeAsync(filters, { qos: 1 });
  return seen;
}
const stateOf = (s: Seen) => JSON.parse(s.payload.toString()) as { online: boolean; timestamp: number };

/** An edge node driven by hand: Tahu's encoder, our choice of seq, bdSeq and timing. */
class Edge {
  #seq = 0;
  constructor(
    readonly client: MqttClient,
    readonly group: string,
    readonly id: string,
  ) {}

  static async connect(group: string, id: string, will?: { bdSeq: number; qos?: 0 | 1 }): Promise<Edge> {
    const c = await client(
      will === undefined
        ? {}
        : {
            will: {
              topic: `spBv1.0/${group}/NDEATH/${id}`,
              payload: Buffer.from(
                tahu.encodePayload({
                  timestamp: Date.now(),
                  metrics: [{ name: 'bdSeq', type: 'Int64', value: will.bdSeq }],
                }),
              ),
              qos: will.qos ?? 1,
              retain: false,
            },
          },
    );
    return new Edge(c, group, id);
  }

  get nodeId() {
    return `${this.group}/${this.id}`;
  }
  tag(device: string | null, metric: string) {
    return `spb:${this.group}/${this.id}/${device ?? ''}/${metric}`;
  }
  topic(type: string, device: string | null = null) {
    return `spBv1.0/${this.group}/${type}/${this.id}${device === null ? '' : `/${device}`}`;
  }
  next(): number {
    const s = this.#seq;
    this.#seq = (s + 1) % 256;
    return s;
  }
  async send(type: string, device: string | null, payload: TahuPayload): Promise<void> {
    await this.client.publishAsync(this.topic(type, device), Buffer.from(tahu.encodePayload(payload)), {
      qos: 0,
    });
  }
  async raw(topic: string, payload: Buffer | string): Promise<void> {
    await this.client.publishAsync(topic, payload, { qos: 0 });
  }
  async nbirth(metrics: TahuMetric[] = [], opts: { bdSeq?: number; seq?: number } = {}): Promise<void> {
    this.#seq = opts.seq ?? 0;
    await this.send('NBIRTH', null, {
      timestamp: Date.now(),
      seq: this.next(),
      metrics: [
        { name: 'bdSeq', type: 'Int64', value: opts.bdSeq ?? 0 },
        { name: 'Node Control/Rebirth', type: 'Boolean', value: false },
        ...metrics,
      ],
    });
  }
  async dbirth(device: string, metrics: TahuMetric[]): Promise<void> {
    await this.send('DBIRTH', device, { timestamp: Date.now(), seq: this.next(), metrics });
  }
  async ndata(metrics: TahuMetric[], seq = this.next()): Promise<void> {
    await this.send('NDATA', null, { timestamp: Date.now(), seq, metrics });
  }
  async ddata(device: string, metrics: TahuMetric[], seq = this.next()): Promise<void> {
    await this.send('DDATA', device, { timestamp: Date.now(), seq, metrics });
  }
  async ddeath(device: string, timestamp: number): Promise<void> {
    await this.send('DDEATH', device, { timestamp, seq: this.next(), metrics: [] });
  }
  async ndeath(bdSeq: number, timestamp = Date.now()): Promise<void> {
    await this.send('NDEATH', null, { timestamp, metrics: [{ name: 'bdSeq', type: 'Int64', value: bdSeq }] });
  }
  /** Gone without DISCONNECT: the broker publishes the Will. */
  drop(): void {
    this.client.stream.destroy();
  }
}

const UPTIME: TahuMetric = { name: 'Uptime', alias: 1, type: 'Int32', value: 0 };
const TEMP: TahuMetric = { name: 'Temp', alias: 10, type: 'Double', value: 20 };
const COUNT: TahuMetric = { name: 'Count', alias: 11, type: 'Int32', value: 0 };

/** A born edge node with one device `d1` (Temp alias 10, Count alias 11) and Uptime alias 1. */
async function bornEdge(h: ReturnType<typeof startHost>, id = `edge-${uid()}`): Promise<Edge> {
  const edge = await Edge.connect(h.group, id);
  await edge.nbirth([UPTIME]);
  await edge.dbirth('d1', [TEMP, COUNT]);
  await waitFor(
    'device d1 online',
    () => h.connectivity.entry('device', `${edge.nodeId}/d1`)?.state === 'online',
  );
  return edge;
}

interface ProxiedPacket {
  readonly dir: 'up' | 'down';
  readonly conn: number;
  readonly packet: Packet;
}

/**
 * A TCP proxy in front of the broker that parses every MQTT packet both ways and can cut the
 * connection without a DISCONNECT (what a dead network looks like to the broker).
 */
class MqttProxy {
  readonly packets: ProxiedPacket[] = [];
  readonly #sockets = new Set<net.Socket>();
  #conns = 0;
  private constructor(
    readonly server: net.Server,
    readonly port: number,
  ) {}

  static async start(protocolVersion: 4 | 5 = 4, port = 0): Promise<MqttProxy> {
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    const proxy = new MqttProxy(server, (server.address() as net.AddressInfo).port);
    server.on('connection', (down) => proxy.#pipe(down, protocolVersion));
    cleanups.push(() => proxy.close());
    return proxy;
  }

  get url(): string {
    return `mqtt://127.0.0.1:${this.port}`;
  }

  #pipe(down: net.Socket, protocolVersion: 4 | 5): void {
    const conn = ++this.#conns;
    const up = net.connect(Number(brokerAddress.port || 1883), brokerAddress.hostname);
    this.#sockets.add(down).add(up);
    const fromClient = mqttPacket.parser({ protocolVersion });
    const fromBroker = mqttPacket.parser({ protocolVersion });
    fromClient.on('packet', (packet: Packet) => this.packets.push({ dir: 'up', conn, packet }));
    fromBroker.on('packet', (packet: Packet) => this.packets.push({ dir: 'down', conn, packet }));
    down.on('data', (d: Buffer) => {
      fromClient.parse(d);
      up.write(d);
    });
    up.on('data', (d: Buffer) => {
      fromBroker.parse(d);
      down.write(d);
    });
    const end = () => {
      down.destroy();
      up.destroy();
      this.#sockets.delete(down);
      this.#sockets.delete(up);
    };
    for (const s of [down, up]) {
      s.on('close', end);
      s.on('error', end);
    }
  }

  of(conn: number): ProxiedPacket[] {
    return this.packets.filter((p) => p.conn === conn);
  }
  connects(): IConnectPacket[] {
    return this.packets.filter((p) => p.packet.cmd === 'connect').map((p) => p.packet as IConnectPacket);
  }
  /** Cuts every connection at once, both sides, without any MQTT packet. */
  drop(): void {
    for (const s of this.#sockets) s.destroy();
    this.#sockets.clear();
  }
  async close(): Promise<void> {
    this.drop();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

/** Connects with `clean: false` to find out whether the broker kept a session for `clientId`. */
async function sessionPresent(clientId: string, protocolVersion: 4 | 5): Promise<boolean> {
  const c = mqtt.connect(BROKER, {
    clientId,
    clean: false,
    protocolVersion,
    reconnectPeriod: 0,
    // The probe must not leave a session of its own behind (MQTT 5); a 3.1.1 one is wiped below.
    ...(protocolVersion === 5 ? { properties: { sessionExpiryInterval: 0 } } : {}),
  });
  const connack = await new Promise<IConnackPacket>((resolve, reject) => {
    c.once('connect', resolve);
    c.once('error', reject);
  });
  await c.endAsync();
  if (protocolVersion === 4) {
    const wipe = await mqtt.connectAsync(BROKER, { clientId, clean: true, reconnectPeriod: 0 });
    await wipe.endAsync();
  }
  return connack.sessionPresent;
}

describe('Sparkplug host application against Mosquitto', { skip: SKIP }, () => {
  describe('B.1 session (H1–H6)', () => {
    for (const protocolVersion of [4, 5] as const) {
      const name =
        protocolVersion === 4
          ? 'H1: connects with Clean Session = true (MQTT 3.1.1): the broker keeps no session for the host'
          : 'H1: connects with Clean Start = true and Session Expiry 0 (MQTT 5): the broker keeps no session';
      it(name, async () => {
        const proxy = await MqttProxy.start(protocolVersion);
        const clientId = `loom-h1-${uid()}`;
        const h = startHost({ url: proxy.url, clientId, protocolVersion });
        await h.host.start();
        assert.equal(h.host.status().connected, true);
        const [connect] = proxy.connects();
        assert.equal(connect?.protocolVersion, protocolVersion);
        assert.equal(connect?.clean, true);
        if (protocolVersion === 5) assert.equal(connect?.properties?.sessionExpiryInterval ?? 0, 0);
        const subscribe = proxy.packets.find((p) => p.packet.cmd === 'subscribe')!.packet as {
          subscriptions: { topic: string }[];
        };
        assert.deepEqual(
          subscribe.subscriptions.map((x) => x.topic),
          [`spBv1.0/${h.group}/#`, stateTopic(h.hostId)],
          'scoped to its groups',
        );
        await h.host.stop();
        assert.equal(await sessionPresent(clientId, protocolVersion), false);
      });
    }

    it('H7: each host id owns its STATE topic: two hosts on one broker never touch each other; ids with + / # are refused', async () => {
      const a = startHost();
      const b = startHost();
      const seen = await watch([stateTopic(a.hostId), stateTopic(b.hostId)]);
      await a.host.start();
      await b.host.start();
      await waitFor('both births', () =>
        seen.filter((s) => stateOf(s).online).length >= 2 ? true : undefined,
      );
      await a.host.stop();
      await waitFor('a offline', () =>
        seen.find((s) => s.topic === stateTopic(a.hostId) && !stateOf(s).online),
      );
      assert.equal(b.host.status().connected, true);
      assert.ok(
        seen.filter((s) => s.topic === stateTopic(b.hostId)).every((s) => stateOf(s).online),
        'the other host id keeps its own STATE online',
      );
      // Loom connects to one broker URL (a cluster is one broker to it): one STATE timestamp, the
      // current connection's, which status() shows.
      assert.equal(typeof b.host.status().stateTimestamp, 'number');
      assert.throws(
        () => loadConfig({ env: { LOOM_SPARKPLUG_HOST_ID: 'plant/loom' } }),
        /LOOM_SPARKPLUG_HOST_ID/,
      );
    });

    it('H2/H4: Will and STATE birth carry the same T; a cut connection publishes the Will; the reconnect brings a fresh T', async () => {
      const hostId = newHostId();
      const seen = await watch([stateTopic(hostId)]);
      const proxy = await MqttProxy.start();
      const h = startHost({ url: proxy.url, hostId });
      const before = Date.now();
      await h.host.start();

      const will1 = proxy.connects()[0]!.will!;
      assert.equal(will1.topic, stateTopic(hostId));
      assert.equal(will1.qos, 1);
      assert.equal(will1.retain, true);
      const t1 = (JSON.parse(will1.payload.toString()) as { online: boolean; timestamp: number }).timestamp;
      assert.deepEqual(JSON.parse(will1.payload.toString()), { online: false, timestamp: t1 });
      assert.ok(t1 >= before && t1 <= Date.now(), 'H19: the Will timestamp is the CONNECT time in epoch ms');

      const birth1 = await waitFor('STATE birth', () => seen.find((s) => stateOf(s).online));
      assert.deepEqual(stateOf(birth1), { online: true, timestamp: t1 });
      assert.equal(h.host.status().stateTimestamp, t1);
      const late = await watch([stateTopic(hostId)]);
      const retained = await waitFor('retained STATE', () => late[0]);
      assert.equal(retained.retain, true);
      assert.deepEqual(stateOf(retained), { online: true, timestamp: t1 });

      proxy.drop();
      const willSeen = await waitFor('the Will', () => seen.find((s) => !stateOf(s).online));
      assert.deepEqual(stateOf(willSeen), { online: false, timestamp: t1 });
      assert.equal(willSeen.qos, 1);

      const birth2 = await waitFor('second STATE birth', () => seen.filter((s) => stateOf(s).online)[1]);
      const t2 = stateOf(birth2).timestamp;
      assert.ok(t2 > t1, `the reconnect's T ${t2} is newer than ${t1}`);
      const will2 = proxy.connects()[1]!.will!;
      assert.deepEqual(JSON.parse(will2.payload.toString()), { online: false, timestamp: t2 });
      // The retained Will of the first connection (T1 < T2) is delivered on resubscribe and ignored (H5).
      await sleep(200);
      assert.equal(seen.filter((s) => stateOf(s).online).length, 2);
    });

    it('H3/H4: subscribes to spBv1.0/# and its own STATE, and waits for SUBACK, before its first publish: the STATE birth', async () => {
      const proxy = await MqttProxy.start();
      // All groups, as by default; foreign edge nodes on the shared broker get no rebirth requests.
      const h = startHost({ url: proxy.url, groups: undefined, requestRebirths: false });
      await h.host.start();
      const packets = proxy.of(1);
      const at = (pred: (p: ProxiedPacket) => boolean) => packets.findIndex(pred);
      const subscribe = at((p) => p.dir === 'up' && p.packet.cmd === 'subscribe');
      const suback = at((p) => p.dir === 'down' && p.packet.cmd === 'suback');
      const firstPublish = at((p) => p.dir === 'up' && p.packet.cmd === 'publish');
      assert.ok(
        subscribe !== -1 && suback > subscribe && firstPublish > suback,
        'subscribe, SUBACK, then publish',
      );
      const sub = packets[subscribe]!.packet as { subscriptions: { topic: string; qos: number }[] };
      assert.deepEqual(
        sub.subscriptions.map((s) => s.topic).sort(),
        ['spBv1.0/#', stateTopic(h.hostId)].sort(),
      );
      const birth = packets[firstPublish]!.packet as IPublishPacket;
      assert.equal(birth.topic, stateTopic(h.hostId));
      assert.equal(birth.qos, 1);
      assert.equal(birth.retain, true);
      assert.deepEqual(JSON.parse(birth.payload.toString()), {
        online: true,
        timestamp: h.host.status().stateTimestamp,
      });
    });

    it('H5: re-publishes its birth with the same T when its STATE is set offline, but not for an older retained death', async () => {
      const hostId = newHostId();
      const seeder = await client();
      // A retained death from an earlier run: delivered on subscribe, older than our T, not a reason.
      await seeder.publishAsync(
        stateTopic(hostId),
        JSON.stringify({ online: false, timestamp: Date.now() - 60_000 }),
        {
          qos: 1,
          retain: true,
        },
      );
      const seen = await watch([stateTopic(hostId)]);
      const h = startHost({ hostId });
      await h.host.start();
      const t = h.host.status().stateTimestamp!;
      await waitFor('STATE birth', () => seen.find((s) => stateOf(s).online));
      await sleep(250);
      assert.equal(seen.filter((s) => stateOf(s).online).length, 1, 'no re-birth for the old retained death');

      await seeder.publishAsync(
        stateTopic(hostId),
        JSON.stringify({ online: false, timestamp: Date.now() }),
        {
          qos: 1,
        },
      );
      const rebirth = await waitFor('re-published birth', () => seen.filter((s) => stateOf(s).online)[1]);
      assert.deepEqual(stateOf(rebirth), { online: true, timestamp: t });
      await sleep(200);
      assert.equal(h.connectivity.counter('mqtt-broker', BROKER_ID, 'stateOverrides'), 1);
      assert.equal(seen.filter((s) => stateOf(s).online).length, 2);
    });

    it('H6: stop() publishes the STATE death with the current time before DISCONNECT, no Will follows, and stop() is idempotent', async () => {
      const hostId = newHostId();
      const seen = await watch([stateTopic(hostId)]);
      const proxy = await MqttProxy.start();
      const h = startHost({ url: proxy.url, hostId });
      await h.host.start();
      const t = h.host.status().stateTimestamp!;
      await sleep(5);
      const before = Date.now();
      await Promise.all([h.host.stop(), h.host.stop()]);
      const after = Date.now();
      await h.host.stop();

      const death = await waitFor('STATE death', () => seen.find((s) => !stateOf(s).online));
      const ts = stateOf(death).timestamp;
      assert.ok(ts >= before && ts <= after && ts > t, `death timestamp ${ts} is the stop time, not ${t}`);
      const up = proxy.of(1).filter((p) => p.dir === 'up');
      const deathAt = up.findIndex(
        (p) => p.packet.cmd === 'publish' && p.packet.payload.toString().includes('"online":false'),
      );
      const disconnectAt = up.findIndex((p) => p.packet.cmd === 'disconnect');
      assert.ok(deathAt !== -1 && disconnectAt > deathAt, 'STATE death, then DISCONNECT');
      await sleep(250);
      assert.equal(seen.filter((s) => !stateOf(s).online).length, 1, 'DISCONNECT suppressed the Will');
      assert.equal(h.host.status().running, false);
      assert.equal(h.connectivity.entry('mqtt-broker', proxy.url)?.state, 'offline');
    });
  });

  describe('B.2 data handling (H8–H20)', () => {
    it('H8: follows seq across NBIRTH, DBIRTH, NDATA, DDATA and DDEATH, wrapping 255 → 0, without a rebirth', async () => {
      const h = startHost();
      await h.host.start();
      const group = h.group;
      const ncmd = await watch([`spBv1.0/${group}/NCMD/#`]);
      const edge = await Edge.connect(group, 'e1');
      await edge.nbirth([UPTIME], { seq: 252 });
      await edge.dbirth('d1', [TEMP, COUNT]);
      await edge.ddata('d1', [{ alias: 10, type: 'Double', value: 21 }]); // 254
      await edge.ddata('d1', [{ alias: 10, type: 'Double', value: 22 }]); // 255
      await edge.ndata([{ alias: 1, type: 'Int32', value: 1 }]); // 0
      await edge.ddeath('d1', Date.now()); // 1
      await edge.dbirth('d1', [TEMP, COUNT]); // 2
      await edge.ddata('d1', [{ alias: 10, type: 'Double', value: 23 }]); // 3
      await waitFor('the last DDATA', () => h.sink.values(edge.tag('d1', 'Temp')).includes(23));
      assert.deepEqual(h.sink.values(edge.tag('d1', 'Temp')), [20, 21, 22, 20, 23]);
      await sleep(300);
      assert.equal(h.connectivity.counter('edge-node', edge.nodeId, 'outOfOrder'), 0);
      assert.equal(h.connectivity.counter('edge-node', edge.nodeId, 'rebirthRequests'), 0);
      assert.deepEqual(ncmd, []);
    });

    it('H9: holds an early message until the gap fills; a gap still open after the reorder timeout ends in one NCMD rebirth', async () => {
      const h = startHost({ reorderTimeoutMs: 200, rebirthIntervalMs: 5000 });
      await h.host.start();
      const group = h.group;
      const ncmd = await watch([`spBv1.0/${group}/NCMD/#`]);
      const edge = await Edge.connect(group, 'e1');
      await edge.nbirth([UPTIME]);
      const up = (value: number) => [{ alias: 1, type: 'Int32', value }];
      await edge.ndata(up(1), 1);
      await edge.ndata(up(3), 3);
      await edge.ndata(up(2), 2);
      const uptime = edge.tag(null, 'Uptime');
      await waitFor('reordered data', () => h.sink.values(uptime).length === 4);
      assert.deepEqual(h.sink.values(uptime), [0, 1, 2, 3]);
      await sleep(300);
      assert.equal(ncmd.length, 0, 'a gap filled in time needs no rebirth');

      const sentAt = Date.now();
      await edge.ndata(up(5), 5);
      const rebirth = await waitFor('NCMD rebirth', () => ncmd[0]);
      assert.ok(
        rebirth.at - sentAt >= 150,
        `rebirth after the reorder timeout, not at once (${rebirth.at - sentAt} ms)`,
      );
      assert.deepEqual(h.sink.values(uptime), [0, 1, 2, 3, 5], 'what waited is applied when the wait ends');
      assert.equal(h.connectivity.entry('edge-node', edge.nodeId)?.state, 'stale');

      await edge.ndata(up(8), 8);
      await waitFor('seq 8 seen', () => h.connectivity.counter('edge-node', edge.nodeId, 'outOfOrder') === 3);
      await sleep(400);
      assert.equal(ncmd.length, 1, 'rate-limited: one rebirth request per interval');
      assert.equal(h.connectivity.counter('edge-node', edge.nodeId, 'rebirthRequests'), 1);
      assert.equal(h.connectivity.counter('edge-node', edge.nodeId, 'outOfOrder'), 3);
    });

    it('H10/H11: NDATA before NBIRTH gets NCMD Node Control/Rebirth = true, QoS 0, not retained, timestamped, without seq', async () => {
      const proxy = await MqttProxy.start();
      const h = startHost({ url: proxy.url });
      await h.host.start();
      const group = h.group;
      const ncmd = await watch([`spBv1.0/${group}/NCMD/#`]);
      const edge = await Edge.connect(group, 'e1');
      const before = Date.now();
      await edge.ndata([{ alias: 1, type: 'Int32', value: 1 }], 17);
      const got = await waitFor('NCMD', () => ncmd[0]);
      const after = Date.now();
      assert.equal(got.topic, `spBv1.0/${group}/NCMD/e1`);
      const p = tahu.decodePayload(got.payload);
      assert.equal(p.seq, undefined);
      const ts = num(p.timestamp)!;
      assert.ok(ts >= before && ts <= after, 'H19: epoch ms from the host clock');
      assert.equal(p.metrics?.length, 1);
      assert.equal(p.metrics[0]!.name, 'Node Control/Rebirth');
      assert.equal(p.metrics[0]!.type, 'Boolean');
      assert.equal(p.metrics[0]!.value, true);
      assert.equal(p.metrics[0]!.alias, undefined);
      const sent = proxy.packets.find(
        (x) => x.dir === 'up' && x.packet.cmd === 'publish' && x.packet.topic === got.topic,
      )!.packet as IPublishPacket;
      assert.equal(sent.qos, 0);
      assert.equal(sent.retain, false);
      assert.equal(h.connectivity.counter('edge-node', edge.nodeId, 'beforeBirth'), 1);
      assert.equal(h.connectivity.entry('edge-node', edge.nodeId)?.state, 'stale');
    });

    it('H11: an unknown alias is counted and logged once, rebirth is requested once per interval, the node is stale until it reborn', async () => {
      const h = startHost({ rebirthIntervalMs: 5000 });
      await h.host.start();
      const edge = await bornEdge(h);
      const ncmd = await watch([`spBv1.0/${edge.group}/NCMD/#`]);
      for (let i = 0; i < 3; i++) await edge.ddata('d1', [{ alias: 99, type: 'Double', value: i }]);
      await waitFor(
        'unknownAlias counted',
        () => h.connectivity.counter('edge-node', edge.nodeId, 'unknownAlias') === 3,
      );
      await waitFor('NCMD', () => ncmd[0]);
      await sleep(300);
      assert.equal(ncmd.length, 1);
      assert.equal(h.connectivity.entry('edge-node', edge.nodeId)?.state, 'stale');
      assert.match(h.connectivity.entry('edge-node', edge.nodeId)?.detail ?? '', /alias 99/);
      const logged = h.warnings((l) => l.problem === 'unknownAlias');
      assert.equal(logged.length, 1);
      assert.equal(logged[0]!.source, `edge-node ${edge.nodeId}`);

      await edge.nbirth([UPTIME]);
      await edge.dbirth('d1', [TEMP, COUNT]);
      await waitFor(
        'node online again',
        () => h.connectivity.entry('edge-node', edge.nodeId)?.state === 'online',
      );
      assert.equal(h.host.status().edgeNodes.online >= 1, true);
    });

    it('H12: NDEATH takes the node and its devices offline and marks every tag stale at the host clock', async () => {
      const h = startHost();
      await h.host.start();
      const edge = await bornEdge(h);
      const before = Date.now();
      await edge.ndeath(0, 1000);
      const stale = await waitFor('stale mark', () => h.sink.stale[0]);
      const after = Date.now();
      assert.equal(stale.tagPrefix, `spb:${edge.nodeId}/`);
      assert.ok(
        stale.at >= before && stale.at <= after,
        `stale at the host clock, not the payload's 1000 (${stale.at})`,
      );
      assert.equal(h.connectivity.entry('edge-node', edge.nodeId)?.state, 'offline');
      assert.equal(h.connectivity.entry('device', `${edge.nodeId}/d1`)?.state, 'offline');
    });

    it('H13: an NDEATH (Will) of an older session is ignored; a Will after the NDEATH it repeats is a no-op', async () => {
      const h = startHost();
      await h.host.start();
      const group = h.group;
      const first = await Edge.connect(group, 'e1', { bdSeq: 0 });
      await first.nbirth([UPTIME], { bdSeq: 0 });
      const second = await Edge.connect(group, 'e1', { bdSeq: 1 });
      await second.nbirth([UPTIME], { bdSeq: 1 });
      await waitFor(
        'session bdSeq 1',
        () => h.connectivity.entry('edge-node', `${group}/e1`)?.detail === 'NBIRTH bdSeq 1',
      );

      first.drop();
      await waitFor(
        'stale NDEATH counted',
        () => h.connectivity.counter('edge-node', `${group}/e1`, 'staleDeath') === 1,
      );
      assert.equal(h.connectivity.entry('edge-node', `${group}/e1`)?.state, 'online');
      assert.deepEqual(h.sink.stale, []);

      await second.ndeath(1);
      await waitFor('NDEATH applied', () => h.sink.stale.length === 1);
      second.drop();
      await waitFor(
        'the Will as a duplicate',
        () => h.connectivity.counter('edge-node', `${group}/e1`, 'duplicateDeath') === 1,
      );
      assert.equal(h.sink.stale.length, 1);
      assert.equal(h.connectivity.entry('edge-node', `${group}/e1`)?.state, 'offline');
    });

    it('H13 (Tahu): a new NBIRTH with an unchanged bdSeq starts a new session, and says so once per node', async () => {
      const h = startHost();
      await h.host.start();
      const edge = await Edge.connect(h.group, 'tahu-like');
      for (let i = 0; i < 3; i++) {
        await edge.nbirth([UPTIME], { bdSeq: 0 });
        await edge.ndeath(0);
      }
      await edge.nbirth([UPTIME], { bdSeq: 0 });
      await waitFor('three deaths', () => h.sink.stale.length === 3);
      await waitFor('online', () => h.connectivity.entry('edge-node', edge.nodeId)?.state === 'online');
      const notes = h.warnings((l) => l.notice === 'bdSeqUnchanged');
      assert.equal(notes.length, 1);
      assert.match(notes[0]!.msg, /bdSeq 0 did not change between sessions; NDEATH correlation is weaker/);
    });

    it('H14: DDEATH takes the device offline with its tags stale at the DDEATH timestamp, and counts in seq', async () => {
      const h = startHost();
      await h.host.start();
      const edge = await bornEdge(h);
      await edge.ddeath('d1', 1_700_000_000_000);
      const stale = await waitFor('stale mark', () => h.sink.stale[0]);
      assert.deepEqual(stale, {
        tagPrefix: `spb:${edge.nodeId}/d1/`,
        at: 1_700_000_000_000,
        reason: 'DDEATH',
      });
      assert.equal(h.connectivity.entry('device', `${edge.nodeId}/d1`)?.state, 'offline');
      assert.equal(h.connectivity.entry('edge-node', edge.nodeId)?.state, 'online');
      await edge.ndata([{ alias: 1, type: 'Int32', value: 7 }]);
      await waitFor('NDATA after DDEATH', () => h.sink.values(edge.tag(null, 'Uptime')).includes(7));
      assert.equal(h.connectivity.counter('edge-node', edge.nodeId, 'outOfOrder'), 0);
    });

    it('H15: DDATA by alias resolves to the BIRTH name; an alias reused across devices is refused with a rebirth', async () => {
      const h = startHost();
      await h.host.start();
      const edge = await bornEdge(h);
      const ncmd = await watch([`spBv1.0/${edge.group}/NCMD/#`]);
      await edge.ddata('d1', [{ alias: 11, value: 5, type: 'Int32' }]);
      await waitFor('Count by alias', () => h.sink.values(edge.tag('d1', 'Count')).includes(5));
      await edge.dbirth('d2', [{ name: 'Speed', alias: 10, type: 'Double', value: 1 }]);
      await waitFor(
        'duplicate alias',
        () => h.connectivity.counter('edge-node', edge.nodeId, 'duplicateAlias') === 1,
      );
      await waitFor('NCMD', () => ncmd[0]);
      assert.equal(
        h.connectivity.entry('device', `${edge.nodeId}/d2`),
        undefined,
        'the refused DBIRTH made no device',
      );
      assert.deepEqual(h.sink.values(edge.tag('d2', 'Speed')), []);
    });

    it('H16/H17/H19: is_historical, is_null, is_transient and the Quality property reach the samples; timestamps are epoch ms', async () => {
      const h = startHost();
      await h.host.start();
      const edge = await bornEdge(h);
      const t0 = Date.now() - 60_000;
      const before = Date.now();
      await edge.ddata('d1', [
        { alias: 10, type: 'Double', value: 19.5, timestamp: t0, isHistorical: true },
        { alias: 11, type: 'Int32', value: null, timestamp: t0 + 1 },
        { alias: 10, type: 'Double', value: 22, timestamp: t0 + 2, isTransient: true },
        {
          alias: 11,
          type: 'Int32',
          value: 4,
          timestamp: t0 + 3,
          properties: { Quality: { type: 'Int32', value: 0 } },
        },
      ]);
      const got = await waitFor('four samples', () => {
        const s = h.sink.samples.filter((x) => x.sourceTs >= t0 && x.sourceTs <= t0 + 3);
        return s.length === 4 ? s : null;
      });
      const after = Date.now();
      assert.deepEqual(
        got.map((s) => [s.tag, s.value, s.quality, s.sourceTs, s.historical, s.transient ?? false]),
        [
          [edge.tag('d1', 'Temp'), 19.5, 'good', t0, true, false],
          [edge.tag('d1', 'Count'), null, 'good', t0 + 1, false, false],
          [edge.tag('d1', 'Temp'), 22, 'good', t0 + 2, false, true],
          [edge.tag('d1', 'Count'), 4, 'bad', t0 + 3, false, false],
        ],
      );
      for (const s of got)
        assert.ok(s.serverTs >= before && s.serverTs <= after, 'serverTs: host clock, epoch ms');
    });

    it('H18: writeMetrics sends DCMD by alias with the BIRTH datatype, unconfirmed; refuses unknown metrics, wrong types, offline devices and a lost broker', async () => {
      const proxy = await MqttProxy.start();
      const h = startHost({ url: proxy.url });
      await h.host.start();
      const edge = await bornEdge(h);
      const cmds = await watch([`spBv1.0/${edge.group}/DCMD/#`, `spBv1.0/${edge.group}/NCMD/#`]);
      const target = { group: edge.group, edgeNode: edge.id, device: 'd1' };

      const r = await h.host.writeMetrics(target, [{ name: 'Temp', value: 42.5 }]);
      assert.ok(r.ok, r.ok ? '' : r.error.message);
      assert.equal(r.value.confirmed, false);
      const dcmd = await waitFor('DCMD', () => cmds[0]);
      assert.equal(dcmd.topic, `spBv1.0/${edge.group}/DCMD/${edge.id}/d1`);
      const p = tahu.decodePayload(dcmd.payload);
      assert.equal(p.seq, undefined);
      assert.ok(num(p.timestamp)! > 1e12);
      assert.equal(p.metrics?.length, 1);
      assert.equal(num(p.metrics[0]!.alias as number), 10);
      assert.equal(p.metrics[0]!.name, undefined);
      assert.equal(p.metrics[0]!.type, 'Double');
      assert.equal(p.metrics[0]!.value, 42.5);

      const code = async (
        t: { group: string; edgeNode: string; device?: string },
        m: { name: string; value: number | boolean | string }[],
      ) => {
        const x = await h.host.writeMetrics(t, m);
        return x.ok ? 'ok' : x.error.code;
      };
      assert.equal(await code(target, [{ name: 'Pressure', value: 1 }]), 'LOOM_SPARKPLUG_UNKNOWN_METRIC');
      assert.equal(await code(target, [{ name: 'Count', value: 'many' }]), 'LOOM_SPARKPLUG_TYPE_MISMATCH');
      assert.equal(await code(target, [{ name: 'Count', value: 1.5 }]), 'LOOM_SPARKPLUG_TYPE_MISMATCH');
      assert.equal(
        await code({ ...target, edgeNode: 'nobody' }, [{ name: 'Temp', value: 1 }]),
        'LOOM_SPARKPLUG_NODE_OFFLINE',
      );
      await edge.ddeath('d1', Date.now());
      await waitFor(
        'd1 offline',
        () => h.connectivity.entry('device', `${edge.nodeId}/d1`)?.state === 'offline',
      );
      assert.equal(await code(target, [{ name: 'Temp', value: 1 }]), 'LOOM_SPARKPLUG_DEVICE_OFFLINE');

      await proxy.close();
      await waitFor('host disconnected', () => !h.host.status().connected);
      assert.equal(
        await code({ group: edge.group, edgeNode: edge.id }, [{ name: 'Uptime', value: 1 }]),
        'LOOM_SPARKPLUG_BROKER_DISCONNECTED',
      );
      await sleep(100);
      assert.equal(cmds.length, 1, 'nothing but the one valid command reached the broker');
    });

    it('H20: topics with the wrong shape or empty ids are counted on the broker and logged once per topic; other nodes keep flowing', async () => {
      const h = startHost();
      await h.host.start();
      const healthy = await bornEdge(h);
      const group = h.group;
      const bad = await client();
      const topics = [
        `spBv1.0/${group}/DDATA/e1/d1/extra`,
        `spBv1.0/${group}/NDATA/`,
        `spBv1.0/${group}/DDATA/e1/`,
        `spBv1.0/${group}/XDATA/e1`,
        `spBv1.0/${group}/NDATA/e1/x/y`,
      ];
      for (let round = 0; round < 2; round++) {
        for (const t of topics)
          await bad.publishAsync(t, Buffer.from(tahu.encodePayload({ seq: 1, metrics: [] })));
        await healthy.ddata('d1', [{ alias: 10, type: 'Double', value: 100 + round }]);
      }
      await waitFor('healthy data', () => h.sink.values(healthy.tag('d1', 'Temp')).includes(101));
      await waitFor(
        'bad topics counted',
        () => h.connectivity.counter('mqtt-broker', BROKER_ID, 'badTopic') === 10,
      );
      const logged = h.warnings((l) => l.topic !== undefined && topics.includes(l.topic));
      assert.equal(logged.length, topics.length, 'one log line per topic, not per message');

      const upper = await Edge.connect(group, 'Press');
      await upper.nbirth([UPTIME]);
      const lower = await Edge.connect(group, 'press');
      await lower.nbirth([UPTIME]);
      await waitFor(
        'case collision noted',
        () => h.warnings((l) => l.notice === 'caseCollision').length === 1,
      );
    });
  });

  describe('bad input: counted, logged once per source, never stops other sources', () => {
    it('malformed protobuf, JSON and a seq beyond 255 count as malformed on their node; a healthy node keeps flowing', async () => {
      const h = startHost();
      await h.host.start();
      const healthy = await bornEdge(h);
      const bad = await bornEdge(h);
      const json = JSON.stringify({ timestamp: Date.now(), metrics: [{ name: 'Temp', value: 21 }] });
      for (let i = 0; i < 3; i++) {
        await bad.raw(bad.topic('DDATA', 'd1'), Buffer.from([0x0a, 0xff, 0xff, 0xff, 0x0f, 0x00]));
        await bad.raw(bad.topic('DDATA', 'd1'), json);
        await bad.raw(
          bad.topic('NDATA'),
          Buffer.from(tahu.encodePayload({ timestamp: 1, seq: 300, metrics: [] })),
        );
        await healthy.ddata('d1', [{ alias: 10, type: 'Double', value: 50 + i }]);
      }
      await waitFor('healthy data', () => h.sink.values(healthy.tag('d1', 'Temp')).includes(52));
      await waitFor(
        'malformed counted',
        () => h.connectivity.counter('edge-node', bad.nodeId, 'malformed') === 9,
      );
      const lines = h.warnings((l) => l.source === `edge-node ${bad.nodeId}`);
      assert.deepEqual(lines.map((l) => l.problem).sort(), ['malformed', 'notProtobuf']);
      assert.deepEqual(h.sink.values(healthy.tag('d1', 'Temp')), [20, 50, 51, 52]);
      assert.equal(h.connectivity.counter('edge-node', healthy.nodeId, 'malformed'), 0);
      assert.equal(h.connectivity.counter('edge-node', bad.nodeId, 'rebirthRequests'), 1);
    });

    it('a metric of another type than its BIRTH is counted as wrongType, logged once, and requests a rebirth', async () => {
      const h = startHost();
      await h.host.start();
      const edge = await bornEdge(h);
      const ncmd = await watch([`spBv1.0/${edge.group}/NCMD/#`]);
      await edge.ddata('d1', [{ alias: 10, type: 'String', value: 'hot' }]);
      await edge.ddata('d1', [{ alias: 11, type: 'Boolean', value: true }]);
      await waitFor(
        'wrongType counted',
        () => h.connectivity.counter('edge-node', edge.nodeId, 'wrongType') === 2,
      );
      await waitFor('NCMD', () => ncmd[0]);
      assert.equal(h.warnings((l) => l.problem === 'wrongType').length, 1);
      assert.deepEqual(h.sink.values(edge.tag('d1', 'Temp')), [20]);
    });

    it('a 10 MB payload and one just over maxMessageBytes are counted as oversize and not decoded', async () => {
      const h = startHost({ maxMessageBytes: 64 * 1024 });
      await h.host.start();
      const healthy = await bornEdge(h);
      const bad = await bornEdge(h);
      await bad.raw(bad.topic('NDATA'), Buffer.alloc(10 * 1024 * 1024, 0x08));
      await bad.raw(bad.topic('NDATA'), Buffer.alloc(64 * 1024 + 1, 0x08));
      await healthy.ddata('d1', [{ alias: 10, type: 'Double', value: 77 }]);
      await waitFor(
        'oversize counted',
        () => h.connectivity.counter('edge-node', bad.nodeId, 'oversize') === 2,
        8000,
      );
      await waitFor('healthy data', () => h.sink.values(healthy.tag('d1', 'Temp')).includes(77));
      assert.equal(h.warnings((l) => l.problem === 'oversize').length, 1);
    });
  });

  describe('lifecycle', () => {
    it('start() does not throw while the broker is down, reports connecting, comes online when it appears; stop() leaves no timer or socket', async () => {
      const resources = () =>
        process
          .getActiveResourcesInfo()
          .filter((r) => r === 'Timeout' || r.startsWith('TCP'))
          .sort();
      const baseline = resources();
      const port = await freePort();
      const url = `mqtt://127.0.0.1:${port}`;
      const h = startHost({ url });
      await h.host.start();
      assert.equal(h.host.status().running, true);
      assert.equal(h.host.status().connected, false);
      assert.equal(h.connectivity.entry('mqtt-broker', url)?.state, 'connecting');
      assert.match(h.host.status().lastError ?? '', /ECONNREFUSED/);
      await sleep(300);
      assert.equal(h.connectivity.entry('mqtt-broker', url)?.state, 'connecting');

      const proxy = await MqttProxy.start(4, port);
      await waitFor('online', () => h.host.status().connected);
      assert.equal(h.connectivity.entry('mqtt-broker', url)?.state, 'online');

      await h.host.stop();
      await proxy.close();
      await clearRetained(stateTopic(h.hostId));
      await sleep(50);
      const left = resources();
      for (const r of new Set(left)) {
        const extra = left.filter((x) => x === r).length - baseline.filter((x) => x === r).length;
        assert.ok(extra <= 0, `${extra} ${r} left behind`);
      }
    });

    it('reports the broker without credentials', async () => {
      const u = new URL(BROKER);
      u.username = 'loom';
      u.password = 'secret';
      const h = startHost({ url: u.toString(), username: undefined, password: undefined });
      await h.host.start();
      assert.equal(h.host.status().broker.includes('secret'), false);
      assert.equal(h.host.status().broker.includes('loom@'), false);
      assert.ok(h.connectivity.list().every((e) => !e.id.includes('secret')));
      assert.ok(h.logs.every((l) => !JSON.stringify(l).includes('secret')));
    });

    it('sharedGroup: DATA is shared between instances, BIRTH and DEATH reach every instance, no false seq gaps', async () => {
      const sharedGroup = `share-${uid()}`;
      const group = `g-${uid()}`;
      const a = startHost({ sharedGroup, groups: [group] });
      const b = startHost({ sharedGroup, groups: [group] });
      await Promise.all([a.host.start(), b.host.start()]);
      const ncmd = await watch([`spBv1.0/${group}/NCMD/#`]);
      const edge = await Edge.connect(group, 'e1');
      await edge.nbirth([UPTIME]);
      await edge.dbirth('d1', [TEMP, COUNT]);
      for (const h of [a, b]) {
        await waitFor(
          'DBIRTH on every instance',
          () => h.connectivity.entry('device', `${edge.nodeId}/d1`)?.state === 'online',
        );
      }
      for (let v = 1; v <= 20; v++) await edge.ddata('d1', [{ alias: 11, type: 'Int32', value: v }]);
      const tag = edge.tag('d1', 'Count');
      const all = () => [...a.sink.values(tag), ...b.sink.values(tag)].filter((v) => v !== 0);
      await waitFor('all 20 values', () => all().length === 20);
      assert.deepEqual(
        all().sort((x, y) => Number(x) - Number(y)),
        Array.from({ length: 20 }, (_, i) => i + 1),
      );
      assert.ok(a.sink.values(tag).length > 1 && b.sink.values(tag).length > 1, 'each instance got a share');
      await sleep(300);
      assert.deepEqual(ncmd, []);
    });
  });
});
